"""`sweeps reproduce`: bad input refused with nothing written; a tiny synthetic study run for
real (real Ray, real MLflow on sqlite), its claims computed from its runs, its page naming
every figure, a second call reusing the finished sweeps."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

import pytest

from sweeps import cli, reproduction
from sweeps.studies import synthetic as study
from tracking.layout import KIND_REPORT
from tracking.query import open_reader


def nothing_written(folder) -> bool:
    return sorted(p.name for p in folder.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "synthetic", "--scale", "huge"], "--scale 'huge' is not a scale"),
    (["reproduce", "toy"], "no study 'toy'"),
    (["reproduce", "synthetic", "--out", "file.txt"], "is a file"),
    (["reproduce", "synthetic", "--set", "synthetic.nonsense=1"], "synthetic.nonsense"),
])
def test_bad_input_exits_2_and_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if "file.txt" in argv:
        (tmp_path / "file.txt").write_text("")
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["file.txt"] if "file.txt" in argv
                                                          else [])


def test_a_study_missing_from_this_checkout_is_refused_cleanly(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(reproduction.STUDIES, "olmo", ("sweeps.studies.nowhere",
                                                    "tracking.report.nowhere"))
    assert cli.main(["reproduce", "olmo"]) == 2
    assert "the olmo study is not in this version" in capsys.readouterr().err
    assert nothing_written(tmp_path)


def test_overrides_reach_every_sweep_of_the_study(tmp_path):
    _, specs, states = reproduction.plan("olmo", "quick", tmp_path / "out",
                                         ["resources.cpu=2"], str(tmp_path / "runs"),
                                         f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(specs) > 1 and {spec.resources.cpu for spec in specs.values()} == {2}
    assert set(states.values()) == {reproduction.NEW}
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # planned, nothing written


TINY = study.Scale(tasks=4, features_per_task=4, phase_widths=[1, 2, 4, 8],
                   # f=0.005: the complex task's N* is beyond width 8, a grid that cannot
                   # measure it (C2 must say so)
                   phase_frequencies=[0.2, 0.005], seeds=[0, 1], frequency=0.05,
                   burst_widths=[4, 12], burst_steps=200, trace_widths=[4, 12], trace_steps=60,
                   long_widths=[2, 12], long_steps=1000,
                   resources={"cpu": 1, "gpu": 0, "workers": 1}, phase_seeds=[0],
                   long_seeds=[0], bursts=(1, 20), log_every=7)


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.images = set(), 0

    def handle_starttag(self, tag, attrs):
        self.ids |= {v for k, v in attrs if k == "id"}
        self.images += tag == "img"


@pytest.mark.slow
def test_a_tiny_study_runs_judges_its_claims_from_its_runs_and_reuses_them(
        ray_cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(study, "SCALES", ("tiny",))
    monkeypatch.setitem(study.SCALE, "tiny", TINY)
    monkeypatch.setattr(study, "TWO_DIRECTIONS", tmp_path / "no-preset.yaml")
    uri, runs, out = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "runs"), tmp_path / "r"
    said = []
    outcome = reproduction.reproduce("synthetic", "tiny", out, [], runs, uri, say=said.append)
    assert outcome.ok and (out / "index.html").is_file()
    assert list(outcome.sweeps) == ["phase", "bursts-1", "bursts-20", "trace", "long"]

    claims = {c["id"]: c for c in json.loads((out / "claims.json").read_text())}
    assert sorted(claims) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"]
    assert claims["C1"]["holds"] is True, claims["C1"]["evidence"]
    # the grid misses the complex task's N* at f=0.005: that curve is not used
    assert "complex f=0.005 seed 0: the widths (up to 8) do not reach" in claims["C2"]["evidence"]
    assert claims["C4"]["holds"] is None and "needs at least 5" in claims["C4"]["reason"]
    assert all(c["holds"] in (True, False, None) and c["evidence"] and c["cells"]
               for c in claims.values())
    assert all(c["reason"] for c in claims.values() if c["holds"] is None)
    assert claims["C6"]["holds"] is not None  # the phase runs' feature_steps.json tables, read
    data = {p.stem for p in (out / "data").glob("*.csv")}
    assert {p.stem for p in (out / "figures").glob("*.png")} | {"claims"} == data
    with (out / "data" / "fig6b-bursts.csv").open() as f:
        bursts = list(csv.DictReader(f))
    assert {(r["width"], r["seed"], r["burst"]) for r in bursts} >= {
        (w, s, n) for w in ("4", "12") for s in ("0", "1") for n in ("1", "20")}

    page = Page()
    page.feed((out / "index.html").read_text())
    names = {p.stem for p in (out / "figures").glob("*.png")}
    assert names == {p.stem for p in (out / "figures").glob("*.pdf")}
    assert names <= page.ids and page.images == len(names) == 6
    assert set(claims) <= page.ids
    index = (out / "index.html").read_text()
    assert index.count('href="http://127.0.0.1:5000/#/experiments/') == 5  # each sweep's run
    assert "Settings." not in index and "training time" in index

    reader = open_reader(uri)
    logged = reader.runs(reader.experiment_id(outcome.sweeps["phase"]), KIND_REPORT)
    assert [r.run_id for r in logged] == [outcome.report_run]
    assert logged[0].metrics["claim/C1"] == 1.0

    said.clear()  # a second call runs nothing: every sweep finished
    again = reproduction.reproduce("synthetic", "tiny", out, [], runs, uri, say=said.append)
    assert again.ok and sum("reused" in line for line in said) == 5
    assert json.loads((out / "claims.json").read_text()) == list(claims.values())


def test_the_cluster_scale_on_a_machine_without_gpus_is_refused_before_anything_runs(
        tmp_path, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine could run the full scale")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cli.main(["reproduce", "synthetic", "--scale", "full"]) == 2
    assert "needs GPUs this machine does not have" in capsys.readouterr().err
    assert nothing_written(tmp_path)
