"""The synthetic report's claims C1-C6 (CONTRACTS 7) and the data helpers its figures share.

Each claim is a plain function over rows (final metrics, params) or metric series, so tests
judge it on hand-made data that contradicts it. Where the paper gives no number (how flat a
plateau is, how monotone "monotone" is) the choice is a field of `Settings`, named in its
verdict's evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracking.curves import Row
from tracking.layout import FEATURE_STEPS
from tracking.report.claims import Claim

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
}


@dataclass(frozen=True)
class Settings:
    """The report's own choices where the paper gives no number."""

    monotone_tolerance: float = 0.02  # C1: a rise in rare loss up to this counts as flat
    width_steps: int = 1  # C2: measured and theory's N* at most this many grid widths apart
    plateau_tolerance: float = 0.05  # C3: the most the rare loss may fall over the long run
    long_factor: int = 10  # C3: the long run is read at 1/long_factor of its steps and at the end
    tail: float = 0.2  # final value of a sampled run: mean over this last fraction of its steps
    burst_margin: float = 0.02  # C4: the narrow student's loss from bursts exceeds the wide's by
    order_fraction: float = 0.9  # C6: this share of feature pairs learned in utility order
    order_ratio: float = 2.0  # C6: pairs whose utilities differ by at least this factor


SETTINGS = Settings()


# -- reading ----------------------------------------------------------------------------------

def width(row: Row) -> int:
    return int(row.params["width"])


def curves(rows: list[Row]) -> dict[tuple[str, float, str], list[Row]]:
    """(task, frequency, seed) -> finished rows, narrow first."""
    out: dict[tuple, list[Row]] = {}
    for row in rows:
        if row.state == "FINISHED":
            p = row.params
            out.setdefault((p["task"], float(p["frequency"]), p["seed"]), []).append(row)
    return {k: sorted(v, key=width) for k, v in sorted(out.items(), key=lambda kv: (
        kv[0][0], -kv[0][1], kv[0][2]))}


def tail_mean(series: Series, end: float | None = None, tail: float = SETTINGS.tail) -> float:
    """Mean over the last `tail` of the steps up to `end` (default the last step)."""
    end = series[-1][0] if end is None else end
    values = [v for s, v in series if end * (1 - tail) <= s <= end]
    return float(np.mean(values)) if values else float("nan")


def utilities(params: dict) -> np.ndarray:
    """pi_k * lambda_{k,j} of a run's problem, (K, r), from its params: background frequencies
    Zipf over 1 - f, the rare task (last) at f, lambda_j ~ j^-decay summing to 1. The
    trainable's theory computes the same (tracking cannot import it: `test_layering`;
    `tests/tracking/test_report_synthetic.py` holds the two equal)."""
    K, r, f = int(params["tasks"]), int(params["features_per_task"]), float(params["frequency"])
    pi = np.arange(1, K, dtype=np.float64) ** -float(params["zipf"])
    pi = np.append(pi * (1 - f) / pi.sum(), f)
    decays = [float(params["background_decay"])] * (K - 1) + [
        float(params[f"complexity.{params['task']}"])]
    lam = np.stack([np.arange(1, r + 1, dtype=np.float64) ** -a for a in decays])
    return pi[:, None] * lam / lam.sum(axis=1, keepdims=True)


def dimension(rows: list[Row]) -> int:
    """d = K r of the rows' problem (0 for no rows)."""
    return int(rows[0].params["tasks"]) * int(rows[0].params["features_per_task"]) if rows \
        else 0


def feature_steps(row: Row) -> np.ndarray:
    """(K, r) first step each feature was learned (-1: never; NaN: not recorded), from the
    run's `feature_steps.json` table (`tracking.query.with_table` reads it into the row)."""
    K, r = int(row.params["tasks"]), int(row.params["features_per_task"])
    steps = np.full((K, r), np.nan)
    table = row.tables.get(FEATURE_STEPS)
    if table:
        column = {name: i for i, name in enumerate(table["columns"])}
        for line in table["data"]:
            steps[int(line[column["task"]]), int(line[column["feature"]])] = line[column["step"]]
    return steps


# -- claims -----------------------------------------------------------------------------------

def _label(key: tuple) -> str:
    task, frequency, seed = key
    return f"{task} f={frequency:g} seed {seed}"


