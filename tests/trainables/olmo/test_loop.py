"""The OLMo trial's loop with every measurement on, without Ray but with a real MLflow store:
a run killed after MLflow stored metrics past its last checkpoint and resumed from that
checkpoint ends with the histories of an uninterrupted run, every step once; `rare/injected`
sums to the schedule's count, which the plan states as `injection.total_instances`."""

from __future__ import annotations

import pytest
import torch
from mlflow import MlflowClient

from sweeps.plan import point_plan
from trainables.contract import PointRun
from trainables.olmo import OLMO, OlmoSection
from trainables.olmo.loop import Trial
from trainables.points import Point
from tracking.tracker import open_tracker

STEPS = 6
# Two instances every two batches (batches 1, 3, 5: training steps 2, 4, 6); measured every
# second step and at every step that injects: every step.
SECTION = dict(steps=STEPS, seq_len=16, batch_size=4, lr=3e-3, warmup_steps=1, eval_every=2,
               checkpoint_every=3, eval_instances=16, schedule={"block": 2}, measure_every=2,
               interference_instances=50, interference_neurons=16)
POINT = Point("4M", 1 / 64, "cmp", 0)
TIMING = "throughput/tokens_per_s"


class Killed(Exception):
    pass


def new_run(client: MlflowClient, name: str, corpus) -> PointRun:
    experiment = client.get_experiment_by_name("loop") or client.get_experiment(
        client.create_experiment("loop"))
    run = client.create_run(experiment.experiment_id, run_name=name)
    section = OLMO.resolve(OlmoSection(**SECTION, corpus=str(corpus.path)), POINT)
    return PointRun(plan=point_plan(POINT, section, OLMO.derived(section, POINT)),
                    run_id=run.info.run_id)


def histories(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    names = client.get_run(run_id).data.metrics
    return {name: [(m.step, m.value) for m in client.get_metric_history(run_id, name)]
            for name in names}


@pytest.fixture
def client(store_uri) -> MlflowClient:
    return MlflowClient(store_uri)


def test_a_killed_and_resumed_run_logs_what_an_uninterrupted_run_logs(tmp_path, client,
                                                                       store_uri,
                                                                       tiny_corpus):
    cpu = torch.device("cpu")
    straight = new_run(client, "straight", tiny_corpus)
    trial = Trial(straight, 0, 1, cpu)
    tracker = open_tracker(store_uri, [straight.run_id], None)
    trial.train(0, resumed=False, tracker=tracker, report=lambda step, progress: None)
    tracker.finish()

    interrupted = new_run(client, "interrupted", tiny_corpus)
    trial = Trial(interrupted, 0, 1, cpu)
    tracker = open_tracker(store_uri, [interrupted.run_id], None)

    def report(step: int, progress: dict) -> None:
        if step == STEPS:  # MLflow stores steps 4..6, then the process dies before saving
            tracker.save(tmp_path)
            raise Killed
        trial.save(step, tmp_path, main=True)
        tracker.save(tmp_path)

    with pytest.raises(Killed):
        trial.train(0, resumed=False, tracker=tracker, report=report)
    resumed = Trial(interrupted, 0, 1, cpu)
    start = resumed.load(tmp_path)
    assert start == 3
    tracker = open_tracker(store_uri, [interrupted.run_id], tmp_path)
    resumed.train(start, resumed=True, tracker=tracker, report=lambda step, progress: None)
    tracker.finish()

    expected, got = histories(client, straight.run_id), histories(client, interrupted.run_id)
    assert {"interference/cos_batch", "interference/cos_task", "interference/cos_nontask",
            "interference/cos_nontask_rows", "interference/cos_task_rows", "rare/retained",
            "rare/injection_drop", "features/order_r2", "rare/label_loss", "rare/label_acc",
            "rare/train_label_loss", "train/loss", "train/grad_norm"} <= set(expected)
    assert set(got) == set(expected)
    for name in set(expected) - {TIMING}:
        assert got[name] == expected[name], name
    assert [step for step, _ in got[TIMING]] == [step for step, _ in expected[TIMING]]
    # Every training step once; the instances sum to the schedule's count.
    injected = got["rare/injected"]
    assert [step for step, _ in injected] == list(range(1, STEPS + 1))
    assert sum(value for _, value in injected) == trial.data.schedule.injected_before(STEPS) == 6
    assert OLMO.derived(trial.section, POINT)["injection"]["total_instances"] == 6  # the plan's
    assert [step for step, _ in got["interference/cos_batch"]] == list(range(1, STEPS + 1))
    assert [step for step, _ in got["interference/cos_task"]] == [2, 4, 6]
    assert [step for step, _ in got["rare/retained"]] == [3, 5]  # just before injections 2, 3


def test_a_trial_reads_the_reference_tasks_and_never_scans(monkeypatch, tmp_path, client,
                                                           store_uri, tiny_corpus):
    """Any call of the reference scan fails this test; a trial trains on the reference the
    corpus's pre-step made and writes nothing into the corpus folder. A corpus without it fails
    at once, naming the command, before any model is built."""
    import shutil

    from injection import reference
    from trainables.olmo import loop

    def scanned(*args, **kwargs):
        raise AssertionError("a trial scanned the corpus for its reference tasks")

    for name in ("make", "scan_shard", "_scan_with_ray_data", "_merge"):
        monkeypatch.setattr(reference, name, scanned)
    corpus = shutil.copytree(tiny_corpus.path, tmp_path / "corpus")
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*")}
    run = new_run(client, "no-scan", corpora_at(corpus))
    tracker = open_tracker(store_uri, [run.run_id], None)
    Trial(run, 0, 1, torch.device("cpu")).train(0, resumed=False, tracker=tracker,
                                                 report=lambda step, progress: None)
    tracker.finish()
    assert client.get_run(run.run_id).data.metrics["rare/test_loss"] > 0  # it trained
    assert {p: p.stat().st_mtime_ns for p in corpus.rglob("*")} == before

    shutil.rmtree(corpus / reference.FOLDER)  # gone after the sweep was planned

    def built(*args, **kwargs):
        raise AssertionError("a model was built before the corpus was checked")

    monkeypatch.setattr(loop, "build_model", built)
    with pytest.raises(ValueError, match=f"sweeps corpus reference {corpus}"):
        Trial(run, 0, 1, torch.device("cpu"))


def corpora_at(path):
    from injection.corpus import open_corpus

    return open_corpus(path)


def test_every_key_of_the_steps_measurements_is_logged_as_its_mean_and_survives_a_resume():
    from trainables.olmo.clock import StepClock
    from trainables.olmo.loop import Window

    cpu = torch.device("cpu")
    window = Window(StepClock(cpu))
    tokens = torch.zeros(2, 4, dtype=torch.long)
    for loss, norm, extra in ((1.0, 2.0, 5.0), (3.0, 4.0, 7.0)):
        window.clock.start()
        window.add({"loss": torch.tensor(loss), "grad_norm": torch.tensor(norm),
                    "anything_new": torch.tensor(extra)}, tokens)
        window.clock.stop()
    restored = Window.restored(window.state_dict(world_size=1), cpu)
    for w in (window, restored):
        metrics = w.metrics(world_size=1)
        assert (metrics["train/loss"], metrics["train/grad_norm"],
                metrics["train/anything_new"]) == (2.0, 3.0, 6.0)
        assert metrics["throughput/tokens_per_s"] > 0
