"""`sweeps fit` and `sweeps registry` on a real population sweep: real Ray, real MLflow on a
temporary sqlite, the registered models loaded back in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from sweeps.cli import main
from sweeps.spec import validate
from tests.conftest import REPO, tiny_spec
from tracking.fit import run as fit_run
from tracking.query import open_reader, read_rows
from trainables.points import Point
from trainables.synthetic import SYNTHETIC, theory
from trainables.synthetic.student import Pack
from trainables.synthetic.trainable import member_for, setup_for, spectrum

# Widths on both sides of the theory's critical width at each frequency (6, 9 and 12).
SPEC = tiny_spec(grid__width=[5, 6, 8, 9, 11, 12, 14], grid__frequency=[0.2, 0.1, 0.05])
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(ray_cluster, tmp_path_factory):
    """The sweep run and fitted once; returns (tracking URI, folder, `sweeps fit` output)."""
    import yaml

    folder = tmp_path_factory.mktemp("fit")
    (folder / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    assert main(["run", str(folder / "spec.yaml"), "--storage", str(folder / "runs"),
                 "--tracking-uri", uri]) == 0
    result = sweeps("fit", "tiny", "--tracking-uri", uri, cwd=folder)
    assert result.returncode == 0, result.stderr
    return uri, folder, result.stdout


def sweeps(*args, cwd):
    """The CLI in a subprocess, running this checkout's code (from another folder, the
    installed project's would answer)."""
    return subprocess.run([sys.executable, "-m", "sweeps", *map(str, args)], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)


def fit_runs(client: MlflowClient):
    experiment = client.get_experiment_by_name("tiny").experiment_id
    return client.search_runs([experiment], "tags.kind = 'fit'",
                              order_by=["attributes.start_time ASC"])


def test_fit_is_one_run_with_plots_beside_the_trials(sweep):
    uri, folder, output = sweep
    client = MlflowClient(uri)
    (run,) = fit_runs(client)
    assert run.info.status == "FINISHED" and run.data.tags["sweep"] == "tiny"
    assert run.info.artifact_uri.startswith(str(folder / "mlartifacts"))  # beside the db
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {f"plots/{name}{suffix}" for suffix in (".png", ".pdf")
                     for name in ("loss-vs-width", "phase-diagram", "theory-vs-measured")}
    assert len(read_rows(open_reader(uri), "tiny")) == 21  # the fit run is no grid point
    (parent,) = client.search_runs([run.info.experiment_id], "tags.kind = 'sweep'")
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id  # a child of the sweep
    assert run.info.run_name == "fit 21/21"
    assert "fit/complex/0.1/critical_width" in run.data.metrics
    assert {"fit/complex/0.1/n_step", "fit/complex/0.1/rmse"} <= set(run.data.metrics)
    assert run.data.metrics["fit/complex/0.1/points"] == 7
    assert run.data.params["measure.threshold"] == "0.5"
    assert "21 of 21 grid points finished" in output and "model scaling" in output


def test_critical_width_matches_the_theory(sweep):
    uri, _, _ = sweep
    client = MlflowClient(uri)
    fit = fit_run.read_fit(client, fit_runs(client)[0].info.run_id)
    section = validate(SPEC).synthetic
    for c in fit.curves:
        n_star = theory.critical_width(spectrum(section, Point(5, c.curve.frequency,
                                                               "complex", 0)), 0.5)
        # The first learning width is the theory's N*, the one before it is N* - 1, and the
        # interpolated N* lies between them.
        assert (c.critical.below, c.critical.above) == (n_star - 1, n_star), c.curve.frequency
        assert n_star - 1 < c.critical.width <= n_star
        assert c.curve.theory_critical == n_star
    (law,) = fit.laws
    assert law.measured.beta == pytest.approx(law.theory.beta, abs=0.15)


LOAD = textwrap.dedent("""
    import json, sys
    import mlflow, pandas as pd
    mlflow.set_tracking_uri(sys.argv[1])
    model = mlflow.pyfunc.load_model("models:/tiny@latest")
    out = model.predict(pd.DataFrame({"width": [5.0, 14.0, 8.0, 8.0],
                                      "frequency": [0.2, 0.2, 0.07, 0.005],
                                      "task": ["complex"] * 4}))
    import tracking
    print(json.dumps({"out": out.to_dict("list"), "tracking": tracking.__file__,
                      "critical": model.unwrap_python_model().critical_width(0.07, "complex"),
                      "imported": sorted(m for m in ("sweeps", "trainables", "ray", "torch")
                                         if m in sys.modules)}))
""")


