"""`search: critical_width` end to end (real local Ray, real MLflow on sqlite, through the CLI):
the searched N*(f) table is the grid's at a fraction of its points, a planted non-monotone
verdict is met, its neighbours trained and it is reported, and a killed search resumes to the
same table."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

import sweeps
from sweeps import critical_width as cw
from sweeps.reproduction import FINISHED, sweep_state
from sweeps.spec import validate
from tests.plugin.counting import COUNTING
from tests.conftest import run_sweeps, sweeps_command, tiny_spec, wait_for
from tests.trainables.test_catalog import plugin  # noqa: F401  (the counting trainable)
from trainables import catalog
from trainables.points import Point
from trainables.synthetic import SYNTHETIC
from trainables.synthetic.trainable import spectrum, theory
from tracking.curves import OPEN, critical_table, finished
from tracking.layout import SEARCH_FILE
from tracking.query import open_reader, read_rows, read_sweep

WIDTHS, FREQUENCIES, STEPS = [1, 2, 3, 4, 5, 6, 7, 8], [0.05, 0.1, 0.2, 0.4], 6


def counting(name: str, search: str, **section) -> dict:
    """Learned where width x frequency x steps >= 1 (loss 1 / (1 + that) <= 0.5): monotone."""
    return {"name": name, "trainable": "counting", "search": search,
            "grid": {"width": WIDTHS, "frequency": FREQUENCIES, "task": ["up"]},
            "counting": {"steps": STEPS, **section},
            "resources": {"max_concurrent_trials": 2}}


def table(uri: str, name: str) -> tuple[dict, list]:
    rows = read_rows(open_reader(uri), name)
    trainable = COUNTING if rows[0].trainable == "counting" else catalog.get(rows[0].trainable)
    return critical_table(rows, trainable.measure(rows[0].params)), rows


def truth() -> dict:
    return {("up", 0, f): next((str(w) for w in WIDTHS if w * f * STEPS >= 1), None)
            for f in FREQUENCIES}


@pytest.mark.slow
def test_a_searched_sweep_finds_the_grids_table_training_a_fraction(plugin, tmp_path,  # noqa: F811
                                                                    write_spec, tracking_uri,
                                                                    monkeypatch):
    flags = ["--tracking-uri", tracking_uri, "--storage", tmp_path / "runs"]
    for name, search in (("grid", "grid"), ("searched", "critical_width")):
        ran = run_sweeps("run", write_spec(counting(name, search), f"{name}.yaml"), *flags,
                         cwd=tmp_path, env=plugin)
        assert ran.returncode == 0, ran.stderr
    full, grid_rows = table(tracking_uri, "grid")
    found, rows = table(tracking_uri, "searched")
    assert full == found == truth()
    assert len(finished(grid_rows)) == 32
    assert len(finished(rows)) <= len(WIDTHS) + len(FREQUENCIES)  # runs: trained points only
    assert {r.state for r in rows} == {"FINISHED", "INFERRED"}
    assert "(L)" in ran.stdout and "(.)" in ran.stdout  # curves mark the inferred cells
    assert "32/32 grid points finished (" in ran.stdout  # the view counts inferred ones done
    # The fit reads a searched sweep as a grid one: every point counted, N* between the same
    # two widths (interpolated by score in the grid, in log width beside an inferred cell).
    registered = catalog.get  # the test's trainable, registered in this process too
    monkeypatch.setattr(catalog, "get", lambda n: COUNTING if n == "counting" else registered(n))
    fits = [sweeps.fit(name, tracking_uri=tracking_uri, log=False).fit
            for name in ("grid", "searched")]
    assert fits[1].missing == [] and fits[1].total == 32
    brackets = [[(c.curve.task, c.curve.frequency, c.critical.below, c.critical.above)
                 for c in fit.curves] for fit in fits]
    assert brackets[0] == brackets[1] and len(brackets[0]) == len(FREQUENCIES)


@pytest.mark.slow
def test_a_planted_non_monotone_point_is_retrained_around_and_reported(plugin, tmp_path,  # noqa: F811
                                                                       write_spec,
                                                                       tracking_uri):
    # The first two points the search trains at once: the most frequent column's probe and,
    # as that column is busy, the next one's; both learned in truth, the first narrower-or-
    # equal and rarer. Planting "not learned" on the wider, more frequent one contradicts it.
    chain, flat = cw.Chain(len(WIDTHS), len(FREQUENCIES)), np.ones((len(WIDTHS), 4))
    first = chain.next(set(), flat)
    second = chain.next({first}, flat)
    assert second[0] <= first[0] and second[1] < first[1]
    planted = Point(WIDTHS[first[0]], FREQUENCIES[first[1]], "up", 0).key
    spec = write_spec(counting("planted", "critical_width", flip=[planted]))
    ran = run_sweeps("run", spec, "--tracking-uri", tracking_uri, "--storage",
                     tmp_path / "runs", cwd=tmp_path, env=plugin)
    assert ran.returncode == 0, ran.stderr
    found, rows = table(tracking_uri, "planted")
    assert found == truth()  # the planted verdict was outvoted
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("planted").experiment_id
    (parent,) = client.search_runs([experiment], "tags.kind = 'sweep'")
    report = search_report(tracking_uri, "planted", tmp_path)
    (contradiction, *_) = report["contradictions"]
    assert contradiction["not_learned"] == planted and contradiction["outliers"] == [planted]
    assert int(parent.data.tags["search.contradictions"]) >= 1
    trained = {r.key for r in finished(rows)}
    near = {Point(WIDTHS[first[0] + di], FREQUENCIES[first[1] + dj], "up", 0).key
            for di, dj in ((-1, 0), (1, 0), (0, -1)) if 0 <= first[0] + di < len(WIDTHS)}
    assert near <= trained  # its neighbours were trained to judge it


@pytest.mark.slow
def test_a_failed_point_leaves_its_cells_undecided_until_resume_retries_it(
        plugin, tmp_path, write_spec, tracking_uri):  # noqa: F811
    # N*(0.05) = 4: no other verdict implies that point's, so the search cannot train around it.
    failing = Point(4, 0.05, "up", 0).key
    marker = tmp_path / "broken"
    marker.touch()
    spec = counting("failing", "critical_width", fail=[failing], fail_while=str(marker))
    spec["failure"] = {"max_failures": 0}
    flags = ["--tracking-uri", tracking_uri, "--storage", tmp_path / "runs"]
    ran = run_sweeps("run", write_spec(spec), *flags, cwd=tmp_path, env=plugin)
    assert ran.returncode == 1, ran.stderr
    assert f"no verdict, as its trial failed (N*(f) open at its frequency): {failing}" \
        in ran.stdout  # which cell, and why
    assert read_sweep(open_reader(tracking_uri), "failing").undecided == {failing: True}
    status = run_sweeps("status", "failing", *flags, cwd=tmp_path)
    assert f"no verdict, as its trial failed (N*(f) open at its frequency): {failing}" \
        in status.stdout  # `status` names the open cell too
    assert table(tracking_uri, "failing")[0][("up", 0, 0.05)] == OPEN  # not the next width
    marker.unlink()  # the failure was transient: resume trains the point again
    resumed = run_sweeps("resume", "failing", *flags, cwd=tmp_path, env=plugin)
    assert resumed.returncode == 0, resumed.stderr
    found, rows = table(tracking_uri, "failing")
    assert found == truth() and {r.state for r in rows} == {"FINISHED", "INFERRED"}


def search_report(tracking_uri: str, name: str, folder) -> dict:
    """The sweep's search.json, from its parent run."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name).experiment_id
    (parent,) = client.search_runs([experiment], "tags.kind = 'sweep'")
    return json.loads(Path(client.download_artifacts(parent.info.run_id, SEARCH_FILE,
                                                     str(folder))).read_text())


