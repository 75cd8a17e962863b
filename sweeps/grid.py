"""From a spec to grid points (one MLflow run each) and to Tune trials (packs of points).

The spec's `pack` axes are trained together inside one trial, as lists in the trial's config;
the other axes are Tune's grid_search. So Tune runs width x (unpacked axes) trials, and each
trains the cross product of its packed values (`trainables.points.unpack`).
"""

from __future__ import annotations

import itertools
import math

from sweeps.spec import SweepSpec
from trainables.points import AXES, Point


def points(spec: SweepSpec) -> list[Point]:
    return [Point(*values) for values in
            itertools.product(*(getattr(spec.grid, axis) for axis in AXES))]


def packed(spec: SweepSpec, axis: str) -> bool:
    return axis in spec.pack


def trial_count(spec: SweepSpec) -> int:
    return math.prod(len(getattr(spec.grid, a)) for a in AXES if not packed(spec, a))


def tune_axes(spec: SweepSpec) -> dict[str, list]:
    """The axes in the order Tune should start trials: widest first. Trials start in grid
    order, and the wide ones take longest, so starting them first leaves no long trial
    running alone at the end of a sweep."""
    axes = {axis: list(getattr(spec.grid, axis)) for axis in AXES}
    axes["width"].sort(reverse=True)
    return axes
