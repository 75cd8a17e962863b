"""The fast readers answer what MLflow's own client answers, on the same store: a sqlite file
read directly, and a real tracking server through its REST API."""

from __future__ import annotations

import math

import pytest
from mlflow import MlflowClient

from tests.conftest import free_port
from tests.mlflow_server import MlflowServer
from tracking.layout import KIND_TRIAL
from tracking.query import ClientReader, RestReader, SqliteReader, open_reader
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id


def populate(client: MlflowClient, tmp_path) -> str:
    """Three grid points (one deleted), a fit run, histories, a NaN, a registered model with
    tagged versions and a text artifact; returns the experiment id."""
    experiment = experiment_id(client, "s", create=True)
    runs = ensure_runs(client, experiment, [
        PlannedRun(key=f"w={w}", params={"width": str(w), "lr": "0.5"},
                   tags={"sweep": "s", "trainable": "synthetic"}) for w in (1, 2, 3)])
    for w, run_id in enumerate(runs.values(), start=1):
        for step in (0, 5, 10):
            client.log_metric(run_id, "loss", 1.0 / (w + step), step=step)
        client.log_metric(run_id, "odd", math.nan if w == 2 else 0.25, step=10)
        client.set_terminated(run_id)
    client.delete_run(runs["w=3"])
    fit = client.create_run(experiment, tags={"kind": "fit", "sweep": "s"})
    (tmp_path / "fit.json").write_text('{"sweep": "s"}')
    client.log_artifact(fit.info.run_id, str(tmp_path / "fit.json"))
    client.create_registered_model("s.trials", tags={"kind": "trials"}, description="models")
    for run_id in (runs["w=1"], runs["w=2"]):
        client.create_model_version("s.trials", f"runs:/{run_id}/model", run_id=run_id,
                                    tags={"width": client.get_run(run_id).data.params["width"]})
        model = client.create_logged_model(experiment, name="w1", source_run_id=run_id,
                                           tags={"kind": "trial"}, params={"width": "1"})
        if run_id == runs["w=1"]:
            client.finalize_logged_model(model.model_id, "READY")
    return experiment


def answers(reader, experiment: str) -> dict:
    def metrics(run):  # NaN != NaN: compare its text
        return {k: repr(v) for k, v in run.metrics.items()}

    trials = reader.runs(experiment, KIND_TRIAL)
    fit_run = next(r for r in reader.runs(experiment) if r.tags.get("kind") == "fit")
    return {
        "experiment": reader.experiment_id("s"), "missing": reader.experiment_id("nope"),
        "trials": [(r.run_id, r.status, r.params, r.tags, metrics(r)) for r in trials],
        "all": len(reader.runs(experiment)),
        "history": reader.history(trials[0].run_id, "loss"),
        "models": [(m.name, m.description, m.tags) for m in reader.models()],
        "versions": [(v.version, v.run_id, v.source, v.tags) for v in reader.versions("s.trials")],
        "artifact": reader.artifact_text(fit_run.run_id, "fit.json"),
        "logged": [(m.name, m.run_id, m.status, m.params, m.tags)
                   for m in reader.logged_models(experiment)],
    }


def test_sqlite_reader_answers_as_mlflow_does(store_uri, tmp_path):
    experiment = populate(connect(store_uri), tmp_path)
    fast, slow = answers(SqliteReader(store_uri), experiment), \
        answers(ClientReader(store_uri), experiment)
    assert fast == slow
    assert len(fast["trials"]) == 2 and fast["all"] == 3 and fast["missing"] is None
    assert [s for s, _ in fast["history"]] == [0, 5, 10] and fast["artifact"] == '{"sweep": "s"}'
    assert [m[2] for m in fast["logged"]] == ["READY", "PENDING"]
    assert isinstance(open_reader(store_uri), SqliteReader)


@pytest.mark.slow
def test_rest_reader_answers_as_mlflow_does(tmp_path):
    server = MlflowServer(tmp_path, free_port())
    server.start()
    try:
        uri = f"http://127.0.0.1:{server.port}"
        experiment = populate(connect(uri), tmp_path)
        fast = answers(RestReader(uri), experiment)
        assert fast == answers(ClientReader(uri), experiment)
        assert len(fast["trials"]) == 2 and fast["versions"][1][0] == 2
        assert isinstance(open_reader(uri), RestReader)
    finally:
        server.stop()
