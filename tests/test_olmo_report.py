"""The OLMo report from real runs: tiny sweeps of the roles `sweeps.studies.olmo` defines (the
4M model, and 20M in the measuring sweep so retention and interference have two sizes),
trained on the embedded Ray into a sqlite MLflow store, read back through the sqlite Reader
into `tracking.report.olmo.build`."""

from __future__ import annotations

import pytest

import sweeps
from tracking.query import open_reader
from tracking.report.olmo import build

pytestmark = pytest.mark.slow

SECTION = {"seq_len": 8, "batch_size": 4, "steps": 8, "eval_every": 4, "eval_instances": 16,
           "checkpoint_every": 8}


def tiny(name: str, widths: list[str], frequencies: list[float], **olmo) -> dict:
    return {"name": name, "trainable": "olmo",
            "grid": {"width": widths, "frequency": frequencies, "task": ["cmp"], "seed": [0]},
            "olmo": {**SECTION, **olmo}, "resources": {"cpu": 1, "workers": 1}}


def test_the_olmo_report_reads_real_runs_into_figures_and_claims(ray_cluster, tmp_path):
    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "runs")
    once_a_batch = 1 / (SECTION["batch_size"] * SECTION["seq_len"])
    specs = {
        "heat": tiny("o-heat", ["4M"], [1 / 8, once_a_batch]),
        "gap-1": tiny("o-gap-1", ["4M"], [once_a_batch], schedule={"block": 1}, eval_every=1),
        # Two instances every two batches, measured at every step: injections at steps 2, 4,
        # 6 and 8, the others between; read every step, so O3 has whole cycles of N = 2.
        "gap-2": tiny("o-gap-2", ["4M", "20M"], [once_a_batch], schedule={"block": 2},
                      eval_every=1, measure_every=1, interference_instances=50,
                      interference_neurons=16),
    }
    for spec in specs.values():
        assert sweeps.run(spec, storage=storage, tracking_uri=uri).ok

    figures_dir = tmp_path / "figures"
    figures, claims = build(open_reader(uri), {role: s["name"] for role, s in specs.items()},
                            figures_dir)

    assert [f.name for f in figures] == ["olmo-fig5-heatmaps", "olmo-fig6a-order",
                                         "olmo-fig6b-gaps", "olmo-fig8-retention",
                                         "olmo-fig9-interference"]
    for figure in figures:
        for suffix in (".png", ".pdf"):
            assert (figures_dir / f"{figure.name}{suffix}").stat().st_size > 1000, figure.name
    assert [c.id for c in claims] == ["O1", "O2", "O3", "O4", "O5"]
    by_id = {c.id: c for c in claims}
    for claim in claims:
        assert claim.holds in (True, False, None) and claim.evidence, claim
        assert claim.figure in {f.name for f in figures}
        assert claim.cells is not None and claim.cells.used <= claim.cells.planned
        # Every verdict a statistic with its interval and null, or null with its reason.
        assert (claim.reason is not None) if claim.holds is None else (
            claim.interval is not None and claim.null is not None and claim.n >= 2), claim
    # Read from the runs: N from each run's schedule, the same instances at N = 1 and 2,
    # both sizes of the measuring sweep, each in units of its own D = K x 3 d_model.
    assert "4M seed 0: N=1" in by_id["O3"].evidence and "N=2" in by_id["O3"].evidence
    assert "4M: D=3,072" in by_id["O5"].evidence and "20M: D=9,216" in by_id["O5"].evidence
    # 8 steps: nothing below ln 2 beyond the noise of 16 instances.
    assert by_id["O1"].holds is None and "label vocabulary" in by_id["O1"].reason
    data = {f.name: {row["metric"] for row in f.data} for f in figures}
    assert {"rare/label_loss", "rare/label_acc"} <= data["olmo-fig5-heatmaps"]
    assert {"interference/cos_nontask", "interference/cos_nontask_rows"} <= data[
        "olmo-fig9-interference"]
    assert "rare/retained" in data["olmo-fig8-retention"]
