"""A sweep's plan: every grid point with its section as it will run, computed once, before
anything starts. The same resolved section goes to the grid point's MLflow run (as params)
and to the worker that trains it, so what a run records is what ran. Light (no torch, Ray or
MLflow): `sweeps validate` is this plan, printed.
"""

from __future__ import annotations

from sweeps import grid, packing
from sweeps.spec import SweepSpec
from trainables.contract import Placement, PointPlan, Strict
from trainables.points import Point

__all__ = ["PointPlan", "plan", "as_json", "placement"]


def plan(spec: SweepSpec) -> list[PointPlan]:
    """Every grid point of the sweep, in grid order, with its resolved section."""
    trainable = spec.runs_as
    shared = trainable.for_grid(spec.section, spec.grid)
    planned = []
    for point in grid.points(spec):
        section = trainable.resolve(shared, point)
        planned.append(point_plan(point, section, trainable.derived(section, point)))
    return planned


def point_plan(point: Point, section: Strict, derived: dict) -> PointPlan:
    """The point's plan; its params are the grid axes, the flattened section (nested keys
    dotted, lists comma-joined) and the derived facts, as strings (as MLflow stores them)."""
    dumped = section.model_dump(mode="json")
    values = {**point.params(), **flatten(dumped), **flatten(derived)}
    return PointPlan(point=point, section=dumped,
                     params={key: str(value) for key, value in values.items()})


def as_json(spec: SweepSpec, planned: list[PointPlan]) -> dict:
    """CONTRACTS 2's plan: `{"name", "trainable", "trials", "points": [{"key", "params"}]}`."""
    return {"name": spec.name, "trainable": spec.trainable,
            "trials": len(packing.trials(spec, planned)),
            "points": [{"key": p.point.key, "params": p.params} for p in planned]}


def placement(spec: SweepSpec) -> Placement:
    r = spec.resources
    return Placement(workers=r.workers, cpu=r.cpu, gpu=r.gpu)


def flatten(section: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in section.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = ",".join(value) if isinstance(value, list) else value
    return flat
