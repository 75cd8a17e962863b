"""MLflow layout on a real sqlite store: one run per point, histories without duplicates."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus

from tracking.errors import TrackingError, UnknownSweep
from tracking.logger import RunLogger
from tracking.query import open_reader, read_rows
from tracking.layout import PLAN_FILE
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id, start_sweep_run


def plan(keys):
    return [PlannedRun(key=k, params={"width": k[-1], "frequency": "0.1", "task": "simple",
                                      "seed": "0"}, tags={"sweep": "s", "trainable": "synthetic"})
            for k in keys]


@pytest.fixture
def client(store_uri):
    return connect(store_uri)


def test_ensure_runs_is_idempotent(client):
    experiment = experiment_id(client, "s", create=True)
    first = ensure_runs(client, experiment, plan(["w=1", "w=2"]))
    again = ensure_runs(client, experiment, plan(["w=1", "w=2", "w=3"]))
    assert {k: again[k] for k in first} == first
    assert len(client.search_runs([experiment])) == 3
    run = client.get_run(first["w=1"])
    assert run.info.status == "RUNNING"  # made as its training starts
    assert run.data.tags["trial_key"] == "w=1" and run.data.tags["sweep"] == "s"
    assert run.data.params["width"] == "1"
    # Another trial's points, one of them a key no filter string can quote as it is.
    other = ensure_runs(client, experiment, plan(["w=4", "task='x' w=5"]))
    assert ensure_runs(client, experiment, plan(["task='x' w=5", "w=1"])) == {
        "task='x' w=5": other["task='x' w=5"], "w=1": first["w=1"]}
    assert len(client.search_runs([experiment])) == 5


def test_a_run_made_without_its_params_gets_them_on_the_retry(client):
    """An attempt that died between making a run and logging its params: the next one
    finds the run and completes it, and makes no second run."""
    experiment = experiment_id(client, "s", create=True)
    orphan = client.create_run(experiment, tags={"trial_key": "w=1", "kind": "trial"})
    assert ensure_runs(client, experiment, plan(["w=1"])) == {"w=1": orphan.info.run_id}
    assert client.get_run(orphan.info.run_id).data.params["frequency"] == "0.1"
    assert len(client.search_runs([experiment])) == 1


def test_replayed_steps_are_logged_once(client):
    experiment = experiment_id(client, "s", create=True)
    run = ensure_runs(client, experiment, plan(["w=1"]))["w=1"]
    logger = RunLogger(client, [run])
    for step in (0, 10, 20):
        logger.log(run, step, {"loss": 1.0 / (step + 1)})
    assert logger.try_flush()
    logger.log(run, 30, {"loss": 0.1})  # buffered, then "lost" with its process
    restarted = RunLogger(client, [run])  # a restart from the checkpoint at step 10
    for step in (20, 30, 40):
        restarted.log(run, step, {"loss": 1.0 / (step + 1)})
    restarted.finish()
    history = client.get_metric_history(run, "loss")
    assert sorted(m.step for m in history) == [0, 10, 20, 30, 40]
    assert client.get_run(run).info.status == "FINISHED"


def test_metrics_outlive_an_unreachable_store(client):
    """What a trial cannot store goes into its checkpoint and is stored after a restart."""
    experiment = experiment_id(client, "s", create=True)
    run = ensure_runs(client, experiment, plan(["w=1"]))["w=1"]
    away = RunLogger(MlflowClient("http://127.0.0.1:9"), [run])  # nothing listens there
    for step in (0, 10):
        away.log(run, step, {"loss": 1.0 / (step + 1)})
    away.set_status(RunStatus.RUNNING)
    assert not away.try_flush()
    checkpoint = away.unstored()
    assert [m[3] for m in checkpoint[run]] == [0, 10]
    back = RunLogger(client, [run], unstored=checkpoint)
    back.log(run, 20, {"loss": 0.05})
    back.finish()
    assert [m.step for m in client.get_metric_history(run, "loss")] == [0, 10, 20]
    assert back.unstored() == {}


def test_large_flushes_are_split_into_mlflow_batches(client):
    experiment = experiment_id(client, "s", create=True)
    run = ensure_runs(client, experiment, plan(["w=1"]))["w=1"]
    logger = RunLogger(client, [run])
    for step in range(30):
        logger.log(run, step, {f"task_loss/{k}": 0.5 for k in range(40)})  # 1200 metrics
    assert logger.try_flush()
    assert len(client.get_metric_history(run, "task_loss/39")) == 30
    assert client.get_run(run).data.tags["last_step"] == "29"


def test_more_of_a_step_after_it_was_stored_is_not_taken_for_a_replay(client):
    """The OLMo loop logs a step's batch metrics, then (next iteration) its evaluation: a
    periodic store in between must not make the evaluation look like a replay."""
    experiment = experiment_id(client, "s", create=True)
    run = ensure_runs(client, experiment, plan(["w=1"]))["w=1"]
    logger = RunLogger(client, [run])
    logger.log(run, 5, {"rare/injected": 0.0})
    logger.log(run, 6, {"rare/injected": 1.0})
    assert logger.try_flush()
    logger.log(run, 6, {"train/loss": 2.5})  # the evaluation of the state after step 6
    assert logger.try_flush()
    restarted = RunLogger(client, [run])  # ... and after a restart that replays step 6
    restarted.log(run, 6, {"rare/injected": 1.0, "train/loss": 2.5})
    restarted.log(run, 7, {"rare/injected": 0.0})
    assert restarted.try_flush()
    assert [m.step for m in client.get_metric_history(run, "train/loss")] == [6]
    assert [m.step for m in client.get_metric_history(run, "rare/injected")] == [5, 6, 7]


def test_metrics_stored_without_their_tag_are_not_stored_again(client):
    """MLflow commits a batch's metrics before its tags: a process killed in between leaves
    steps the `last_step` tag does not name. The restarted trial's replay skips them."""
    experiment = experiment_id(client, "s", create=True)
    run = ensure_runs(client, experiment, plan(["w=1"]))["w=1"]
    client.log_batch(run, metrics=[Metric("loss", 1.0, 0, step) for step in range(5)])
    restarted = RunLogger(client, [run])
    for step in range(8):
        restarted.log(run, step, {"loss": 1.0})
    restarted.finish()
    assert [m.step for m in client.get_metric_history(run, "loss")] == list(range(8))