def c1_monotone(rows: list[Row], s: Settings = SETTINGS) -> Claim:
    rises = []
    lines = curves(rows)
    for key, line in lines.items():
        for a, b in zip(line, line[1:]):
            rise = b.metrics["rare/loss"] - a.metrics["rare/loss"]
            if rise > s.monotone_tolerance:
                rises.append(f"{_label(key)}: {a.metrics['rare/loss']:.3f} at width {width(a)} "
                             f"-> {b.metrics['rare/loss']:.3f} at {width(b)}")
    if not lines:
        return Claim("C1", "fig2-phase", CLAIMS["C1"], None, "no finished runs")
    holds = not rises
    return Claim("C1", "fig2-phase", CLAIMS["C1"], holds,
                 f"{len(lines) - len({r.split(':')[0] for r in rises})} of {len(lines)} curves "
                 f"never rise by more than {s.monotone_tolerance} (Settings.monotone_tolerance)"
                 + ("" if holds else "; rises: " + "; ".join(rises)))


def c2_critical_width(rows: list[Row], s: Settings = SETTINGS) -> Claim:
    parts, wrong = [], []
    for key, line in curves(rows).items():
        widths = [width(r) for r in line]
        threshold = float(line[0].params["learned_threshold"])
        theory = int(line[0].metrics["theory/critical_width"])
        learned = [w for w, r in zip(widths, line) if r.metrics["rare/loss"] <= threshold]
        measured = learned[0] if learned else None
        if theory > widths[-1]:
            wrong.append(f"{_label(key)}: the widths (up to {widths[-1]}) do not reach the "
                         f"theory's critical width N*={theory}, so it cannot be measured")
            continue
        if theory < widths[0]:  # no width below N*: a curve learned everywhere would "agree"
            wrong.append(f"{_label(key)}: the widths start at {widths[0]}, above the theory's "
                         f"critical width N*={theory}, so the transition cannot be seen")
            continue
        at = next(i for i, w in enumerate(widths) if w >= theory)
        got = widths.index(measured) if measured is not None else len(widths)
        text = (f"{_label(key)}: measured {measured or f'none up to {widths[-1]}'}, "
                f"theory N*={theory}")
        (wrong if abs(got - at) > s.width_steps else parts).append(text)
    if not parts and not wrong:
        return Claim("C2", "fig2-phase", CLAIMS["C2"], None, "no finished runs")
    return Claim("C2", "fig2-phase", CLAIMS["C2"], not wrong,
                 f"{len(parts)} of {len(parts) + len(wrong)} curves agree within "
                 f"{s.width_steps} grid width(s)" + (f"; disagree: {'; '.join(wrong)}"
                                                     if wrong else "; " + "; ".join(parts)))


def c3_long_horizon(rows: list[Row], rare_loss: dict[str, Series],
                    s: Settings = SETTINGS) -> Claim:
    """`rare_loss`: run id -> its rare/loss series over the long run."""
    stayed, moved, above = [], [], []
    for row in sorted((r for r in rows if r.state == "FINISHED"), key=width):
        series = rare_loss.get(row.run_id) or []
        if not series:
            continue
        end = series[-1][0]
        early, late = tail_mean(series, end / s.long_factor, s.tail), tail_mean(series, None,
                                                                               s.tail)
        theory = int(row.metrics["theory/critical_width"])
        text = (f"width {width(row)} (N*={theory}): {early:.3f} at step {end // s.long_factor}"
                f", {late:.3f} at {end}")
        if width(row) >= theory:
            above.append(text)
        elif early - late <= s.plateau_tolerance and late > float(
                row.params["learned_threshold"]):
            stayed.append(text)
        else:
            moved.append(text)
    contrast = f"; above N* (not judged): {'; '.join(above)}" if above else ""
    if not stayed and not moved:
        return Claim("C3", "long-horizon", CLAIMS["C3"], None,
                     "no finished run below the critical width" + contrast)
    return Claim("C3", "long-horizon", CLAIMS["C3"], not moved,
                 f"{len(stayed)} of {len(stayed) + len(moved)} widths below N* fall by at most "
                 f"{s.plateau_tolerance} (Settings.plateau_tolerance) and stay unlearned over "
                 f"{s.long_factor}x the steps: " + "; ".join(stayed + moved) + contrast)


