"""The synthetic report's claims as plain functions: each holds on data shaped as the paper
says and fails, with evidence saying why, on data that contradicts it; the page opens and
names every figure. No Ray: rows and series are built by hand (the real runs are in
tests/sweeps/test_reproduce.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pytest

from tracking.curves import Row
from tracking.layout import FEATURE_COLUMNS, FEATURE_STEPS
from tracking.report import page
from tracking.report import synthetic_claims as report
from tracking.report.claims import Claim, Figure, Report
from trainables.synthetic import theory

PROBLEM = {"tasks": "4", "features_per_task": "3", "zipf": "1.0", "background_decay": "2.0",
           "complexity.simple": "2.0", "complexity.complex": "0.5", "learned_threshold": "0.5",
           "seed": "0"}


def row(width: int, rare_loss: float, frequency: float = 0.05, task: str = "simple",
        run_id: str = "", **metrics) -> Row:
    spec = theory.Spectrum.build(4, 3, 1.0, 2.0, 2.0 if task == "simple" else 0.5, frequency)
    return Row(key=f"w{width}-{task}-{frequency}", run_id=run_id or f"r{width}{task}{frequency}",
               state="FINISHED", step=100,
               params={**PROBLEM, "width": str(width), "frequency": str(frequency),
                       "task": task},
               trainable="synthetic",
               metrics={"rare/loss": rare_loss,
                        "theory/critical_width": theory.critical_width(spec, 0.5),
                        "theory/rare/loss": theory.optimum(spec, width).rare_loss, **metrics})


def test_utilities_from_params_equal_the_theory():
    for task, decay in (("simple", 2.0), ("complex", 0.5)):
        expected = theory.Spectrum.build(4, 3, 1.0, 2.0, decay, 0.05).utilities
        got = report.utilities({**PROBLEM, "frequency": "0.05", "task": task})
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def theory_rows(widths, frequency=0.05, task="simple"):
    """Rows whose rare loss is the width's optimum: what the paper predicts."""
    spec = theory.Spectrum.build(4, 3, 1.0, 2.0, 2.0 if task == "simple" else 0.5, frequency)
    return [row(w, theory.optimum(spec, w).rare_loss, frequency, task) for w in widths]


def test_c1_holds_on_monotone_losses_and_fails_on_a_rise():
    assert report.c1_monotone(theory_rows([1, 2, 4, 8, 12])).holds is True
    rising = [row(2, 0.9), row(4, 0.3), row(8, 0.6)]
    claim = report.c1_monotone(rising)
    assert claim.holds is False and "0.300 at width 4 -> 0.600 at 8" in claim.evidence


def test_c2_holds_where_the_measured_width_is_the_theorys():
    rows = theory_rows([1, 2, 4, 6, 8, 10, 12])
    claim = report.c2_critical_width(rows)
    assert claim.holds is True, claim.evidence


def test_c2_fails_when_the_widths_do_not_reach_the_critical_width():
    rows = theory_rows([1, 2], frequency=0.01)
    assert rows[0].metrics["theory/critical_width"] > 2
    claim = report.c2_critical_width(rows)
    assert claim.holds is False
    assert "do not reach the theory's critical width" in claim.evidence


def test_c2_fails_when_every_width_is_above_the_critical_width():
    """Learned at every width says nothing about where learning starts."""
    rows = theory_rows([1, 2, 4, 6, 8, 10, 12])
    n_star = rows[0].metrics["theory/critical_width"]
    above = [r for r in rows if report.width(r) > n_star]
    claim = report.c2_critical_width(above)
    assert claim.holds is False and "so the transition cannot be seen" in claim.evidence


def test_c2_fails_when_a_width_far_below_the_critical_width_learns():
    rows = theory_rows([1, 2, 4, 6, 8, 10, 12])
    n_star = rows[0].metrics["theory/critical_width"]
    rows = [row(report.width(r), 0.1 if report.width(r) >= 2 else 0.9) for r in rows]
    assert n_star > 4
    claim = report.c2_critical_width(rows)
    assert claim.holds is False and "measured 2" in claim.evidence


def series(start: float, end: float, steps: int = 1000) -> report.Series:
    return [(s, start + (end - start) * s / steps) for s in range(0, steps + 1, 10)]


def test_c3_holds_on_a_plateau_and_fails_when_the_loss_keeps_falling():
    below = row(2, 0.9, run_id="narrow")
    assert below.metrics["theory/critical_width"] > 2
    flat = report.c3_long_horizon([below], {"narrow": series(0.9, 0.9)})
    assert flat.holds is True
    falling = report.c3_long_horizon([below], {"narrow": series(0.95, 0.2)})
    assert falling.holds is False and "width 2" in falling.evidence
    above = row(12, 0.0, run_id="wide")
    assert report.c3_long_horizon([above], {"wide": series(0.5, 0.0)}).holds is None


def test_c4_holds_when_bursts_hurt_the_narrow_student_more():
    final = {1: {24: 0.44, 64: 0.0}, 100: {24: 0.58, 64: 0.01}}
    assert report.c4_bursts(final).holds is True
    flipped = {1: {24: 0.44, 64: 0.0}, 100: {24: 0.40, 64: 0.2}}
    claim = report.c4_bursts(flipped)
    assert claim.holds is False and "-0.040 at width 24" in claim.evidence
    assert report.c4_bursts({1: {24: 0.4}}).holds is None


