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
        run_id: str = "", seed: int = 0, params: dict | None = None, **metrics) -> Row:
    spec = theory.Spectrum.build(4, 3, 1.0, 2.0, 2.0 if task == "simple" else 0.5, frequency)
    return Row(key=f"w{width}-{task}-{frequency}-{seed}",
               run_id=run_id or f"r{width}{task}{frequency}s{seed}", state="FINISHED", step=100,
               params={**PROBLEM, "width": str(width), "frequency": str(frequency),
                       "task": task, "seed": str(seed), **(params or {})},
               trainable="synthetic",
               metrics={"rare/loss": rare_loss,
                        "theory/critical_width": theory.critical_width(spec, 0.5),
                        "theory/rare/loss": theory.optimum(spec, width).rare_loss, **metrics})


def test_utilities_from_params_equal_the_theory():
    for task, decay in (("simple", 2.0), ("complex", 0.5)):
        expected = theory.Spectrum.build(4, 3, 1.0, 2.0, decay, 0.05).utilities
        got = report.utilities({**PROBLEM, "frequency": "0.05", "task": task})
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def theory_rows(widths, frequency=0.05, task="simple", seed=0):
    """Rows whose rare loss is the width's optimum: what the paper predicts."""
    spec = theory.Spectrum.build(4, 3, 1.0, 2.0, 2.0 if task == "simple" else 0.5, frequency)
    return [row(w, theory.optimum(spec, w).rare_loss, frequency, task, seed=seed)
            for w in widths]


WIDTHS = list(range(1, 13))
FREQUENCIES = (0.3, 0.2, 0.1, 0.05)


def phase_rows(seeds=(0, 1), rare_loss=None, widths=WIDTHS, tasks=("simple", "complex")):
    """The phase sweep as the paper predicts it (each width at its optimum), every grid axis
    and seed; `rare_loss(row) -> float` rewrites the losses to contradict it."""
    rows = [r for seed in seeds for task in tasks for f in FREQUENCIES
            for r in theory_rows(widths, f, task, seed)]
    if rare_loss is None:
        return rows
    return [row(report.width(r), rare_loss(r), float(r.params["frequency"]), r.params["task"],
                seed=report.key(r).seed) for r in rows]


def test_results_are_keyed_by_every_grid_axis_seed_included():
    rows = phase_rows(seeds=(0, 1, 2))
    assert len({report.key(r) for r in rows}) == len(rows)
    assert {k[2] for k in report.curves(rows)} == {0, 1, 2}
    assert all(len(line) == len(WIDTHS) for line in report.curves(rows).values())


def test_c1_holds_on_the_theory_and_not_on_shuffled_or_reversed_widths():
    claim = report.c1_monotone(phase_rows())
    assert claim.holds is True, claim.evidence
    assert claim.n == claim.cells.used // len(WIDTHS) and claim.interval[1] < 0.02
    rng = np.random.default_rng(0)
    shuffled = {}

    def shuffle(r):  # each curve's losses over a random permutation of its widths
        k = (r.params["task"], r.params["frequency"], report.key(r).seed)
        if k not in shuffled:
            shuffled[k] = rng.permutation(len(WIDTHS))
        line = [x for x in theory_rows(WIDTHS, float(k[1]), k[0])]
        return line[shuffled[k][report.width(r) - 1]].metrics["rare/loss"]

    assert report.c1_monotone(phase_rows(rare_loss=shuffle)).holds is not True
    spec_loss = {report.key(r): r.metrics["rare/loss"] for r in phase_rows()}
    reversed_ = report.c1_monotone(phase_rows(rare_loss=lambda r: spec_loss[
        report.key(r)._replace(width=13 - report.width(r))]))
    assert reversed_.holds is False and "rises above 0.02" in reversed_.evidence


def test_c2_holds_on_the_theory_with_its_statistic():
    claim = report.c2_critical_width(phase_rows())
    assert claim.holds is True, claim.evidence
    assert claim.n == 16 and claim.effect == 1.0 and claim.interval[0] > claim.null
    assert claim.cells.used == claim.cells.planned


def test_c2_negative_controls_nothing_learned_shuffled_off_by_two():
    nothing = report.c2_critical_width(phase_rows(rare_loss=lambda r: 1.0))
    assert nothing.holds is False and "none learned" in nothing.evidence
    everywhere = report.c2_critical_width(phase_rows(rare_loss=lambda r: 0.0))
    assert everywhere.holds is not True  # learned at width 1, below every N*
    late = report.c2_critical_width(phase_rows(rare_loss=lambda r: float(
        report.width(r) < report.critical_width(r) + 2)))
    assert late.holds is False  # two grid steps late everywhere
    rng = np.random.default_rng(1)
    random_ = report.c2_critical_width(phase_rows(rare_loss=lambda r: float(
        rng.random() < 0.5)))
    assert random_.holds is not True