def test_registered_fit_loads_in_a_fresh_process_and_predicts(sweep, tmp_path):
    uri, folder, _ = sweep
    client = MlflowClient(uri)
    fit = fit_run.read_fit(client, fit_runs(client)[0].info.run_id)
    result = subprocess.run([sys.executable, "-c", LOAD, uri], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["imported"] == []  # the model needs neither the trainables nor Ray
    assert answer["tracking"].endswith("/code/tracking/__init__.py")  # the model's own copy
    out = answer["out"]
    assert out["learned"][:3] == [False, True, fit.critical_width(0.07, "complex") <= 8]
    assert out["extrapolated"] == [False, False, False, True]  # 0.005: a decade below 0.05
    assert out["critical_width"][2] == pytest.approx(fit.critical_width(0.07, "complex"))
    assert answer["critical"] == pytest.approx(out["critical_width"][2])
    assert out["rare_loss"][0] == pytest.approx(fit.rare_loss(5, 0.2, "complex"))
    assert out["rare_loss"][0] > out["rare_loss"][1]


def test_trained_models_are_found_by_their_grid_point(sweep):
    uri, folder, _ = sweep
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny").experiment_id
    models = client.search_logged_models([experiment], "params.width = '9' AND "
                                         "params.frequency = '0.1' AND params.task = 'complex' "
                                         "AND params.seed = '0'")
    assert len(models) == 1 and models[0].name == "w9 f=0p1 complex s0"
    (row,) = [r for r in read_rows(open_reader(uri), "tiny") if r.run_id == models[0].source_run_id]
    assert row.key == "width=9,frequency=0.1,task=complex,seed=0"
    assert not client.search_model_versions("name = 'tiny.trials'")  # no pretend versions

    shown = sweeps("registry", "show", "tiny.trials", "--width", 9, "--frequency", "1e-1",
                   "--task", "complex", "--tracking-uri", uri, cwd=folder)
    assert shown.returncode == 0, shown.stderr
    assert "1 trained model matching" in shown.stdout and models[0].model_id in shown.stdout
    listed = sweeps("registry", "list", "--tracking-uri", uri, cwd=folder)
    assert listed.returncode == 0, listed.stderr
    assert "21 (tiny.trials)" in listed.stdout
    assert any(line.split()[:2] == ["tiny", "fit"] for line in listed.stdout.splitlines())

    # The model is the trained student: its prediction error on the rare task is the
    # run's final rare/loss (the loss under the best decoders, which training reached).
    import mlflow

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{models[0].model_id}")
    point = Point(9, 0.1, "complex", 0)
    section = SYNTHETIC.resolve(validate(SPEC).synthetic, point)
    truth = Pack(setup_for(section, 9), [member_for(section, point)], dtype=torch.float64)
    x = np.random.default_rng(0).normal(size=(4000, 16))
    z = x @ truth.Q[0].numpy()  # eigen-coordinates of x (rows: Q^T x)
    target = (truth.sqrt_lam[0, :, 0].numpy() * z)[:, 12:16]  # the rare task's W_k x
    inputs = {f"x{i}": x[:, i] for i in range(16)} | {"task": [3] * len(x)}
    import pandas as pd

    predicted = model.predict(pd.DataFrame(inputs)).to_numpy()
    error = np.mean(np.sum((predicted - target) ** 2, axis=1))
    assert error == pytest.approx(row.metrics["rare/loss"], rel=0.1, abs=0.02)


def test_refit_of_a_partial_sweep_says_what_is_missing_and_moves_latest(sweep):
    uri, folder, _ = sweep
    client = MlflowClient(uri)
    rows = read_rows(open_reader(uri), "tiny")
    client.update_run(rows[0].run_id, status="RUNNING")  # as if its trial were still going
    try:
        result = sweeps("fit", "tiny", "--tracking-uri", uri, cwd=folder)
    finally:
        client.update_run(rows[0].run_id, status="FINISHED")
    assert result.returncode == 0, result.stderr
    assert "20 of 21 grid points finished" in result.stdout
    assert "missing: 1 grid points not finished" in result.stdout
    assert rows[0].key in result.stdout
    latest = client.get_model_version_by_alias("tiny", "latest")
    assert int(latest.version) == 2 and latest.tags["finished"] == "20"
    assert latest.run_id == fit_runs(client)[-1].info.run_id
    assert len(client.search_logged_models(
        [client.get_experiment_by_name("tiny").experiment_id], "tags.kind = 'trial'")) == 21
