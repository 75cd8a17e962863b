"""Tables that fit: numbers to their noise, the columns that fit the width, none cut; `sweeps
list`, `status`'s summary line and "did you mean" on a real sqlite store, in process."""

from __future__ import annotations

import pytest
from rich.console import Console

from sweeps import cli, commands, tables
from sweeps.errors import UserError
from tests.sweeps.test_progress import key, sweep  # noqa: F401  (the fixture)


@pytest.mark.parametrize("values, expected", [
    ([0.3512, -2.186e-09, 1.322e-22], ["0.3512", "0", "0"]),  # noise beside a loss: 0
    ([12.5, 0.004], ["12.50", "0"]),
    ([1.0, 0.0, None], ["1", "0", ""]),  # integral values (flags, counts) as integers
    ([3.1e-9, 1.2e-9, 1.322e-22], ["3.100e-09", "1.200e-09", "0"]),  # tiny, but the scale
    ([123456.7, 2.0], ["123457", "2"]),
    ([float("nan"), 0.5], ["nan", "0.5000"]),
])
def test_numbers_are_rounded_to_the_columns_resolution(values, expected):
    fmt = tables.number_format(values)
    assert [fmt(v) for v in values] == expected


def columns(n: int) -> list[tables.Column]:
    return [tables.Column(f"metric_{i}", ["0.1234"], numeric=True) for i in range(n)]


def test_the_columns_that_fit_are_shown_and_the_rest_named():
    shown, left_out = tables.choose(columns(12), width=40, keep=1, wide=False, named=None)
    assert [c.name for c in shown] == ["metric_0", "metric_1", "metric_2", "metric_3"]
    assert left_out == [f"metric_{i}" for i in range(4, 12)]
    shown, left_out = tables.choose(columns(12), width=40, keep=1, wide=True, named=None)
    assert len(shown) == 12 and left_out == []
    shown, _ = tables.choose(columns(12), width=40, keep=1, wide=False,
                             named=["metric_9", "metric_2"])
    assert [c.name for c in shown] == ["metric_0", "metric_9", "metric_2"]


def test_an_unknown_column_is_refused_with_the_nearest_name():
    with pytest.raises(UserError, match="did you mean 'metric_2'"):
        tables.choose(columns(3), width=80, keep=1, wide=False, named=["metric2"])


def test_a_rendered_table_wider_than_the_terminal_is_never_cut(capsys):
    wide = [tables.Column(f"a_long_metric_name_{i}", ["-0.000123"], numeric=True)
            for i in range(6)]
    tables.render(Console(width=80, force_terminal=False), wide)
    lines = capsys.readouterr().out.splitlines()
    assert all(f"a_long_metric_name_{i}" in lines[0] for i in range(6))
    assert "…" not in "".join(lines)


def test_status_opens_with_the_sweeps_state_and_fits_80_columns(sweep, tracking_uri, capsys,
                                                                  monkeypatch):
    monkeypatch.setattr(commands, "console", Console(width=80))
    assert cli.main(["status", "tiny", "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "tiny: running, 2 of 4 points finished, 2 running"
    table = out[1:out.index("MLflow, experiment tiny: serve the store with")]
    assert all(len(line) <= 80 for line in table), table
    assert "run id" not in table[0] and "(1 more column: run id" in table[-1]
    assert any(line.startswith(key(12, 0.2)) for line in table)


def test_list_shows_every_sweep_with_its_state_and_counts(sweep, tracking_uri, capsys):
    client, parent, _ = sweep
    client.set_terminated(parent, "KILLED")
    client.create_experiment("not-a-sweep")
    assert cli.main(["list", "--tracking-uri", tracking_uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["sweep", "state", "trainable", "finished", "running",
                                "interrupted", "failed", "not", "started"]
    assert lines[1].split() == ["tiny", "interrupted", "synthetic", "2/4", "2", "0", "0", "0"]
    assert len(lines) == 2  # neither MLflow's Default experiment nor another one


def test_a_misspelt_sweep_name_gets_the_nearest_one(sweep, tracking_uri, capsys, tmp_path):
    for command in (["status", "tinny"], ["curves", "tinny"]):
        assert cli.main([*command, "--tracking-uri", tracking_uri]) == 2
        assert "no sweep named 'tinny'" in capsys.readouterr().err
    assert cli.main(["status", "tinny", "--tracking-uri", tracking_uri]) == 2
    assert capsys.readouterr().err.rstrip().endswith("did you mean 'tiny'?")
    assert cli.main(["status", "zzzz", "--tracking-uri", tracking_uri]) == 2
    assert "did you mean" not in capsys.readouterr().err
    assert cli.main(["resume", "tinny", "--storage", str(tmp_path / "runs"),
                     "--tracking-uri", tracking_uri]) == 2
    assert capsys.readouterr().err.rstrip().endswith("did you mean 'tiny'?")
