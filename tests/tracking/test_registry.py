"""Trained models in the registry on a real sqlite store: one version per finished grid point,
found by its axes, dropped when its run is."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import RunStatus

from trainables.synthetic import SYNTHETIC, SyntheticSection
from tracking.query import open_reader, read_rows
from tracking.registry import log_model, register_trial_models, versions
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id


def log_student(client, run_id: str, encoder, decoders, features_per_task: int) -> None:
    """What the synthetic trial logs at its end: the student in its trainable's format."""
    section = SyntheticSection(features_per_task=features_per_task)
    with tempfile.TemporaryDirectory() as folder:
        log_model(client, run_id,
                  SYNTHETIC.trained_model(section, (encoder, decoders), Path(folder)))


def test_trained_models_are_versions_tagged_by_grid_point(tracking_uri, tmp_path):
    import mlflow

    client = connect(tracking_uri)
    experiment = experiment_id(client, "s", create=True)
    assert client.get_experiment(experiment).artifact_location == str(
        tmp_path / "mlartifacts" / "s")  # beside the database, not in the working folder
    keys = {w: f"width={w},frequency=0.01,task=simple,seed=0" for w in (2, 3, 4)}
    runs = ensure_runs(client, experiment, [
        PlannedRun(key=k, params={"width": str(w), "frequency": "0.01", "task": "simple",
                                  "seed": "0"}, tags={"sweep": "s", "trainable": "synthetic"})
        for w, k in keys.items()])
    rng = np.random.default_rng(0)
    for w in (2, 3):  # finished, with a model; width 4 is still scheduled
        encoder, decoders = np.linalg.qr(rng.normal(size=(8, w)))[0], rng.normal(size=(8, w))
        log_student(client, runs[keys[w]], encoder, decoders, features_per_task=4)
        client.set_terminated(runs[keys[w]], RunStatus.to_string(RunStatus.FINISHED))

    rows = read_rows(open_reader(tracking_uri), "s")
    assert register_trial_models(client, "s", rows) == 2
    assert register_trial_models(client, "s", rows) == 2  # not again
    (found,) = versions(client, "s.trials", width="3", frequency="0.01", task="simple")
    assert found.run_id == runs[keys[3]] and found.tags["trial_key"] == keys[3]

    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/s.trials/{found.version}")
    x = pd.DataFrame(rng.normal(size=(5, 8)), columns=[f"x{i}" for i in range(8)])
    x["task"] = [0, 1, 1, 0, 1]
    y = model.predict(x).to_numpy()
    every_task = x.iloc[:, :8].to_numpy() @ encoder @ decoders.T
    assert np.allclose(y, np.where(x[["task"]].to_numpy() == 0, every_task[:, :4],
                                   every_task[:, 4:]))

    client.delete_run(runs[keys[2]])  # what `sweeps run --restart` does to old runs
    assert register_trial_models(client, "s", read_rows(open_reader(tracking_uri), "s")) == 1
    assert [v.run_id for v in versions(client, "s.trials")] == [runs[keys[3]]]
