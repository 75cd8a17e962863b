"""Trained models on a real sqlite store: one MLflow logged model per finished grid point,
linked to its run, found by its axes, loaded as the trained student; logged once however
often a trial retries."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from trainables.synthetic import SYNTHETIC, SyntheticSection
from tracking.query import ClientReader, SqliteReader
from tracking.registry import delete_trained_models, log_trained_model, trained_models
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id


def log_student(client, run_id: str, encoder, decoders, features_per_task: int) -> str:
    """What the synthetic trial logs at its end: the student in its trainable's format."""
    section = SyntheticSection(features_per_task=features_per_task)
    with tempfile.TemporaryDirectory() as folder:
        return log_trained_model(client, run_id, SYNTHETIC.trained_model(
            section, (encoder, decoders), Path(folder)))


def test_trained_models_are_logged_models_found_by_grid_point(store_uri, tmp_path):
    import mlflow

    client = connect(store_uri)
    experiment = experiment_id(client, "s", create=True)
    assert client.get_experiment(experiment).artifact_location == str(
        tmp_path / "mlartifacts" / "s")  # beside the database, not in the working folder
    keys = {w: f"width={w},frequency=0.01,task=simple,seed=0" for w in (2, 3)}
    runs = ensure_runs(client, experiment, [
        PlannedRun(key=k, params={"width": str(w), "frequency": "0.01", "task": "simple",
                                  "seed": "0"}, tags={"sweep": "s", "trainable": "synthetic"})
        for w, k in keys.items()])
    rng = np.random.default_rng(0)
    students = {}
    for w in (2, 3):
        students[w] = np.linalg.qr(rng.normal(size=(8, w)))[0], rng.normal(size=(8, w))
        model_id = log_student(client, runs[keys[w]], *students[w], features_per_task=4)
        # A trial restarted after its last checkpoint logs its model again: still one.
        assert log_student(client, runs[keys[w]], *students[w], features_per_task=4) == model_id

    (found,) = trained_models(client, experiment, width="3", frequency="0.01", task="simple")
    assert len(trained_models(client, experiment)) == 2
    assert found.source_run_id == runs[keys[3]] and found.tags["trial_key"] == keys[3]
    assert found.name == "w3 f=0p01 simple s0" and found.params["seed"] == "0"
    outputs = client.get_run(runs[keys[3]]).outputs.model_outputs
    assert [o.model_id for o in outputs] == [found.model_id]  # the run shows its model
    assert not client.search_registered_models()  # not versions of a registered model
    fast, slow = SqliteReader(store_uri), ClientReader(store_uri)
    assert fast.logged_models(experiment) == slow.logged_models(experiment)
    assert {m.status for m in fast.logged_models(experiment)} == {"READY"}

    mlflow.set_tracking_uri(store_uri)
    model = mlflow.pyfunc.load_model(f"models:/{found.model_id}")
    x = pd.DataFrame(rng.normal(size=(5, 8)), columns=[f"x{i}" for i in range(8)])
    x["task"] = [0, 1, 1, 0, 1]
    y = model.predict(x).to_numpy()
    encoder, decoders = students[3]
    every_task = x.iloc[:, :8].to_numpy() @ encoder @ decoders.T
    assert np.allclose(y, np.where(x[["task"]].to_numpy() == 0, every_task[:, :4],
                                   every_task[:, 4:]))

    delete_trained_models(client, experiment)  # what `sweeps run --restart` does
    assert trained_models(client, experiment) == [] and fast.logged_models(experiment) == []
