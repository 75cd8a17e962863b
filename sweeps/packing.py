"""Which grid points each Ray Tune trial trains: packs, split where one would outlast the rest.

A trainable may train grid points together (`Trainable.pack`: the axes whose values one trial
batches, e.g. a synthetic width's frequencies x seeds), so Tune runs one trial per value of the
other axes. Trials start costliest first by their points' estimated compute (`Trainable.cost`;
longest processing time first), so that short ones fill the slots at the end. Packs differ in
cost by orders of magnitude, and one trial cannot use two slots, so the widest pack can run
alone at the end while the other slots idle (BENCHMARKS.md has the paper-size case). So where the trainable sets a `pack_limit` (synthetic: a setting, off by default), a pack
estimated over that many times the mean pack is split along its packed axes into parts of
about equal estimated cost.

The split depends on the spec alone, not on the machine, so a sweep resumed elsewhere gets the
trials Tune saved.
"""

from __future__ import annotations

import itertools
import math

from sweeps.spec import SweepSpec
from trainables.points import AXES, unpack
from tracking.layout import PART


def trials(spec: SweepSpec, planned: list) -> list[dict]:
    """Each Tune trial's axes, costliest first: a grid axis is one value, or the list of
    packed values the trial trains (their cross product); a split pack's parts carry PART.
    `planned`: the plan's points (`trainables.contract.PointPlan`)."""
    trainable, packed = spec.runs_as, spec.pack
    costs = {p.point.key: trainable.cost(p.params) for p in planned}
    free = [a for a in AXES if a not in packed]
    packs = [{a: chosen[a] if a in chosen else list(getattr(spec.grid, a)) for a in AXES}
             for chosen in (dict(zip(free, values)) for values in
                            itertools.product(*(getattr(spec.grid, a) for a in free)))]

    def cost(axes: dict) -> float:
        return sum(costs[p.key] for p in unpack(axes))

    limit = trainable.pack_limit(spec.section)
    bound = limit * sum(costs.values()) / len(packs) if limit and packed else math.inf
    out = []
    for pack in packs:
        parts = split(pack, bound, cost)
        out += [pack] if len(parts) == 1 else [
            {**part, PART: f"{i}/{len(parts)}"} for i, part in enumerate(parts, 1)]
    return sorted(out, key=cost, reverse=True)  # stable: grid order among equals


def split(axes: dict, bound: float, cost) -> list[dict]:
    """`axes` as parts of cost at most `bound` where its packed values allow: its longest
    packed list cut into consecutive runs of about equal cost, each cut further if need be. A
    part of one value holds it alone, as an unpacked axis does."""
    lists = [a for a in AXES if isinstance(axes[a], list) and len(axes[a]) > 1]
    total = cost(axes)
    if total <= bound or not lists:
        return [axes]
    axis = max(lists, key=lambda a: len(axes[a]))  # the first of the longest
    values = axes[axis]
    each = [cost({**axes, axis: [value]}) for value in values]
    n = min(len(values), math.ceil(total / bound))
    bounds, start = [], 0
    for i in range(1, n):  # part i ends nearest i/n of the cost, leaving a value for each next
        end = min(range(start + 1, len(values) - (n - i) + 1),
                  key=lambda e: abs(sum(each[:e]) - total * i / n))
        bounds.append((start, end))
        start = end
    bounds.append((start, len(values)))
    parts = [{**axes, axis: values[a:b] if b - a > 1 else values[a]} for a, b in bounds]
    return [piece for part in parts for piece in split(part, bound, cost)]