def test_c5_needs_a_falling_norm_and_a_smaller_steadier_cosine():
    norms = {12: [0.02, 0.021], 48: [0.01, 0.011], 96: [0.005, 0.004]}
    cos = {12: [0.1, -0.1, 0.2], 48: [0.01, 0.0], 96: [0.001, -0.001]}
    assert report.c5_interference(norms, cos).holds is True
    rising = {12: [0.01], 48: [0.02], 96: [0.03]}
    claim = report.c5_interference(rising, cos)
    assert claim.holds is False and "does not fall" in claim.evidence
    assert report.c5_interference(norms, {12: [0.0, 0.0], 48: [0.1], 96: [0.3, -0.3]}
                                  ).holds is False


def learned_in(base: Row, reverse: bool = False) -> Row:
    """`base` with its feature_steps.json table: larger utility learned earlier (or later,
    `reverse`)."""
    u = report.utilities(base.params)
    order = np.argsort(-u.ravel() if not reverse else u.ravel())
    steps = np.empty(u.size, dtype=int)
    steps[order] = np.arange(1, u.size + 1) * 10
    K, r = u.shape
    table = {"columns": list(FEATURE_COLUMNS),
             "data": [[k, j, u[k, j], int(steps[k * r + j])] for k in range(K) for j in range(r)]}
    return replace(base, tables={FEATURE_STEPS: table})


def test_feature_steps_reads_the_table_in_any_row_order():
    ordered = learned_in(row(12, 0.0))
    table = ordered.tables[FEATURE_STEPS]
    shuffled = replace(ordered, tables={FEATURE_STEPS: {**table, "data": table["data"][::-1]}})
    np.testing.assert_array_equal(report.feature_steps(shuffled),
                                  report.feature_steps(ordered))
    assert report.feature_steps(ordered)[0, 0] == 10  # the largest utility, first
    assert np.isnan(report.feature_steps(row(12, 0.0))).all()  # no table: nothing recorded


def test_c6_holds_in_utility_order_and_fails_in_reverse():
    ordered = learned_in(row(12, 0.0))
    assert report.c6_utility_order([ordered]).holds is True
    reversed_ = learned_in(row(12, 0.0), reverse=True)
    claim = report.c6_utility_order([reversed_])
    assert claim.holds is False and "(0.0%)" in claim.evidence


class Names(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])

    def handle_data(self, data):
        self.text.append(data)


def test_the_page_is_one_file_naming_every_figure_with_its_claims(tmp_path):
    import matplotlib.pyplot as plt

    from tracking.style import save

    figures = [Figure("fig-a", "Figure A: one", "caption a"),
               Figure("fig-b", "Figure B: two", "caption b")]
    for f in figures:
        fig, ax = plt.subplots()
        ax.plot([0, 1])
        save(fig, tmp_path / page.FIGURES, f.name)
    claims = [Claim("C1", "fig-a", "wider is better", True, "0.9 -> 0.1"),
              Claim("C2", "fig-b", "N* as the theory's", None, "the widths do not reach it")]
    page.write(Report("synthetic", "tiny", ["s1"], figures, claims), tmp_path)
    parsed = Names()
    parsed.feed((tmp_path / page.PAGE).read_text())
    assert {"fig-a", "fig-b", "C1", "C2"} <= set(parsed.ids)
    assert len(parsed.images) == 2 and all(s.startswith("data:image/png;base64,")
                                           for s in parsed.images)
    text = " ".join(parsed.text)
    assert "Figure A: one" in text and "Figure B: two" in text
    assert "supported" in text and "cannot be judged" in text
    assert json.loads((tmp_path / page.CLAIMS).read_text())[1] == claims[1].as_json()


@pytest.mark.parametrize("holds", [True, False, None])
def test_claims_json_entries_follow_contracts_7(holds):
    entry = Claim("C1", "fig2-phase", "text", holds, "why").as_json()
    assert set(entry) == {"id", "figure", "claim", "holds", "evidence", "n", "effect",
                          "interval", "null", "cells", "reason"}


def test_the_page_says_when_by_which_code_from_which_runs_and_the_evidence_in_words(tmp_path):
    from tracking.report.claims import Provenance

    claims = [Claim("C4", "fig-a", "bursts hurt narrow students", True,
                    "final rare loss from n=1 to n=100: +0.065 at width 24 (margin 0.02, "
                    "Settings.burst_margin)", n=5, effect=0.06, interval=[0.03, 0.09],
                    null=0.0)]
    links = {"s1": "http://127.0.0.1:5000/#/experiments/1/runs/abc"}
    report = Report("synthetic", "tiny", ["s1", "s2"], [Figure("fig-a", "Figure A", "a")],
                    claims, Provenance("2026-12-07T17:08:07Z", "b82693e", [0, 1, 2], 3725.0,
                                       links))
    page.write(report, tmp_path)
    html_text = (tmp_path / page.PAGE).read_text()
    parsed = Names()
    parsed.feed(html_text)
    text = " ".join(" ".join(parsed.text).split())
    assert "2026-12-07T17:08:07Z" in text and "b82693e" in text and "tiny" in text
    assert "3 (0, 1, 2)" in text and "1 h 02 min" in text
    assert f'<a href="{links["s1"]}"><code>s1</code></a>' in html_text
    assert "Settings" not in text and "(margin 0.02)" in text
    assert "95% interval from 0.03 to 0.09, which lies above 0, the value with no such " \
        "effect" in text and "over 5 independent replicates" in text
    undecided = replace(claims[0], holds=None, interval=[-0.01, 0.09], reason="too few seeds")
    assert "which includes 0" in page.render(replace(report, claims=[undecided]),
                                             tmp_path / page.FIGURES)
