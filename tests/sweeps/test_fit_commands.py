"""`sweeps fit` and `sweeps registry` refusing what they cannot answer: exit 2, one message;
their tables fitting 80 columns, from a real fit and a real registry on a sqlite store."""

from __future__ import annotations

from argparse import Namespace

import pytest
from mlflow.entities import LoggedModelStatus
from rich.console import Console

from sweeps import commands, fit_commands
from sweeps.cli import main
from sweeps.errors import UserError
from tests.tracking.test_sweep_fit import MEASURE, curve
from tracking.fit.sweep_fit import fit_sweep
from tracking.layout import FIT_FILE, KIND_FIT, KIND_TRIAL
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id


def test_fit_of_an_unknown_sweep_exits_2(store_uri, capsys):
    connect(store_uri)  # the store exists, the sweep does not
    assert main(["fit", "nope", "--tracking-uri", store_uri]) == 2
    assert "no sweep named 'nope'" in capsys.readouterr().err


def test_fit_of_a_sweep_with_nothing_finished_exits_2_and_logs_nothing(store_uri, capsys):
    client = connect(store_uri)
    experiment = experiment_id(client, "s", create=True)
    ensure_runs(client, experiment, [PlannedRun(
        key="width=4,frequency=0.1,task=simple,seed=0",
        params={"width": "4", "frequency": "0.1", "task": "simple", "seed": "0"},
        tags={"sweep": "s", "trainable": "synthetic"})])
    assert main(["fit", "s", "--tracking-uri", store_uri]) == 2
    err = capsys.readouterr().err
    assert "no finished grid point yet (0 of 1)" in err and "sweeps resume s" in err
    assert len(client.search_runs([experiment])) == 1  # no fit run
    assert client.search_registered_models() == []


def test_registry_show_of_an_unknown_model_exits_2(store_uri, capsys):
    connect(store_uri)
    assert main(["registry", "list", "--tracking-uri", store_uri]) == 0
    assert main(["registry", "show", "nope", "--tracking-uri", store_uri]) == 2
    assert "no registered model named 'nope'" in capsys.readouterr().err


def test_registry_show_refuses_a_malformed_axis_value(store_uri, capsys):
    client = connect(store_uri)
    client.create_registered_model("s.trials")
    assert main(["registry", "show", "s.trials", "--frequency", "often",
                 "--tracking-uri", store_uri]) == 2
    assert "--frequency 'often': not a number" in capsys.readouterr().err
    assert main(["registry", "show", "s.trials", "--width", "x' or '1",
                 "--tracking-uri", store_uri]) == 2
    assert "--width" in capsys.readouterr().err


@pytest.fixture
def fitted():
    """Three frequencies of one task (N*(f) fitted) and one of another (too few for it)."""
    curves = [curve(f) for f in (1e-2, 1e-3, 1e-4)] + [curve(1e-2, task="complex")]
    return fit_sweep("s", "synthetic", MEASURE, curves, total=30, missing=["a", "b"])


@pytest.fixture
def console(monkeypatch) -> Console:
    out = Console(width=80, record=True, force_terminal=False)
    monkeypatch.setattr(commands, "console", out)
    return out


def fits_80(text: str) -> list[str]:
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert "\u2026" not in text  # nothing cut
    return lines


def test_the_fit_tables_fit_80_columns_with_more_on_request(fitted, console):
    fit_commands._show(Namespace(wide=False, columns=None), fit_commands.fit_tables(fitted))
    lines = fits_80(console.export_text())
    head = next(line for line in lines if line.startswith("task     frequency"))
    assert head.split()[2:4] == ["N*", "N*"] and "rmse" not in head
    assert any(line.startswith("(") and "rmse" in line and "--wide" in line for line in lines)
    row = next(line for line in lines if line.startswith("simple       0.001"))
    assert f"{fitted.curves[1].critical.width:.2f}" in row.split()  # 4 significant digits
    assert any("needs uncensored N* at 3 frequencies" in line for line in lines)

    fit_commands._show(Namespace(wide=True, columns=None), fit_commands.fit_tables(fitted))
    wide = console.export_text().splitlines()
    assert any(line.split()[-1] == "rmse" for line in wide)
    assert not any(line.startswith("(") and "--wide" in line for line in wide)


def test_columns_picks_from_either_fit_table_and_refuses_an_unknown_one(fitted, console):
    fit_commands._show(Namespace(wide=False, columns="rmse,c"), fit_commands.fit_tables(fitted))
    heads = [line.split() for line in fits_80(console.export_text())
             if line.startswith("task ")]
    assert heads == [["task", "frequency", "rmse"], ["task", "beta", "[95%]", "c"]]
    with pytest.raises(UserError, match="no column 'rmsee'; did you mean 'rmse'"):
        fit_commands._show(Namespace(wide=False, columns="rmsee"),
                           fit_commands.fit_tables(fitted))


def test_registry_tables_fit_80_columns_and_keep_ids_whole(fitted, store_uri, console):
    client = connect(store_uri)
    experiment = experiment_id(client, "s", create=True)
    run = client.create_run(experiment).info.run_id
    client.log_text(run, fitted.model_dump_json(), FIT_FILE)
    client.create_registered_model("s", tags={"kind": KIND_FIT, "sweep": "s"},
                                   description="Fit of sweep s: predict(width, frequency, "
                                               "task) -> rare_loss, learned, critical_width")
    fit = client.create_logged_model(experiment, name="fit", source_run_id=run,
                                     tags={"kind": KIND_FIT, "sweep": "s"})
    client.create_model_version("s", fit.artifact_location, run_id=run, model_id=fit.model_id,
                                tags={"kind": KIND_FIT, "sweep": "s"})
    model = client.create_logged_model(
        experiment, name="w16 f=0p001 simple s0", source_run_id=run,
        params={"width": "16", "frequency": "0.001", "task": "simple", "seed": "0"},
        tags={"kind": KIND_TRIAL, "sweep": "s"})
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)

    def answer(*argv: str) -> list[str]:
        assert main([*argv, "--tracking-uri", store_uri]) == 0
        text = console.export_text()
        return text.splitlines() if "--wide" in argv else fits_80(text)

    listing = answer("registry", "list")
    assert listing[0].split()[:4] == ["model", "kind", "versions", "newest"]
    assert listing[1].split()[:4] == ["s", "fit", "1", "v1"]
    versions = answer("registry", "show", "s")
    assert versions[1].split()[:4] == ["version", "kind", "sweep", "source"]
    assert run in versions[2].split()  # it fits: shown, whole
    assert any(line.startswith("task     frequency") for line in versions)  # the fit
    trained = answer("registry", "show", "s.trials")
    assert trained[1].split() == ["width", "frequency", "task", "seed", "model"]
    assert f"models:/{model.model_id}" in trained[2].split()  # whole
    assert run not in "".join(trained) and "run id" in trained[3]  # left out, not cut
    assert run in answer("registry", "show", "s.trials", "--wide")[2].split()
    assert run in answer("registry", "show", "s.trials", "--columns", "run id")[2].split()