def test_a_step_cut_between_batches_by_a_kill_is_completed_once(client):
    experiment = experiment_id(client, "s", create=True)
    run = ensure_runs(client, experiment, plan(["w=1"]))["w=1"]
    client.log_batch(run, metrics=[Metric(f"m{k}", 1.0, 0, 1) for k in range(1000)])
    restarted = RunLogger(client, [run])  # the first of step 1's two batches was stored
    restarted.log(run, 1, {f"m{k}": 1.0 for k in range(1500)})
    restarted.log(run, 2, {"m0": 2.0})
    restarted.finish()
    for key in ("m0", "m999", "m1000", "m1499"):
        steps = [m.step for m in client.get_metric_history(run, key)]
        assert steps == ([1, 2] if key == "m0" else [1]), key


def test_a_step_split_across_batches_counts_once_whole(client):
    experiment = experiment_id(client, "s", create=True)
    run = ensure_runs(client, experiment, plan(["w=1"]))["w=1"]
    logger = RunLogger(client, [run])
    logger.log(run, 0, {f"m{k}": 0.0 for k in range(10)})
    logger.log(run, 1, {f"m{k}": 1.0 for k in range(1500)})  # split over two batches
    assert logger.try_flush()
    assert client.get_run(run).data.tags["last_step"] == "1"
    assert len(client.get_run(run).data.metrics) == 1500


def test_rows_read_back_final_metrics(client, store_uri):
    experiment = experiment_id(client, "s", create=True)
    runs = ensure_runs(client, experiment, plan(["w=1", "w=2"]))
    logger = RunLogger(client, list(runs.values()))
    for step in (0, 5):
        logger.log(runs["w=2"], step, {"rare/loss": 1.0 - step / 10})
    assert logger.try_flush()
    rows = read_rows(open_reader(store_uri), "s")
    assert [r.key for r in rows] == ["w=1", "w=2"]  # sorted by width
    assert rows[1].metrics == {"rare/loss": 0.5} and rows[1].step == 5
    with pytest.raises(UnknownSweep):
        read_rows(open_reader(store_uri), "nope")


def test_rows_include_the_planned_points_whose_training_has_not_started(client, store_uri):
    """Runs are made as training starts; until then the parent run's plan has the point."""
    experiment = experiment_id(client, "s", create=True)
    points = plan(["w=1", "w=2", "w=3"])
    parent = start_sweep_run(client, experiment, "s", tags={"sweep": "s"}, files={
        PLAN_FILE: json.dumps({"name": "s", "trainable": "synthetic", "trials": 3, "points": [
            {"key": p.key, "params": p.params} for p in points]})}, params={"grid.points": "3"})
    started = ensure_runs(client, experiment, points[1:2], parent)
    rows = read_rows(open_reader(store_uri), "s")
    assert [(r.key, r.state, r.run_id) for r in rows] == [
        ("w=1", "SCHEDULED", ""), ("w=2", "RUNNING", started["w=2"]), ("w=3", "SCHEDULED", "")]
    assert client.get_run(started["w=2"]).data.tags["mlflow.parentRunId"] == parent
    assert start_sweep_run(client, experiment, "s", tags={}, files={},  # a resume
                           params={"grid.points": "3", "grid.width": "1, 2, 3"}) == parent
    assert client.get_run(parent).data.params == {"grid.points": "3", "grid.width": "1, 2, 3"}


def test_unreachable_store_is_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    for uri in (f"sqlite:///{tmp_path}/a-file/mlflow.db", "http://127.0.0.1:9"):
        with pytest.raises(TrackingError, match="cannot be reached"):
            connect(uri)
