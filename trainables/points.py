"""Grid points and the packs a trial trains: the trainables' view of the grid.

A grid point is one (width, frequency, task, seed) and gets one MLflow run. A trial's config
holds each axis either as one value or as a list of packed values; the trial trains their
cross product, in axis order.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

AXES = ("width", "frequency", "task", "seed")


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


def unpack(trial_config: dict) -> list[Point]:
    """The grid points one trial trains, in grid order."""
    listed = [v if isinstance(v, list) else [v] for v in (trial_config[a] for a in AXES)]
    return [Point(*values) for values in itertools.product(*listed)]
