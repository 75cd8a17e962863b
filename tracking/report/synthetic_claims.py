"""The synthetic report's claims C1-C8 (CONTRACTS 7 rev 3) and the reading helpers its figures
share.

Each claim is a plain function over rows (final metrics and params of every grid point, seed
included) or per-run values, so tests judge it on hand-made data built to contradict it. Each
computes one signed effect per independent replicate (a curve, a run or a seed, named in its
evidence) and is decided by the shared rule (`tracking.report.verdict`): True only when the
95% interval excludes the null on the predicted side. Where the paper gives no number (how
flat a plateau is, which utilities count as different) the choice is a field of `Settings`,
named in the verdict's evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tracking.curves import Row
from tracking.layout import FEATURE_STEPS
from tracking.report.claims import Cells, Claim
from tracking.report.verdict import (Part, judge, judge_all, mean_of, rank_correlation, share,
                                     slope, undecided)

Series = list[tuple[int, float]]  # (step, value) of one metric of one run

CLAIMS = {
    "C1": "At fixed frequency the final rare loss does not increase with width.",
    "C2": "The measured critical width equals the theory's within one swept width step.",
    "C3": "Below the critical width, ten times more steps leave the rare loss on its plateau.",
    "C4": "At equal long-run frequency, larger bursts (n rare samples every n/f samples) hurt "
          "a narrow student more than a wide one.",
    "C5": "The background tasks' gradient weakens with width (interference/frequent_norm), and "
          "cos(g_nontask, G_r) is smaller and steadier in the wide student.",
    "C6": "Features are learned in order of utility pi * lambda.",
    "C7": "Complex tasks need more width: N*_complex(f) >= N*_simple(f) at every frequency.",
    "C8": "Where frequency order and utility order disagree, features follow utility.",
}
FIGURE = {"C1": "fig2-phase", "C2": "fig2-phase", "C7": "fig2-phase", "C3": "long-horizon",
          "C4": "fig6b-bursts", "C5": "interference", "C6": "fig3-utility-order",
          "C8": "fig3-utility-order"}


@dataclass(frozen=True)
class Settings:
    """The report's own choices where the paper gives no number."""

    monotone_tolerance: float = 0.02  # C1: a rise in rare loss up to this counts as flat
    width_steps: int = 1  # C2: measured and theory's N* at most this many grid widths apart
    plateau_tolerance: float = 0.05  # C3: the most the rare loss may fall over the long run
    background_tolerance: float = 0.05  # C3: background loss at the first reading within
    # this fraction of its final value (converged), else the reading is premature
    long_factor: int = 10  # C3: the long run is read at 1/long_factor of its steps and at the end
    tail: float = 0.2  # final value of a sampled run: mean over this last fraction of its steps
    burst_seeds: int = 5  # C4: at least this many seeds
    well_above: float = 1.5  # C4: the wide student is at least this many times N*
    order_ratio: float = 2.0  # C6, C8: pairs whose utilities differ by at least this factor


SETTINGS = Settings()


# -- reading ----------------------------------------------------------------------------------

class Key(NamedTuple):
    """A grid point: every axis, seed included (results are never keyed by fewer)."""

    width: int
    frequency: float
    task: str
    seed: int


def key(row: Row) -> Key:
    p = row.params
    return Key(int(p["width"]), float(p["frequency"]), p["task"], int(p["seed"]))


def width(row: Row) -> int:
    return int(row.params["width"])


def finished(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.state == "FINISHED"]


def curves(rows: list[Row]) -> dict[tuple[str, float, int], list[Row]]:
    """(task, frequency, seed) -> finished rows, narrow first."""
    out: dict[tuple, list[Row]] = {}
    for row in finished(rows):
        k = key(row)
        out.setdefault((k.task, k.frequency, k.seed), []).append(row)
    return {k: sorted(v, key=width) for k, v in sorted(out.items(), key=lambda kv: (
        kv[0][0], -kv[0][1], kv[0][2]))}


def tail_mean(series: Series, end: float | None = None, tail: float = SETTINGS.tail) -> float:
    """Mean over the last `tail` of the steps up to `end` (default the last step)."""
    end = series[-1][0] if end is None else end
    values = [v for s, v in series if end * (1 - tail) <= s <= end]
    return float(np.mean(values)) if values else float("nan")


