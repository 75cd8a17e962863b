"""Grid points and their keys (how they are packed into trials: test_packing.py)."""

from __future__ import annotations

from sweeps import grid
from sweeps.spec import validate
from tests.conftest import tiny_spec


def test_points_are_the_cross_product_with_contract_keys():
    spec = validate(tiny_spec(grid__seed=[0, 1]))
    points = grid.points(spec)
    assert len(points) == 2 * 2 * 1 * 2
    assert points[0].key == "width=2,frequency=0.2,task=complex,seed=0"
    assert len({p.key for p in points}) == len(points)