def c4_bursts(final: dict[int, dict[int, float]], s: Settings = SETTINGS) -> Claim:
    """`final`: burst size n -> width -> final rare loss (at equal long-run frequency)."""
    sizes = sorted(final)
    widths = sorted(set.intersection(*(set(final[n]) for n in sizes))) if sizes else []
    if len(sizes) < 2 or len(widths) < 2:
        return Claim("C4", "fig6b-bursts", CLAIMS["C4"], None,
                     "needs two burst sizes and two widths with finished runs")
    small, large = sizes[0], sizes[-1]
    hurt = {w: final[large][w] - final[small][w] for w in widths}
    narrow, wide = widths[0], widths[-1]
    holds = hurt[narrow] > 0 and hurt[narrow] - hurt[wide] > s.burst_margin
    table = "; ".join(f"width {w}: " + ", ".join(f"n={n} {final[n][w]:.3f}" for n in sizes)
                      for w in widths)
    return Claim("C4", "fig6b-bursts", CLAIMS["C4"], holds,
                 f"final rare loss from n={small} to n={large}: {hurt[narrow]:+.3f} at width "
                 f"{narrow}, {hurt[wide]:+.3f} at width {wide} (margin {s.burst_margin}, "
                 f"Settings.burst_margin). {table}")


def c5_interference(frequent_norm: dict[int, list[float]],
                    cos_nontask: dict[int, list[float]]) -> Claim:
    """Per width, the values over the second half of the i.i.d. run."""
    widths = sorted(set(frequent_norm) & set(cos_nontask))
    if len(widths) < 2:
        return Claim("C5", "interference", CLAIMS["C5"], None, "needs two widths")
    norms = [float(np.mean(frequent_norm[w])) for w in widths]
    falls = all(b < a for a, b in zip(norms, norms[1:]))
    size = {w: abs(float(np.mean(cos_nontask[w]))) for w in widths}
    spread = {w: float(np.std(cos_nontask[w])) for w in widths}
    narrow, wide = widths[0], widths[-1]
    smaller, steadier = size[wide] < size[narrow], spread[wide] < spread[narrow]
    return Claim("C5", "interference", CLAIMS["C5"], falls and smaller and steadier,
                 "frequent_norm by width: " + ", ".join(f"{w}: {n:.4f}" for w, n in
                                                        zip(widths, norms))
                 + f" ({'falls' if falls else 'does not fall'} with width); |mean| of "
                 f"cos(g_nontask, G_r) {size[narrow]:.4f} at width {narrow} vs {size[wide]:.4f}"
                 f" at {wide}, spread {spread[narrow]:.4f} vs {spread[wide]:.4f}")


def c6_utility_order(rows: list[Row], s: Settings = SETTINGS) -> Claim:
    """Pairs of features both learned during training (not aligned from the start) whose
    utilities differ by `order_ratio` or more and whose steps differ: the share where the
    larger utility came first. Near-equal utilities are left out: their order is decided by
    the initial encoder, and the steps are recorded to 1/64 of the step after 128."""
    ordered = swapped = 0
    for row in rows:
        if row.state != "FINISHED":
            continue
        u, t = utilities(row.params).ravel(), feature_steps(row).ravel()
        keep = t > 0
        u, t = u[keep], t[keep]
        larger, dt = u[:, None] >= s.order_ratio * u[None, :], t[:, None] - t[None, :]
        ordered += int((larger & (dt < 0)).sum())
        swapped += int((larger & (dt > 0)).sum())
    if ordered + swapped == 0:
        return Claim("C6", "fig3-utility-order", CLAIMS["C6"], None,
                     "no pair of features learned at different steps")
    share = ordered / (ordered + swapped)
    return Claim("C6", "fig3-utility-order", CLAIMS["C6"], share >= s.order_fraction,
                 f"{ordered} of {ordered + swapped} pairs of learned features ({share:.1%}) "
                 f"were learned in utility order (needed {s.order_fraction:.0%}, "
                 f"Settings.order_fraction), pairs whose utilities differ by {s.order_ratio:g}x "
                 "or more (Settings.order_ratio); features aligned from the start left out")