def cycle_steps(row: Row) -> float:
    """Steps between two bursts of `{block: n}` (n / f samples), 0 for i.i.d. draws."""
    n = int(row.params.get("schedule.block", 0) or 0)
    return n / (float(row.params["frequency"]) * int(row.params["batch_size"])) if n else 0.0


def cycle_mean(series: Series, cycle: float, tail: float = SETTINGS.tail) -> float:
    """A burst run's final value read over whole burst cycles, not at one phase of one: the
    mean over the largest whole number of cycles (at least one) within the last `tail` of
    the steps; over that fraction for i.i.d. runs (cycle 0)."""
    if not series:
        return float("nan")
    end = series[-1][0]
    window = tail * end
    if cycle > 0:
        window = max(1, math.floor(window / cycle)) * cycle
    values = [v for s, v in series if s > end - window]
    return float(np.mean(values)) if values else float("nan")


def utilities(params: dict) -> np.ndarray:
    """pi_k * lambda_{k,j} of a run's problem, (K, r), from its params: background frequencies
    Zipf over 1 - f, the rare task (last) at f, lambda_j ~ j^-decay summing to 1. The
    trainable's theory computes the same (tracking cannot import it: `test_layering`;
    `tests/tracking/test_report_synthetic.py` holds the two equal)."""
    return frequencies(params)[:, None] * spectra(params)


def frequencies(params: dict) -> np.ndarray:
    K, f = int(params["tasks"]), float(params["frequency"])
    pi = np.arange(1, K, dtype=np.float64) ** -float(params["zipf"])
    return np.append(pi * (1 - f) / pi.sum(), f)


def spectra(params: dict) -> np.ndarray:
    K, r = int(params["tasks"]), int(params["features_per_task"])
    decays = [float(params["background_decay"])] * (K - 1) + [
        float(params[f"complexity.{params['task']}"])]
    lam = np.stack([np.arange(1, r + 1, dtype=np.float64) ** -a for a in decays])
    return lam / lam.sum(axis=1, keepdims=True)


def dimension(rows: list[Row]) -> int:
    """d = K r of the rows' problem (0 for no rows)."""
    return int(rows[0].params["tasks"]) * int(rows[0].params["features_per_task"]) if rows \
        else 0


def critical_width(row: Row) -> int:
    return int(row.metrics["theory/critical_width"])


def feature_steps(row: Row) -> np.ndarray:
    """(K, r) first step each feature was learned (-1: never; NaN: not recorded), from the
    run's `feature_steps.json` table (`tracking.query.with_table` reads it into the row).
    Every reader of the learning order goes through here."""
    K, r = int(row.params["tasks"]), int(row.params["features_per_task"])
    steps = np.full((K, r), np.nan)
    table = row.tables.get(FEATURE_STEPS)
    if table:
        column = {name: i for i, name in enumerate(table["columns"])}
        for line in table["data"]:
            steps[int(line[column["task"]]), int(line[column["feature"]])] = line[column["step"]]
    return steps


def _label(k: tuple) -> str:
    task, frequency, seed = k
    return f"{task} f={frequency:g} seed {seed}"


def _listed(items: list[str], shown: int = 6) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return "; ".join(items[:shown]) + more


# -- C1, C2, C7: the phase diagram ------------------------------------------------------------

def c1_monotone(rows: list[Row], s: Settings = SETTINGS) -> Claim:
    """Per curve (task, frequency, seed): Spearman's rho of the rare loss against width (a
    falling curve: < 0) and its largest rise between neighbouring widths (< the tolerance).
    A curve with the same loss at every width says nothing and is not used."""
    lines = curves(rows)
    rho, rise, rises = {}, {}, []
    for k, line in lines.items():
        loss = [r.metrics["rare/loss"] for r in line]
        if np.ptp(loss) <= s.monotone_tolerance:
            continue
        rho[_label(k)] = rank_correlation([width(r) for r in line], loss)
        steps = np.diff(loss)
        rise[_label(k)] = float(steps.max())
        rises += [f"{_label(k)}: {a:.3f} at width {width(x)} -> {b:.3f} at {width(y)}"
                  for x, y, a, b in zip(line, line[1:], loss, loss[1:])
                  if b - a > s.monotone_tolerance]
    cells = Cells(len(rows), sum(len(lines[k]) for k in lines if _label(k) in rho))
    evidence = (f"{len(rho)} of {len(lines)} curves (task, frequency, seed) whose rare loss "
                f"changes with width; rises above {s.monotone_tolerance} "
                f"(Settings.monotone_tolerance): {_listed(rises) if rises else 'none'}")
    if not rho:
        return undecided("C1", FIGURE["C1"], CLAIMS["C1"], "no curve whose rare loss changes "
                         "with width", cells, evidence)
    return judge_all("C1", FIGURE["C1"], CLAIMS["C1"], [
        Part("rank correlation of rare loss with width", mean_of(rho, "curves"), 0.0, "less"),
        Part("largest rise between neighbouring widths", mean_of(rise, "curves"),
             s.monotone_tolerance, "less")], evidence, cells)


