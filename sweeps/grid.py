"""From a spec to its grid points, one MLflow run each (`sweeps.packing` groups them into
Tune trials)."""

from __future__ import annotations

import itertools

from sweeps.spec import SweepSpec
from trainables.points import AXES, Point


def points(spec: SweepSpec) -> list[Point]:
    return [Point(*values) for values in
            itertools.product(*(getattr(spec.grid, axis) for axis in AXES))]
