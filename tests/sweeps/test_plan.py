"""A grid point travels from the spec to its worker as one `PointPlan`, computed once by the
plan: the trial is handed the plan's own objects, and the worker reads back exactly them."""

from __future__ import annotations

from sweeps.plan import plan
from sweeps.runner import Target, trial_plan
from sweeps.spec import validate
from tests.conftest import tiny_spec
from trainables.contract import PointPlan, TrialConfig
from trainables.points import unpack
from tracking.runs import connect, experiment_id, start_sweep_run


def test_the_worker_gets_the_plans_points_unchanged(tmp_path, store_uri):
    spec = validate(tiny_spec())
    planned = plan(spec)
    client = connect(store_uri)
    experiment = experiment_id(client, spec.name, create=True)
    parent = start_sweep_run(client, experiment, spec.name, tags={}, files={}, params={})
    sweep = trial_plan(spec, Target(str(tmp_path / "runs"), store_uri), planned, experiment,
                       parent)
    assert all(sweep.points[p.point.key] is p for p in planned)  # no copy, no reshaping

    axes = {"width": 12, "frequency": [0.2, 0.02], "task": "complex", "seed": [0]}
    trial = sweep.trial(axes)
    at_worker = TrialConfig.model_validate(trial.model_dump(mode="json"))  # as Ray hands it
    keys = [p.key for p in unpack(axes)]
    assert [run.plan for run in at_worker.points] == [sweep.points[k] for k in keys]
    assert all(isinstance(run.plan, PointPlan) for run in at_worker.points)
    runs = {r.info.run_id: r for r in client.search_runs([experiment])}
    for run in at_worker.points:  # the run records the plan's params, exactly
        assert runs[run.run_id].data.params == run.plan.params
        assert runs[run.run_id].data.tags["trial_key"] == run.point.key


def test_the_sweeps_run_has_its_grid_axes_as_params_from_its_start(store_uri):
    from sweeps.sweep_run import open_sweep

    spec = validate(tiny_spec(grid__width=[12, 2], grid__seed=[1, 0]))
    client = connect(store_uri)
    _, parent = open_sweep(client, spec, plan(spec))
    run = client.get_run(parent)  # before any trial: what MLflow shows while it trains
    assert run.info.status == "RUNNING"
    assert run.data.params == {"grid.width": "2, 12", "grid.frequency": "0.2, 0.02",
                               "grid.task": "complex", "grid.seed": "0, 1", "grid.points": "8"}
