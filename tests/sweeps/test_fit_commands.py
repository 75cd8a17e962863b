"""`sweeps fit` and `sweeps registry` refusing what they cannot answer: exit 2, one message."""

from __future__ import annotations

from sweeps.cli import main
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
