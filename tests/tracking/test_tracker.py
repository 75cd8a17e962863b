"""The tracker seam: what a loop logs survives an unreachable store through the checkpoint
folder, and the runs end FINISHED with every step once; a no-op tracker logs nothing."""

from __future__ import annotations

from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id
from tracking.tracker import MlflowTracker, NoopTracker, open_tracker


def planned(key: str) -> PlannedRun:
    return PlannedRun(key=key, params={"width": "1"}, tags={"sweep": "s", "trainable": "x"})


def test_unstored_metrics_travel_in_the_checkpoint_folder(store_uri, tmp_path):
    client = connect(store_uri)
    experiment = experiment_id(client, "s", create=True)
    run = ensure_runs(client, experiment, [planned("w=1")])["w=1"]
    away = MlflowTracker("http://127.0.0.1:9", [run])  # nothing listens there
    for step in (0, 10):
        away.log(run, step, {"loss": 1.0 / (step + 1)})
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    away.save(checkpoint)  # the store is away: the metrics go into the folder
    assert list(checkpoint.iterdir()), "the unstored metrics are in the checkpoint"

    back = open_tracker(store_uri, [run], checkpoint)  # a restart from that checkpoint
    assert client.get_run(run).info.status == "RUNNING"
    back.log(run, 20, {"loss": 0.05})
    back.finish()
    assert [m.step for m in client.get_metric_history(run, "loss")] == [0, 10, 20]
    assert client.get_run(run).info.status == "FINISHED"


def test_a_worker_without_runs_gets_a_tracker_that_does_nothing(tmp_path):
    tracker = open_tracker("http://127.0.0.1:9", [], checkpoint=None)
    assert type(tracker) is NoopTracker
    tracker.log("any", 0, {"loss": 1.0})
    tracker.save(tmp_path)
    tracker.finish()
    assert list(tmp_path.iterdir()) == []
