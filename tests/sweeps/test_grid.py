"""Grid points, keys and the packing of points into Tune trials."""

from __future__ import annotations

import itertools

import pytest

from sweeps import grid
from sweeps.spec import validate
from tests.conftest import tiny_spec
from trainables.points import AXES, unpack


def test_points_are_the_cross_product_with_contract_keys():
    spec = validate(tiny_spec(grid__seed=[0, 1]))
    points = grid.points(spec)
    assert len(points) == 2 * 2 * 1 * 2
    assert points[0].key == "width=2,frequency=0.2,task=complex,seed=0"
    assert len({p.key for p in points}) == len(points)


@pytest.mark.parametrize("pack", [[], ["seed"], ["frequency", "seed"],
                                  ["frequency", "task", "seed"]])
def test_trials_cover_every_point_exactly_once(pack):
    spec = validate(tiny_spec(grid__seed=[0, 1], grid__task=["simple", "complex"],
                              synthetic__pack=pack))
    free = [a for a in AXES if a not in pack]
    configs = [
        {**{a: getattr(spec.grid, a) for a in pack}, **dict(zip(free, values))}
        for values in itertools.product(*(getattr(spec.grid, a) for a in free))
    ]
    assert len(configs) == grid.trial_count(spec)
    trained = [p for config in configs for p in unpack(config)]
    assert sorted(p.key for p in trained) == sorted(p.key for p in grid.points(spec))