def test_c2_is_null_where_only_width_d_is_at_or_above_the_critical_width():
    """Only the width-d encoder reaches N*: it learns trivially, the curve says nothing."""
    rows = [r for r in theory_rows([1, 2, 4, 8, 12], 0.05, "complex")]
    assert rows[0].metrics["theory/critical_width"] == 10
    claim = report.c2_critical_width(rows)
    assert claim.holds is None and "only d=12 is at or above N*=10" in claim.evidence
    assert claim.cells.used == 0 and claim.cells.planned == 5


def test_c2_does_not_use_a_grid_short_of_the_critical_width_or_starting_above_it():
    claim = report.c2_critical_width(theory_rows([1, 2], 0.01))
    assert claim.holds is None and "do not reach N*=10" in claim.evidence
    claim = report.c2_critical_width(theory_rows([8, 10, 12], 0.3))
    assert claim.holds is None and "the transition cannot be seen" in claim.evidence


def test_c7_holds_when_complex_tasks_need_more_width_and_not_when_swapped():
    claim = report.c7_complexity(phase_rows())
    assert claim.holds is True and claim.n == 8 and claim.effect > 0, claim.evidence
    swapped = phase_rows()
    swapped = [row(report.width(r), r.metrics["rare/loss"], float(r.params["frequency"]),
                   "complex" if r.params["task"] == "simple" else "simple",
                   seed=report.key(r).seed) for r in swapped]
    claim = report.c7_complexity(swapped)
    assert claim.holds is False and "complex below simple" in claim.evidence
    same = phase_rows(tasks=("simple",)) + [
        row(report.width(r), r.metrics["rare/loss"], float(r.params["frequency"]), "complex",
            seed=report.key(r).seed) for r in phase_rows(tasks=("simple",))]
    assert report.c7_complexity(same).holds is None
    assert report.c7_complexity(phase_rows(rare_loss=lambda r: 1.0)).holds is None


def series(start: float, end: float, steps: int = 1000) -> report.Series:
    return [(s, start + (end - start) * s / steps) for s in range(0, steps + 1, 10)]


def long_runs(falls=lambda w, seed: 0.0, background=lambda w, seed: (0.2, 0.2),
              widths=(2, 6, 8, 12), seeds=(0, 1, 2)):
    """Long runs at f=0.05 (N*=7): rare loss 1 - fall over the run below N*, learned above;
    total loss from a background that moves from background[0] to [1] over the first tenth."""
    rows, rare, loss = [], {}, {}
    for w in widths:
        for seed in seeds:
            r = row(w, 0.0, run_id=f"long{w}s{seed}", seed=seed)
            start = 1.0 if w < 7 else 0.3
            fall = falls(w, seed) if w < 7 else 0.3
            rare[r.run_id] = series(start, start - fall)
            b0, b1 = background(w, seed)
            total = [(s, (b0 + (b1 - b0) * min(s / 100, 1)) * 0.95 + 0.05 * v)
                     for s, v in rare[r.run_id]]
            loss[r.run_id] = total
            rows.append(r)
    return rows, rare, loss


def test_c3_holds_on_a_plateau_at_n_star_minus_one():
    rows, rare, loss = long_runs(lambda w, seed: 0.01 * seed)
    claim = report.c3_long_horizon(rows, rare, loss)
    assert claim.holds is True and claim.n == 6, claim.evidence
    assert "width 6 seed 0" in claim.evidence and "above N* (not judged)" in claim.evidence


def test_c3_negative_controls_falling_loss_premature_reading_no_n_star_minus_one():
    rows, rare, loss = long_runs(lambda w, seed: 0.4 + 0.05 * seed)
    assert report.c3_long_horizon(rows, rare, loss).holds is False
    rows, rare, loss = long_runs(background=lambda w, seed: (0.6, 0.2))
    claim = report.c3_long_horizon(rows, rare, loss)  # still converging at the first reading
    assert claim.holds is None and claim.cells.used == 0
    assert "background not converged" in claim.evidence
    rows, rare, loss = long_runs(widths=(2, 12))
    claim = report.c3_long_horizon(rows, rare, loss)
    assert claim.holds is None and "N* - 1 = 6" in claim.reason


BURST = {"batch_size": "10", "steps": "1000", "stopping.expected_steps": "800"}


def burst_sweeps(loss, sizes=(1, 10, 100), widths=(4, 7, 11), seeds=range(5), params=None):
    """Burst sweeps at f=0.05 (N*=7, d=12); loss(width, n, seed) -> final rare loss."""
    bursts, final = {}, {}
    for n in sizes:
        for w in widths:
            for seed in seeds:
                r = row(w, 0.0, run_id=f"b{n}w{w}s{seed}", seed=seed, params={
                    **BURST, "schedule.block": str(n) if n > 1 else "", **(params or {})})
                bursts.setdefault(n, []).append(r)
                final[r.run_id] = loss(w, n, seed)
    return bursts, final


