"""Grid points and the packs a trial trains: the trainables' view of the grid.

A grid point is one (width, frequency, task, seed) and gets one MLflow run. A Tune trial's
config is {TRIAL_KEY: axes}, its axes each one value or a list of packed values
(`sweeps.packing`); the trial trains their cross product, in axis order.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from tracking.layout import AXES

__all__ = ["AXES", "TRIAL_KEY", "Point", "unpack"]

TRIAL_KEY = "trial"


@dataclass(frozen=True)
class Point:
    width: int | str
    frequency: float
    task: str
    seed: int

    @property
    def key(self) -> str:
        """`width=8,frequency=0.01,task=simple,seed=0`: the MLflow `trial_key` tag."""
        return ",".join(f"{axis}={value}" for axis, value in asdict(self).items())

    def params(self) -> dict:
        return asdict(self)


def unpack(axes: dict) -> list[Point]:
    """The grid points of one trial's axes, in grid order."""
    listed = [v if isinstance(v, list) else [v] for v in (axes[a] for a in AXES)]
    return [Point(*values) for values in itertools.product(*listed)]