def measured_critical(line: list[Row]) -> int | None:
    """Index in the curve of the first width whose rare loss is learned (None: none is)."""
    threshold = float(line[0].params["learned_threshold"])
    return next((i for i, r in enumerate(line) if r.metrics["rare/loss"] <= threshold), None)


def c2_critical_width(rows: list[Row], s: Settings = SETTINGS) -> Claim:
    """Per curve: does the measured critical width (first learned width) sit within
    `width_steps` grid widths of the first width at or above the theory's N*? "None learned"
    is a disagreement. A curve that cannot show the transition is not used: no width below
    N*, none at or above it, or only d at or above it (a width-d encoder spans every feature,
    so it learns trivially). The share that agree has an exact interval; the null is the
    share that would agree by chance if the measured width fell anywhere on the grid."""
    agree, chance, wrong, unused, used = [], [], [], [], 0
    for k, line in curves(rows).items():
        widths = [width(r) for r in line]
        theory, d = critical_width(line[0]), dimension(line)
        at_or_above = [w for w in widths if w >= theory]
        why = (f"the widths (up to {widths[-1]}) do not reach N*={theory}" if not at_or_above
               else f"the widths start at {widths[0]}, at or above N*={theory}: the "
               "transition cannot be seen" if theory <= widths[0]
               else f"only d={d} is at or above N*={theory}, and it learns trivially"
               if at_or_above == [d] else None)
        if why:
            unused.append(f"{_label(k)}: {why}")
            continue
        used += len(line)
        at, got = widths.index(at_or_above[0]), measured_critical(line)
        ok = got is not None and abs(got - at) <= s.width_steps
        agree.append(ok)
        near = [i for i in range(len(widths)) if abs(i - at) <= s.width_steps]
        chance.append(len(near) / (len(widths) + 1))  # a width or "none", uniformly
        text = (f"{_label(k)}: measured {widths[got] if got is not None else 'none learned'}"
                f", theory N*={theory}")
        if not ok:
            wrong.append(text)
    cells = Cells(len(rows), used)
    evidence = (f"{sum(agree)} of {len(agree)} curves agree within {s.width_steps} grid "
                f"width(s) (Settings.width_steps)" + (f"; disagree: {_listed(wrong)}" if wrong
                                                      else "")
                + (f"; not used: {_listed(unused)}" if unused else ""))
    if not agree:
        return undecided("C2", FIGURE["C2"], CLAIMS["C2"], "no curve can show its transition "
                         "(see evidence)", cells, evidence)
    null = float(np.mean(chance))
    return judge("C2", FIGURE["C2"], CLAIMS["C2"], share(sum(agree), len(agree), "curves"),
                 null, "greater", evidence + f"; chance agreement {null:.3f}", cells)


