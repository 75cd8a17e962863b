"""Packing grid points into Tune trials, and splitting the packs that would outlast the rest."""

from __future__ import annotations

import math

import pytest

from sweeps import grid, packing
from sweeps.plan import plan
from sweeps.spec import validate
from tests.conftest import tiny_spec
from trainables.points import AXES, unpack
from tracking.layout import PART, trial_name

BENCH = {"name": "bench", "trainable": "synthetic",
         "grid": {"width": [16, 32, 64, 128], "frequency": [0.1, 0.03, 0.01],
                  "task": ["simple", "complex"], "seed": [0, 1]},
         "synthetic": {"tasks": 16, "features_per_task": 16, "pack_limit": 1.0}}
# bench/synthetic_overhead.py's grid, its packs split


def trials_and_costs(spec_dict: dict):
    spec = validate(spec_dict)
    planned = plan(spec)
    costs = {p.point.key: spec.runs_as.cost(p.params) for p in planned}
    return spec, packing.trials(spec, planned), costs


def cost(axes: dict, costs: dict) -> float:
    return sum(costs[p.key] for p in unpack(axes))


@pytest.mark.parametrize("limit", [None, 1.0, 0.2])
@pytest.mark.parametrize("pack", [[], ["seed"], ["frequency", "seed"],
                                  ["frequency", "task", "seed"]])
def test_trials_cover_every_point_exactly_once(pack, limit):
    spec, trials, _ = trials_and_costs(tiny_spec(
        grid__seed=[0, 1], grid__task=["simple", "complex"], synthetic__pack=pack,
        synthetic__pack_limit=limit))
    trained = [p.key for axes in trials for p in unpack(axes)]
    assert sorted(trained) == sorted(p.key for p in grid.points(spec))
    assert len({trial_name(axes) for axes in trials}) == len(trials)  # the runs' trial tags
    if limit is None:  # one trial per value of the axes not packed
        assert len(trials) == math.prod(len(getattr(spec.grid, a)) for a in AXES
                                        if a not in pack)


def test_a_pack_costlier_than_the_limit_is_split_into_parts_under_it():
    spec, trials, costs = trials_and_costs(BENCH)
    bound = sum(costs.values()) / 8  # pack_limit 1 x the mean of 4 widths x 2 tasks packs
    split = [axes for axes in trials if PART in axes]
    assert split and {axes["width"] for axes in split} == {128}  # the widest packs only
    for axes in trials:  # under the bound, unless a single point is over it alone
        assert cost(axes, costs) <= bound or len(unpack(axes)) == 1
    for task in ("simple", "complex"):  # a pack's parts: numbered i/n, its points once each
        parts = [axes for axes in split if axes["task"] == task]
        assert sorted(axes[PART] for axes in parts) == \
            [f"{i}/{len(parts)}" for i in range(1, len(parts) + 1)]
        assert sorted(p.key for axes in parts for p in unpack(axes)) == sorted(
            p.key for p in grid.points(spec) if p.width == 128 and p.task == task)
    assert [cost(axes, costs) for axes in trials] == \
        sorted((cost(axes, costs) for axes in trials), reverse=True)  # costliest first
    assert trials == packing.trials(spec, plan(spec))  # the spec alone decides: resume


def test_no_split_by_default_and_none_where_packs_cost_alike():
    _, trials, _ = trials_and_costs({**BENCH, "synthetic": {"tasks": 16,
                                                            "features_per_task": 16}})
    assert len(trials) == 8 and not any(PART in axes for axes in trials)
    assert [axes["width"] for axes in trials[:2]] == [128, 128]  # the widest start first
    _, trials, _ = trials_and_costs({**BENCH, "grid": {**BENCH["grid"], "width": [64],
                                                       "task": ["simple"]}})
    assert trials == [{"width": 64, "frequency": [0.1, 0.03, 0.01], "task": "simple",
                       "seed": [0, 1]}]


def test_a_split_keeps_consecutive_values_of_about_equal_cost():
    weights = {"a": 8.0, "b": 1.0, "c": 1.0, "d": 6.0}
    axes = {"width": 1, "frequency": ["a", "b", "c", "d"], "task": "x", "seed": [0]}

    def weighed(part):
        return sum(weights[p.frequency] for p in unpack(part))

    parts = packing.split(axes, 8.0, weighed)  # 16 over a bound of 8: two parts
    assert [part["frequency"] for part in parts] == ["a", ["b", "c", "d"]]
    assert packing.split(axes, 16.0, weighed) == [axes]
    singles = packing.split(axes, 1.0, weighed)  # as far as the values allow
    assert [part["frequency"] for part in singles] == ["a", "b", "c", "d"]


def test_a_part_is_named_for_its_single_values_and_its_place():
    assert trial_name({"width": 128, "frequency": 0.01, "task": "complex", "seed": [0, 1],
                       PART: "2/3"}) == "w128 f=0.01 complex part 2/3"
    assert trial_name({"width": 24, "frequency": [0.1, 0.01], "task": "complex",
                       "seed": [0]}) == "w24 complex"