def hurts_narrow(w, n, seed):
    return (0.3 + 0.05 * np.log(n) + 0.01 * seed) if w <= 7 else 0.1 + 0.001 * seed


def test_c4_holds_when_bursts_hurt_the_width_at_n_star_more_than_a_wide_one():
    claim = report.c4_bursts(*burst_sweeps(hurts_narrow))
    assert claim.holds is True and claim.n == 5, claim.evidence
    assert "at width 7 (N*=7) minus at width 11" in claim.evidence
    assert claim.cells.used == 2 * 3 * 5


def test_c4_negative_controls():
    rng = np.random.default_rng(2)
    noise = report.c4_bursts(*burst_sweeps(lambda w, n, seed: 0.3 + rng.normal(0, 0.05)))
    assert noise.holds is not True
    wide_hurt = report.c4_bursts(*burst_sweeps(lambda w, n, seed: hurts_narrow(18 - w, n,
                                                                                seed)))
    assert wide_hurt.holds is False
    few = report.c4_bursts(*burst_sweeps(hurts_narrow, seeds=range(3)))
    assert few.holds is None and "needs at least 5" in few.reason
    short = report.c4_bursts(*burst_sweeps(hurts_narrow, params={"steps": "500"}))
    assert short.holds is None and "under the theory's expected 800" in short.reason
    no_narrow = report.c4_bursts(*burst_sweeps(hurts_narrow, widths=(8, 11)))
    assert no_narrow.holds is None and "at or below N*=7" in no_narrow.reason
    not_wide = report.c4_bursts(*burst_sweeps(hurts_narrow, widths=(4, 7, 9)))
    assert not_wide.holds is None


def test_the_final_loss_of_a_burst_run_is_read_over_whole_cycles():
    """A saw-tooth with period 40: a window of whole cycles gives its mean whatever the
    phase at which the run ends; a window cut mid-cycle would not."""
    saw = [(s, (s % 40) / 40) for s in range(0, 1001)]
    for end in (1000, 990, 975):
        got = report.cycle_mean([p for p in saw if p[0] <= end], 40.0, tail=0.1)
        assert got == pytest.approx(0.4875, abs=0.01)
    r = row(4, 0.0, params={**BURST, "schedule.block": "100"})
    assert report.cycle_steps(r) == pytest.approx(100 / (0.05 * 10))


def interference_runs(norm, cos, widths=(2, 4, 8), seeds=range(4)):
    """i.i.d. runs; norm(width, seed) -> values, cos(width, seed) -> values."""
    rows = [row(w, 0.0, run_id=f"i{w}s{seed}", seed=seed) for w in widths for seed in seeds]
    return (rows, {r.run_id: norm(report.width(r), report.key(r).seed) for r in rows},
            {r.run_id: cos(report.width(r), report.key(r).seed) for r in rows})


def test_c5_holds_when_the_norm_falls_and_the_cosine_shrinks_and_steadies():
    rng = np.random.default_rng(3)
    claim = report.c5_interference(*interference_runs(
        lambda w, s: list(0.1 / w + 0.001 * rng.random(20)),
        lambda w, s: list(0.4 / w + rng.normal(0, 0.2 / w, 50))))
    assert claim.holds is True and claim.n == 4, claim.evidence


def test_c5_negative_controls_noise_of_the_right_dimension_and_a_rising_norm():
    """Cosines of random directions in d=12 (sd ~ 1/sqrt(12)) whatever the width: not a
    width effect, never True."""
    rng = np.random.default_rng(4)

    def random_cosines(w, s):
        a, b = rng.normal(size=(2, 60, 12))
        return list((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))

    falling = lambda w, s: list(0.1 / w + 0.001 * rng.random(20))  # noqa: E731
    assert report.c5_interference(*interference_runs(falling, random_cosines)).holds \
        is not True
    rising = report.c5_interference(*interference_runs(
        lambda w, s: list(0.01 * w + 0.001 * rng.random(20)),
        lambda w, s: list(0.4 / w + rng.normal(0, 0.2 / w, 50))))
    assert rising.holds is False and "frequent_norm" in rising.evidence


def steps_by_utility(params: dict, reverse: bool = False, by_frequency: bool = False) -> dict:
    """The feature_steps.json table: larger utility learned earlier (or later, `reverse`; or
    in order of task frequency, `by_frequency`)."""
    u = report.utilities(params)
    score = np.broadcast_to(report.frequencies(params)[:, None], u.shape) * (
        1 + 1e-3 * u) if by_frequency else u
    order = np.argsort(score.ravel() if reverse else -score.ravel())
    steps = np.empty(u.size)
    steps[order] = np.arange(1, u.size + 1) * 10
    K, r = u.shape
    return {"columns": list(FEATURE_COLUMNS),
            "data": [[k, j, u[k, j], int(steps[k * r + j])] for k in range(K) for j in range(r)]}