def c7_complexity(rows: list[Row], s: Settings = SETTINGS) -> Claim:
    """Per (frequency, seed) with both tasks on the same widths: the complex task's measured
    critical width minus the simple task's, in grid steps ("none learned" counts as one step
    past the grid; a pair where neither learns is not used). The claim predicts > 0."""
    lines = curves(rows)
    diffs, against, used = {}, [], 0
    for (task, f, seed), simple in lines.items():
        complex_ = lines.get(("complex", f, seed))
        if task != "simple" or not complex_ or [width(r) for r in complex_] != [
                width(r) for r in simple]:
            continue
        a, b = measured_critical(simple), measured_critical(complex_)
        if a is None and b is None:
            continue
        end = len(simple)
        diff = (end if b is None else b) - (end if a is None else a)
        diffs[f"f={f:g} seed {seed}"] = diff
        used += 2 * len(simple)
        if diff < 0:
            widths = [width(r) for r in simple]
            against.append(f"f={f:g} seed {seed}: complex {widths[b]}, simple "
                           f"{widths[a] if a is not None else 'none'}")
    cells = Cells(len(rows), used)
    evidence = ("measured critical width, complex minus simple, in grid steps, per "
                "(frequency, seed)" + (f"; complex below simple: {_listed(against)}"
                                       if against else ""))
    if not diffs:
        return undecided("C7", FIGURE["C7"], CLAIMS["C7"], "no frequency with both tasks "
                         "and a learned width", cells, evidence)
    return judge("C7", FIGURE["C7"], CLAIMS["C7"], mean_of(diffs, "(frequency, seed) pairs"),
                 0.0, "greater", evidence, cells)


# -- C3: the long horizon ---------------------------------------------------------------------

def c3_long_horizon(rows: list[Row], rare_loss: dict[str, Series], loss: dict[str, Series],
                    s: Settings = SETTINGS) -> Claim:
    """Per run below N* (`rare_loss`, `loss`: run id -> series): how far the rare loss falls
    between 1/long_factor of the run and its end. Used only where the background loss had
    converged by the first reading (else that reading is premature); the runs must include
    N* - 1, the width where more data would help if it helped anywhere. The claim predicts a
    fall below `plateau_tolerance`."""
    falls, premature, above, texts, used = {}, [], [], [], 0
    for row in sorted(finished(rows), key=lambda r: (width(r), key(r).seed)):
        rare, total = rare_loss.get(row.run_id) or [], loss.get(row.run_id) or []
        if not rare or not total:
            continue
        end, f, theory = rare[-1][0], key(row).frequency, critical_width(row)
        early_at = end / s.long_factor
        early, late = tail_mean(rare, early_at, s.tail), tail_mean(rare, None, s.tail)
        bg = [(tail_mean(total, at, s.tail) - f * r) / (1 - f) for at, r in
              ((early_at, early), (None, late))]
        label = f"width {width(row)} seed {key(row).seed}"
        if width(row) >= theory:
            above.append(f"{label}: {early:.3f} -> {late:.3f}")
            continue
        if abs(bg[0] - bg[1]) > s.background_tolerance * bg[1]:
            premature.append(f"{label}: background {bg[0]:.4f} at step {early_at:.0f}, "
                             f"{bg[1]:.4f} at {end}")
            continue
        used += 1
        falls[label] = early - late
        texts.append(f"{label}: {early:.3f} at step {early_at:.0f}, {late:.3f} at {end}")
    if not rows:
        return undecided("C3", FIGURE["C3"], CLAIMS["C3"], "no long runs", Cells(0, 0))
    theory = critical_width(rows[0])
    cells = Cells(len(rows), used)
    evidence = (f"rare loss of runs below N*={theory} at 1/{s.long_factor} of the run and at "
                f"its end (means over the last {s.tail:g} of the steps up to each, "
                f"Settings.long_factor, Settings.tail): {_listed(texts)}"
                + (f"; background not converged at the first reading (more than "
                   f"{s.background_tolerance:g} of its final value, "
                   f"Settings.background_tolerance), not used: {_listed(premature)}"
                   if premature else "")
                + (f"; above N* (not judged): {_listed(above)}" if above else ""))
    estimate = mean_of(falls, "runs")
    if not any(label.startswith(f"width {theory - 1} ") for label in falls):
        return undecided("C3", FIGURE["C3"], CLAIMS["C3"], f"no converged run at N* - 1 = "
                         f"{theory - 1}, the width where more steps would help if they helped "
                         "anywhere", cells, evidence, s.plateau_tolerance,
                         estimate if falls else None)
    return judge("C3", FIGURE["C3"], CLAIMS["C3"], estimate, s.plateau_tolerance, "less",
                 evidence + "; effect: the fall of the rare loss (Settings.plateau_tolerance "
                 "is the null)", cells)


# -- C4: bursts -------------------------------------------------------------------------------

