"""Faults during a sweep: a trial's process killed, the tracking server gone and back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sweeps.runner import Target, run
from sweeps.spec import validate
from tests.conftest import free_port, sweeps_command, tiny_spec, wait_for
from tests.mlflow_server import MlflowServer


def complete(client: MlflowClient, run_id: str) -> bool:
    """Every logged step of `loss` once, from 0 to the run's last step."""
    run_ = client.get_run(run_id)
    steps = [m.step for m in client.get_metric_history(run_id, "loss")]
    every = int(run_.data.params["log_every"])
    return steps == list(range(0, int(run_.data.params["steps"]) + 1, every))


def trial_runs(client: MlflowClient, name: str = "tiny") -> list:
    experiment = client.get_experiment_by_name(name)
    return [] if experiment is None else client.search_runs([experiment.experiment_id],
                                                            "tags.kind = 'trial'")


def trial_results(sweep_dir) -> list[dict]:
    return [json.loads(line) for path in sweep_dir.glob("*/result.json")
            for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_a_killed_trial_process_resumes_from_its_checkpoint(ray_cluster, tmp_path,
                                                            tracking_uri):
    spec = validate(tiny_spec(grid__width=[12], synthetic__steps=40000,
                              synthetic__tolerance=0,  # a fixed budget: long enough to kill
                              synthetic__checkpoint_every_s=0.3))
    sweep_dir = tmp_path / "runs" / "tiny"

    killed = []

    def kill_trial_after_a_checkpoint():
        wait_for(lambda: any(sweep_dir.glob("*/checkpoint_*"))
                 and trial_results(sweep_dir), timeout=120, what="the trial's first checkpoint")
        pid = trial_results(sweep_dir)[-1]["pid"]  # Tune adds the trial process's pid
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    copies = Path(tempfile.gettempdir()).glob  # where Ray's `to_directory` copies one
    before = set(copies("checkpoint_tmp_*"))
    killer = threading.Thread(target=kill_trial_after_a_checkpoint)
    killer.start()
    failed = run(spec, Target(str(tmp_path / "runs"), tracking_uri))
    killer.join()
    assert failed == [] and killed, "the trial was killed and recovered"
    assert set(copies("checkpoint_tmp_*")) <= before, "the restore left a copy behind"
    results = trial_results(sweep_dir)
    assert results[-1]["step"] == 40000 and results[-1]["resumed_from"] > 0
    client = MlflowClient(tracking_uri)
    runs = trial_runs(client)
    assert len(runs) == 2
    for run_ in runs:
        assert run_.info.status == "FINISHED" and complete(client, run_.info.run_id)


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path, free_port())
    yield server
    server.stop()


@pytest.mark.slow
def test_tracking_server_outage_loses_no_metric(tmp_path, write_spec, mlflow_server):
    uri = mlflow_server.uri
    mlflow_server.start()
    spec = write_spec(tiny_spec(grid__width=[12], synthetic__steps=40000,
                                synthetic__tolerance=0,  # a fixed budget to train through
                                synthetic__checkpoint_every_s=0.3))
    sweep = sweeps_command("run", spec, "--storage", tmp_path / "runs", "--tracking-uri", uri,
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = MlflowClient(uri)

        def stored_steps() -> list[int]:
            return [int(r.data.tags.get("last_step", -1)) for r in trial_runs(client)]

        wait_for(lambda: max(stored_steps(), default=-1) >= 0, timeout=180,
                 what="the first metrics in MLflow")
        stored = max(stored_steps())
        mlflow_server.stop()
        assert not mlflow_server.answers(), "the tracking server is really gone"
        def trained() -> int:
            return max([r["step"] for r in trial_results(tmp_path / "runs" / "tiny")], default=-1)

        wait_for(lambda: trained() > stored + 1000, timeout=120,
                 what="training to go on without the tracking server")
        mlflow_server.start()
        assert sweep.wait(timeout=300) == 0, sweep.stderr.read()
        runs = trial_runs(client)
        assert len(runs) == 2
        for run_ in runs:
            assert run_.info.status == "FINISHED" and complete(client, run_.info.run_id)
    finally:
        sweep.kill()