def theory_table(spec: dict) -> dict:
    section, grid = validate(spec).synthetic, validate(spec).grid
    out = {}
    for f in grid.frequency:
        point = lambda w: Point(w, f, "complex", 0)  # noqa: E731
        learned = [w for w in grid.width if theory.optimum(
            spectrum(SYNTHETIC.resolve(section, point(w)), point(w)), w).rare_loss
            <= section.learned_threshold]
        out[("complex", 0, f)] = str(learned[0]) if learned else None
    return out


@pytest.mark.slow
def test_a_killed_search_resumes_to_the_same_table(tmp_path, write_spec, tracking_uri):
    spec = tiny_spec(search="critical_width", grid__width=[1, 2, 4, 6, 8, 12],
                     grid__frequency=[0.2, 0.05, 0.02], synthetic__checkpoint_every_s=0.3)
    flags = ["--storage", tmp_path / "runs", "--tracking-uri", tracking_uri]
    driver = sweeps_command("run", write_spec(spec), *flags, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def trained() -> int:
        try:
            return len(finished(read_rows(open_reader(tracking_uri), "tiny")))
        except Exception:  # the store or the experiment not made yet
            return 0

    # The theory's boundary holds here: the search trains its 5 corners, so kill after one.
    wait_for(lambda: trained() >= 1 or driver.poll() is not None, 240, "a point trained")
    assert driver.poll() is None, "the search ended before the kill"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    resumed = sweeps_command("resume", "tiny", *flags, cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    found, rows = table(tracking_uri, "tiny")
    assert found == theory_table(spec)
    predicted = {("complex", 0, row["frequency"]): row["predicted"] and str(row["predicted"])
                 for row in search_report(tracking_uri, "tiny", tmp_path)["critical"]}
    assert predicted == theory_table(spec)  # the theory's N*(f) beside the trained one
    keys = [r.key for r in finished(rows)]
    assert len(keys) == len(set(keys)) < 18  # each trained once, not the whole grid
    # Read like a grid sweep: the fit counts every point, the registry's trained models are
    # the trained points', `sweeps reproduce` reuses it as finished, status says it is done.
    result = sweeps.fit("tiny", tracking_uri=tracking_uri, log=False)
    assert result.fit.missing == [] and result.trained_models == len(keys)
    assert sweep_state(validate(spec), str(tmp_path / "runs"), tracking_uri) == FINISHED
    status = run_sweeps("status", "tiny", "--tracking-uri", tracking_uri, cwd=tmp_path)
    assert (f"tiny: finished, 18 of 18 points finished ({18 - len(keys)} inferred by the "
            "search)") in status.stdout