def c4_bursts(bursts: dict[int, list[Row]], final: dict[str, float],
              s: Settings = SETTINGS) -> Claim:
    """`bursts`: burst size n -> the rows of that sweep (same widths, frequency, seeds);
    `final`: run id -> its final rare loss read over whole burst cycles (`cycle_mean`).
    Per seed: the slope of final rare loss against log n over every n at the widest width
    at or below N*, minus that slope at the widest width below d (which must be
    `well_above` x N*). Needs `burst_seeds` seeds and every run at least the theory's
    expected steps at the narrow width. The claim predicts > 0."""
    rows = [r for rs in bursts.values() for r in finished(rs)]
    planned = sum(len(rs) for rs in bursts.values())
    if len(bursts) < 2 or not rows:
        return undecided("C4", FIGURE["C4"], CLAIMS["C4"], "needs finished runs at two burst "
                         "sizes or more", Cells(planned, 0))
    theory, d = critical_width(rows[0]), dimension(rows)
    widths = sorted({width(r) for r in rows if width(r) < d})
    narrow = max((w for w in widths if w <= theory), default=None)
    wide = widths[-1] if widths else None
    if narrow is None or wide is None or wide < s.well_above * theory:
        return undecided("C4", FIGURE["C4"], CLAIMS["C4"], f"needs a width at or below "
                         f"N*={theory} and one at least {s.well_above:g} x N* below d={d} "
                         f"(Settings.well_above); widths {widths}", Cells(planned, 0))
    table: dict[tuple[int, int], dict[int, float]] = {}
    for n, rs in bursts.items():
        for r in finished(rs):
            if width(r) in (narrow, wide) and r.run_id in final:
                table.setdefault((width(r), key(r).seed), {})[n] = final[r.run_id]
    sizes = sorted(bursts)
    seeds = sorted({seed for (_, seed), by_n in table.items() if len(by_n) == len(sizes)})
    seeds = [sd for sd in seeds if all(len(table.get((w, sd), {})) == len(sizes)
                                       for w in (narrow, wide))]
    effects = {f"seed {sd}": slope(np.log(sizes), [table[narrow, sd][n] for n in sizes])
               - slope(np.log(sizes), [table[wide, sd][n] for n in sizes]) for sd in seeds}
    steps = min(int(r.params["steps"]) for r in rows if width(r) == narrow)
    expected = max(int(r.params["stopping.expected_steps"]) for r in rows if width(r) == narrow)
    cells = Cells(planned, 2 * len(sizes) * len(seeds))
    mean = {w: {n: np.mean([table[w, sd][n] for sd in seeds]) for n in sizes}
            for w in (narrow, wide)} if seeds else {}
    evidence = (f"slope of the final rare loss (over whole burst cycles in the last "
                f"{s.tail:g} of the run, Settings.tail) against log n, n in {sizes}, at width "
                f"{narrow} (N*={theory}) minus at width {wide}, per seed; {steps} steps, the "
                f"theory's expected steps at width {narrow}: {expected}" + "".join(
                    f"; width {w} mean over seeds: " + ", ".join(
                        f"n={n} {v:.3f}" for n, v in by_n.items())
                    for w, by_n in mean.items()))
    estimate = mean_of(effects, "seeds")
    if steps < expected:
        return undecided("C4", FIGURE["C4"], CLAIMS["C4"], f"{steps} steps, under the "
                         f"theory's expected {expected} at width {narrow}: the narrow student "
                         "may not have settled", cells, evidence, 0.0, estimate)
    return judge("C4", FIGURE["C4"], CLAIMS["C4"], estimate, 0.0, "greater", evidence, cells,
                 min_n=s.burst_seeds)


# -- C5: interference -------------------------------------------------------------------------

