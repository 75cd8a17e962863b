"""The OLMo trainable end to end: `sweeps run` on the embedded 2-core Ray, two Ray Train
workers training the 4M model with injection and every measurement on, the driver killed
after a checkpoint, and `sweeps resume` continuing the step count and the data position
exactly; the run's params are the plan `sweeps validate --format json` printed."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
import torch
from mlflow import MlflowClient

from sweeps.spec import validate
from tests.conftest import run_sweeps, sweeps_command, wait_for
from trainables.olmo.data import checksum, global_batches, open_corpus, share

STEPS, EVAL_EVERY, WORKERS = 8, 2, 2
CONTRACT = ["train/loss", "rare/train_loss", "rare/test_loss", "rare/test_acc", "ref/loss",
            "throughput/tokens_per_s", "rare/label_loss", "rare/label_acc"]


def olmo_spec() -> dict:
    """4M, sequences of 32 tokens, 4 per global batch (2 a worker), an instance in almost
    every row, so every step is measured (interference across the two workers, retention):
    about a second a step on this machine."""
    return {
        "name": "olmo-e2e", "trainable": "olmo",
        "grid": {"width": ["4M"], "frequency": [0.03], "task": ["cmp"], "seed": [0]},
        "olmo": {"steps": STEPS, "seq_len": 32, "batch_size": 4, "warmup_steps": 1,
                 "eval_every": EVAL_EVERY, "checkpoint_every": 2, "eval_instances": 16,
                 "measure_every": 4, "interference_instances": 100,
                 "interference_neurons": 16},
        "resources": {"workers": WORKERS, "cpu": 1},
    }


def global_data(spec: dict):
    section = validate(spec).olmo
    corpus = open_corpus(section.corpus)
    from injection import tasks

    task = tasks.load_task("cmp", 0, str(corpus.tokenizer.path))
    return section, global_batches(0.03, section.batch_size, section.seq_len, section.block, 0,
                                   corpus, task)


def expected_checksums(spec: dict) -> dict[int, float]:
    """Rank 0's rows of the global batch trained last before each evaluation, computed here
    without Ray: what the trial must have read at each step if its data position is exact."""
    section, data = global_data(spec)
    lo, hi = share(section.batch_size, 0, WORKERS)
    return {step: checksum(data.rows(step - 1, lo, hi).tokens)
            for step in range(EVAL_EVERY, STEPS + 1, EVAL_EVERY)}


def checkpointed(storage) -> bool:
    """Ray Train has registered a checkpoint (its files alone may still be in flight)."""
    for snapshot in storage.rglob("checkpoint_manager_snapshot.json"):
        try:
            if json.loads(snapshot.read_text()).get("latest_checkpoint_result"):
                return True
        except ValueError:  # being written
            pass
    return False


@pytest.mark.slow
def test_two_workers_train_4M_with_injection_and_resume_exactly(tmp_path, write_spec,
                                                                 tracking_uri):
    spec = olmo_spec()

    def sweeps(*args) -> subprocess.Popen:
        return sweeps_command(*args, "--storage", tmp_path / "runs", "--tracking-uri",
                              tracking_uri, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)

    driver = sweeps("run", write_spec(spec))
    wait_for(lambda: checkpointed(tmp_path / "runs") or driver.poll() is not None,
             timeout=240, what="the first checkpoint")
    assert driver.poll() is None, f"the run ended before its first checkpoint: " \
                                  f"{driver.stderr.read()}"
    driver.send_signal(signal.SIGKILL)
    driver.wait()

    resumed = sweeps("resume", "olmo-e2e")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert "Reporting training result" not in stderr  # the workers' INFO lines stay off it

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("olmo-e2e")
    (run,) = client.search_runs([experiment.experiment_id], "tags.kind = 'trial'")
    assert run.info.status == "FINISHED" and run.data.tags["trainable"] == "olmo"
    assert run.data.params["width"] == "4M" and run.data.params["eval_every"] == "2"

    def history(name):
        return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]

    evals, every_step = list(range(0, STEPS + 1, EVAL_EVERY)), list(range(1, STEPS + 1))
    for name in CONTRACT:
        steps = [step for step, _ in history(name)]
        # Retention reads the task's test loss next to every injection: here every state.
        expected = {"rare/test_loss": [0, *every_step]}.get(
            name, evals if name.startswith(("rare/", "ref/")) else evals[1:])
        assert steps == expected, name
    # Every step once across the kill: its instances (summing to the schedule's count) and,
    # every step injecting, its three cosines; retention between consecutive injections.
    _, data = global_data(spec)
    injected = history("rare/injected")
    assert [step for step, _ in injected] == every_step
    assert sum(value for _, value in injected) == data.schedule.injected_before(STEPS)
    for name in ("interference/cos_batch", "interference/cos_task", "interference/cos_nontask",
                 "interference/cos_nontask_rows", "rare/injection_drop"):
        assert [step for step, _ in history(name)] == every_step, name
    assert all(-1 <= value <= 1 for _, value in history("interference/cos_task"))
    assert [step for step, _ in history("features/order_r2")] == evals
    # The run recorded the plan `sweeps validate --format json` printed, every param of it.
    planned = run_sweeps("validate", write_spec(spec), "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    (point,) = json.loads(planned.stdout)["points"]
    assert run.data.params == point["params"]
    losses = [value for _, value in history("train/loss")]
    assert losses[-1] < losses[0] - 0.5, losses
    assert history("rare/test_loss")[-1][1] < history("rare/test_loss")[0][1]
    # The data each step trained on, across the kill, is the data of its global batch.
    assert dict(history("data/checksum")) == expected_checksums(spec)
    # ... and the resumed attempt started from a checkpoint, not from step 0.
    reported = [json.loads(line) for path in (tmp_path / "runs" / "olmo-e2e").rglob(
        "result.json") for line in path.read_text().splitlines()]
    assert max(r["resumed_from"] for r in reported) > 0
    assert torch.isfinite(torch.tensor(losses)).all()
    # Sharded checkpoints: each of the two ranks wrote its part of the weights and optimizer
    # (torch.distributed.checkpoint, nothing gathered), rank 0 the metadata and the rest.
    checkpoints = [p for p in (tmp_path / "runs" / "olmo-e2e" / "train").rglob("checkpoint_*")
                   if p.is_dir()]
    assert checkpoints
    for folder in checkpoints:
        files = {p.name: p.stat().st_size for p in folder.iterdir()}
        assert {".metadata", "__0_0.distcp", "__1_0.distcp", "trial.pt"} <= set(files)
        assert files["__1_0.distcp"] > 1_000_000 and "state.pt" not in files
