"""The Python API a notebook uses, on a real sweep (real Ray, real MLflow on sqlite); and the
project folder moved afterwards, its plots and models still loadable."""

from __future__ import annotations

import json
import re
import shutil

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

import sweeps
from tests.conftest import tiny_spec
from tracking.errors import UserError
from tracking.layout import FIT_FILE
from tracking.query import open_reader

pytestmark = pytest.mark.slow


def check_sweep_run(client: MlflowClient, fitted: bool) -> None:
    """The sweep's parent run as it ends and once fitted: its learning curves (PNG and PDF),
    a description with the headline, the grid axes as params, times as ISO 8601."""
    (parent,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                                   "tags.kind = 'sweep'")
    tags, params = parent.data.tags, parent.data.params
    files = {f.path for f in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/learning-curves.png", "plots/learning-curves.pdf"} <= files
    note = tags["mlflow.note.content"]
    assert "8 of 8 grid points finished" in note and "complex, f=0.2: width" in note
    assert ("N* =" in note) == fitted
    assert params["grid.width"] == "2, 5, 9, 12" and params["grid.frequency"] == "0.2, 0.02"
    assert params["grid.points"] == "8"
    for key in ("launched_at", "heartbeat", "summarised_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", tags[key]), (key, tags[key])


def test_run_status_curves_fit_resume_from_python_then_the_folder_moves(ray_cluster,
                                                                        tmp_path):
    project = tmp_path / "project"
    uri, storage = f"sqlite:///{project / 'mlflow.db'}", str(project / "runs")
    spec = tiny_spec(grid__width=[2, 5, 9, 12])

    plan = sweeps.validate(spec, overrides=["synthetic.learned_threshold=0.6"])
    assert len(plan.points) == 8 and plan.as_json()["trials"] == 4
    assert not project.exists()  # validating writes nothing

    result = sweeps.run(spec, storage=storage, tracking_uri=uri)
    assert result.ok and result.failed == [] and result.name == "tiny"
    assert {row.state for row in sweeps.status("tiny", tracking_uri=uri)} == {"FINISHED"}
    frame = sweeps.curves("tiny", tracking_uri=uri)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 8
    assert frame["width"].tolist() == [2, 5, 9, 12, 2, 5, 9, 12]  # typed, frequent first
    assert frame["frequency"].tolist() == [0.2] * 4 + [0.02] * 4
    learned = frame.set_index(["width", "frequency"])["rare/learned"]
    assert learned[(12, 0.2)] == 1.0 and learned[(2, 0.02)] == 0.0

    assert sweeps.status("tiny", tracking_uri=uri)[0].params["width"] == 2  # typed
    check_sweep_run(MlflowClient(uri), fitted=False)

    client = MlflowClient(uri)
    before = (len(client.search_runs([client.get_experiment_by_name("tiny").experiment_id])),
              len(client.search_registered_models()))
    computed = sweeps.fit("tiny", tracking_uri=uri, log=False)
    assert computed.recorded is None and computed.fit.finished == 8
    assert (len(client.search_runs([client.get_experiment_by_name("tiny").experiment_id])),
            len(client.search_registered_models())) == before  # nothing written
    fitted = sweeps.fit("tiny", tracking_uri=uri)
    assert fitted.fit.finished == 8 and fitted.trained_models == 8
    assert fitted.fit.model_dump() == computed.fit.model_dump()
    check_sweep_run(client, fitted=True)
    with pytest.raises(UserError, match=r'sweeps\.resume\("tiny"\)'):  # a name with state
        sweeps.run(spec, storage=storage, tracking_uri=uri)
    again = sweeps.resume("tiny", storage=storage, tracking_uri=uri)
    assert again.ok and len(sweeps.status("tiny", tracking_uri=uri)) == 8

    # The project folder moves: the fit (read-only, without rewriting the store), then the
    # registered models and the plots (MLflow itself, after any writing command) load.
    moved = tmp_path / "renamed"
    shutil.move(project, moved)
    uri = f"sqlite:///{moved / 'mlflow.db'}"
    reader = open_reader(uri)
    assert json.loads(reader.artifact_text(fitted.recorded.run_id, FIT_FILE))["sweep"] == "tiny"
    sweeps.fit("tiny", tracking_uri=uri)  # writes: mends the recorded locations
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/tiny@latest")
    answer = model.predict(pd.DataFrame({"width": [12.0], "frequency": [0.2],
                                         "task": ["complex"]}))
    assert bool(answer["learned"][0])
    client = MlflowClient(uri)
    (trained, *_) = client.search_logged_models(
        [client.get_experiment_by_name("tiny").experiment_id], "tags.kind = 'trial'")
    student = mlflow.pyfunc.load_model(f"models:/{trained.model_id}")
    assert student.metadata.signature is not None
    plots = mlflow.artifacts.download_artifacts(
        run_id=fitted.recorded.run_id, artifact_path="plots", dst_path=str(tmp_path / "dl"))
    assert sorted(p.name for p in (tmp_path / "dl" / "plots").iterdir()) == \
        sorted(fitted.recorded.plots) and plots
    assert not project.exists()  # nothing wrote to the old place