def c5_interference(rows: list[Row], frequent_norm: dict[str, list[float]],
                    cos_nontask: dict[str, list[float]]) -> Claim:
    """`rows`: the i.i.d. sampled runs; the dicts: run id -> the values over the second half
    of its run. Per seed, over every width below d: Spearman's rho against width of the mean
    frequent_norm, of |mean cos(g_nontask, G_r)| and of its standard deviation; each
    predicted < 0 (falls with width)."""
    by_seed: dict[int, list[tuple[int, float, float, float]]] = {}
    d, used = dimension(rows), 0
    for r in finished(rows):
        norm, cos = frequent_norm.get(r.run_id) or [], cos_nontask.get(r.run_id) or []
        if width(r) >= d or not norm or len(cos) < 2:
            continue
        used += 1
        by_seed.setdefault(key(r).seed, []).append(
            (width(r), float(np.mean(norm)), abs(float(np.mean(cos))), float(np.std(cos))))
    parts = []
    for i, name in enumerate(("frequent_norm", "|mean cos(g_nontask, G_r)|",
                              "sd of cos(g_nontask, G_r)"), 1):
        rho = {f"seed {sd}": rank_correlation([v[0] for v in vs], [v[i] for v in vs])
               for sd, vs in by_seed.items()}
        parts.append(Part(f"rank correlation of {name} with width", mean_of(rho, "seeds"),
                          0.0, "less"))
    means = {}
    for vs in by_seed.values():
        for v in vs:
            means.setdefault(v[0], []).append(v[1:])
    table = "; ".join(f"width {w}: norm {np.mean([v[0] for v in vs]):.4g}, |cos| "
                      f"{np.mean([v[1] for v in vs]):.3f}, sd {np.mean([v[2] for v in vs]):.3f}"
                      for w, vs in sorted(means.items()))
    cells = Cells(len(rows), used)
    evidence = f"second half of the i.i.d. runs, means over seeds: {table}"
    if len(means) < 2:
        return undecided("C5", FIGURE["C5"], CLAIMS["C5"], "needs two widths below d",
                         cells, evidence)
    return judge_all("C5", FIGURE["C5"], CLAIMS["C5"], parts, evidence, cells)


# -- C6, C8: learning order -------------------------------------------------------------------

def _pairs(row: Row, s: Settings, frequency_disagrees: bool) -> tuple[int, int]:
    """(in utility order, against it) among pairs of features both learned during training
    (not aligned from the start) at different steps whose utilities differ by `order_ratio`
    or more; with `frequency_disagrees` only pairs of different tasks whose frequencies order
    them the other way."""
    u, t = utilities(row.params), feature_steps(row)
    pi = np.broadcast_to(frequencies(row.params)[:, None], u.shape).ravel()
    task = np.broadcast_to(np.arange(u.shape[0])[:, None], u.shape).ravel()
    u, t = u.ravel(), t.ravel()
    keep = t > 0
    u, t, pi, task = u[keep], t[keep], pi[keep], task[keep]
    larger = u[:, None] >= s.order_ratio * u[None, :]
    if frequency_disagrees:
        larger &= (pi[:, None] < pi[None, :]) & (task[:, None] != task[None, :])
    dt = t[:, None] - t[None, :]
    return int((larger & (dt < 0)).sum()), int((larger & (dt > 0)).sum())


def _order_claim(claim_id: str, rows: list[Row], s: Settings, frequency_disagrees: bool,
                 what: str) -> Claim:
    shares, ordered, total = {}, 0, 0
    for row in finished(rows):
        good, bad = _pairs(row, s, frequency_disagrees)
        if good + bad:
            k = key(row)
            shares[f"{k.task} f={k.frequency:g} width {k.width} seed {k.seed}"] = \
                good / (good + bad)
            ordered, total = ordered + good, total + good + bad
    cells = Cells(len(rows), len(shares))
    evidence = (f"{what}: {ordered} of {total} pairs ({ordered / max(total, 1):.1%}) learned in "
                f"utility order, pairs whose utilities differ by {s.order_ratio:g}x or more "
                "(Settings.order_ratio), both learned during training; effect: the share per "
                "run, null 0.5 (no order)")
    if not shares:
        return undecided(claim_id, FIGURE[claim_id], CLAIMS[claim_id], f"no run with {what}",
                         cells, evidence, 0.5)
    return judge(claim_id, FIGURE[claim_id], CLAIMS[claim_id], mean_of(shares, "runs"), 0.5,
                 "greater", evidence, cells)


def c6_utility_order(rows: list[Row], s: Settings = SETTINGS) -> Claim:
    return _order_claim("C6", rows, s, False, "pairs of features")


def c8_utility_over_frequency(rows: list[Row], s: Settings = SETTINGS) -> Claim:
    """Pairs of features of different tasks where the more frequent task's feature has the
    smaller utility: frequency and utility predict opposite orders."""
    return _order_claim("C8", rows, s, True, "pairs where frequency and utility disagree")
