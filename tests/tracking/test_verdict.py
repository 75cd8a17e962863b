"""The shared verdict rules (CONTRACTS 7 rev 3) against independent computations, and their
negative controls: data with no effect, or the opposite one, never gives True."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats

from tracking.report import page
from tracking.report.claims import Cells, Figure, Report
from tracking.report.verdict import (bootstrap, decide, judge, mean_of, rank_correlation, share,
                                     slope, undecided)


def test_the_mean_interval_is_student_t_as_scipy_computes_it():
    values = [0.12, 0.31, -0.05, 0.22, 0.18]
    got = mean_of(values, unit="seeds")
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    assert got.effect == pytest.approx(np.mean(values), abs=1e-15)
    assert got.interval == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert got.n == 5 and got.method == "t over 5 seeds"
    assert [v for _, v in got.replicates] == values


def test_the_share_interval_is_clopper_pearson_from_beta_quantiles():
    got = share(17, 20, unit="pairs")
    lo, hi = stats.beta.ppf(0.025, 17, 4), stats.beta.ppf(0.975, 18, 3)  # the textbook form
    assert got.effect == 17 / 20
    assert got.interval == pytest.approx((lo, hi), rel=1e-9)


def test_the_bootstrap_is_seeded_and_a_constant_sample_is_its_own_interval():
    values = [0.3, 0.1, 0.5, 0.2, 0.4, 0.35, 0.15]
    a, b = bootstrap(values), bootstrap(values)
    assert a.interval == b.interval and a.interval[0] < np.mean(values) < a.interval[1]
    assert bootstrap([0.25] * 4).interval == (0.25, 0.25)


@pytest.mark.parametrize("direction,expect", [("greater", True), ("less", False)])
def test_an_interval_above_the_null_decides_by_the_claims_direction(direction, expect):
    estimate = mean_of([0.5, 0.6, 0.55, 0.52])
    assert decide(estimate, 0.0, direction) == (expect, None)


def test_an_interval_across_the_null_or_too_few_replicates_is_null_with_its_reason():
    holds, reason = decide(mean_of([0.3, -0.2, 0.1]), 0.0, "greater")
    assert holds is None and "includes the null 0" in reason
    holds, reason = decide(mean_of([0.9]), 0.0, "greater")
    assert holds is None and "1 independent replicate" in reason
    holds, reason = decide(mean_of([0.5, 0.6, 0.55]), 0.0, "greater", min_n=5)
    assert holds is None and "needs at least 5" in reason


def test_negative_control_pure_noise_almost_never_holds():
    """Replicates drawn around the null: at the 95% level the rule says True in about 2.5%
    of samples (the interval's one-sided error), never systematically."""
    rng = np.random.default_rng(7)
    verdicts = [decide(mean_of(rng.normal(0.0, 1.0, 5)), 0.0, "greater")[0]
                for _ in range(2000)]
    assert verdicts.count(True) / len(verdicts) == pytest.approx(0.025, abs=0.012)
    assert verdicts.count(None) > 0.9 * len(verdicts)


def test_trend_statistics_agree_with_numpy_and_scipy():
    x, y = np.log([4, 8, 16, 32]), [0.9, 0.7, 0.72, 0.1]
    assert slope(x, y) == pytest.approx(stats.linregress(x, y).slope, rel=1e-12)
    assert rank_correlation(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert math.isnan(slope([1, 1], [0.2, 0.3])) and math.isnan(rank_correlation([1, 2], [3, 3]))


def test_a_judged_claim_carries_every_contract_field_and_its_replicates_reach_the_csv(tmp_path):
    estimate = mean_of({"seed 0": -0.2, "seed 1": -0.3, "seed 2": -0.25}, unit="seeds")
    claim = judge("C9", "fig-x", "it falls", estimate, 0.0, "less", "slope of loss on width",
                  Cells(planned=6, used=3))
    entry = claim.as_json()
    assert entry["holds"] is True and entry["n"] == 3 and entry["null"] == 0.0
    assert entry["interval"][1] < 0 and entry["cells"] == {"planned": 6, "used": 3}
    assert "t over 3 seeds" in entry["evidence"] and entry["reason"] is None
    none = undecided("C10", "fig-x", "it rises", "no finished runs", Cells(4, 0))
    figure = Figure("fig-x", "X", "x", data=({"width": 4, "seed": 0, "n": 1, "step": 10,
                                             "metric": "rare/loss", "value": 0.5,
                                             "burst": 10},))
    page.write(Report("synthetic", "tiny", ["s"], [figure], [claim, none]), tmp_path)
    rows = list(csv.DictReader((tmp_path / "data" / "claims.csv").open()))
    assert [(r["claim"], r["replicate"], float(r["value"])) for r in rows] == [
        ("C9", "seed 0", -0.2), ("C9", "seed 1", -0.3), ("C9", "seed 2", -0.25)]
    plotted = list(csv.DictReader((tmp_path / "data" / "fig-x.csv").open()))
    assert list(plotted[0]) == ["width", "frequency", "task", "seed", "n", "step", "metric",
                                "value", "burst"]
    assert plotted[0]["frequency"] == "" and plotted[0]["burst"] == "10"
    written = json.loads((tmp_path / page.CLAIMS).read_text())
    assert written[1]["holds"] is None and written[1]["reason"] == "no finished runs"


def test_a_claim_of_several_parts_holds_only_when_every_part_does():
    from tracking.report.verdict import Part, judge_all

    up, down = mean_of([0.5, 0.6, 0.55, 0.52]), mean_of([-0.5, -0.6, -0.55, -0.52])
    noise = mean_of([0.3, -0.2, 0.1])
    cells = Cells(4, 4)
    both = judge_all("X", "f", "t", [Part("a", up, 0.0, "greater"),
                                     Part("b", down, 0.0, "less")], "e", cells)
    assert both.holds is True and both.reason is None and "a: " in both.evidence
    one_wrong = judge_all("X", "f", "t", [Part("a", up, 0.0, "greater"),
                                          Part("b", up, 0.0, "less")], "e", cells)
    assert one_wrong.holds is False and one_wrong.effect == pytest.approx(up.effect)
    one_open = judge_all("X", "f", "t", [Part("a", up, 0.0, "greater"),
                                         Part("b", noise, 0.0, "less")], "e", cells)
    assert one_open.holds is None and one_open.reason.startswith("b: ")
    assert one_open.effect == pytest.approx(noise.effect)