def ordered_runs(**how):
    return [replace(row(w, 0.0, f, seed=seed), tables={
        FEATURE_STEPS: steps_by_utility(row(w, 0.0, f).params, **how)})
            for w in (4, 8) for f in (0.3, 0.05) for seed in (0, 1)]


def test_c6_and_c8_hold_in_utility_order():
    for claim in (report.c6_utility_order(ordered_runs()),
                  report.c8_utility_over_frequency(ordered_runs())):
        assert claim.holds is True and claim.n == 8 and claim.effect == 1.0, claim.evidence


def test_c6_and_c8_negative_controls_reversed_and_frequency_order():
    assert report.c6_utility_order(ordered_runs(reverse=True)).holds is False
    assert report.c8_utility_over_frequency(ordered_runs(reverse=True)).holds is False
    by_frequency = report.c8_utility_over_frequency(ordered_runs(by_frequency=True))
    assert by_frequency.holds is False and by_frequency.effect == 0.0
    nothing = [row(4, 0.0, seed=s) for s in (0, 1)]
    assert report.c6_utility_order(nothing).holds is None

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


def test_figures_draw_means_over_seeds_and_write_every_plotted_value(tmp_path):
    """Each seed's value and the mean with its interval land in data/<figure>.csv, keyed by
    every grid axis: a reader recomputes the plotted mean from the per-seed rows."""
    import csv

    import matplotlib.pyplot as plt

    from tracking.report import synthetic_figures as draw
    from tracking.report.claims import DATA_COLUMNS

    bursts, final = burst_sweeps(hurts_narrow)
    by_key = {n: {report.key(r): final[r.run_id] for r in rs} for n, rs in bursts.items()}
    steps = [(s, 0.5 + 0.5 * (s % 20 == 0)) for s in range(0, 100)]
    trace = {report.key(row(w, 0.0)): {"rare/alignment": steps, "rare/injected": [
        (s, 10.0 * (s % 20 == 0)) for s in range(100)], "interference/cos_batch": [
        (s, 0.1) for s in range(100)]} for w in (4, 11)}
    push = {report.key(row(w, 0.0)): {"rare/alignment": steps, "rare/alignment_push": [
        (s, 0.01) for s in range(100)], "rare/alignment_pull": [(s, -0.01) for s in range(100)]}
        for w in (1, 2)}
    with plt.rc_context({"figure.max_open_warning": 0}):
        made = [draw.bursts(by_key, tmp_path / page.FIGURES),
                draw.interference(*interference_runs(
                    lambda w, s: [0.1 / w, 0.11 / w], lambda w, s: [0.1, -0.1, 0.2 / w]),
                    tmp_path / page.FIGURES),
                draw.update_and_forget(trace, 10, 7, tmp_path / page.FIGURES),
                draw.two_directions(push, tmp_path / page.FIGURES),
                draw.phase(phase_rows(), tmp_path / page.FIGURES)]
    page.write(Report("synthetic", "tiny", ["s"], made, []), tmp_path)
    for figure in made:
        assert (tmp_path / page.FIGURES / f"{figure.name}.pdf").is_file()
        with (tmp_path / page.DATA / f"{figure.name}.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert rows and tuple(next(iter(csv.reader([open(
            tmp_path / page.DATA / f"{figure.name}.csv").readline()])))[:8]) == DATA_COLUMNS
    with (tmp_path / page.DATA / "fig6b-bursts.csv").open() as f:
        rows = list(csv.DictReader(f))
    mean = next(r for r in rows if r["seed"] == "mean" and r["width"] == "7"
                and r["burst"] == "10")
    seeds = [float(r["value"]) for r in rows if r["seed"] != "mean" and r["width"] == "7"
             and r["burst"] == "10"]
    assert len(seeds) == int(mean["n"]) == 5
    assert float(mean["value"]) == pytest.approx(np.mean(seeds))
    assert float(mean["lo"]) < float(mean["value"]) < float(mean["hi"])


def test_feature_steps_reads_the_table_in_any_row_order():
    base = row(12, 0.0)
    table = steps_by_utility(base.params)
    ordered = replace(base, tables={FEATURE_STEPS: table})
    shuffled = replace(base, tables={FEATURE_STEPS: {**table, "data": table["data"][::-1]}})
    np.testing.assert_array_equal(report.feature_steps(shuffled),
                                  report.feature_steps(ordered))
    assert report.feature_steps(ordered)[0, 0] == 10  # the largest utility, first
    assert np.isnan(report.feature_steps(base)).all()  # no table: nothing recorded
