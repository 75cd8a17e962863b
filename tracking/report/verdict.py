"""The verdict rules every claim of every study follows (CONTRACTS 7, rev 3).

A claim is decided by a signed effect statistic over independent replicates (usually seeds),
its 95% interval and a null (the effect under no such phenomenon: 0, chance, a noise floor):
`holds` is True only when the interval excludes the null on the side the claim predicts,
False when it excludes it on the other side, and None otherwise, with the reason. A claim
computes its per-replicate effects; this module turns them into an `Estimate` and a `Claim`,
so no study has a decision rule of its own.

Intervals: `mean_of` is Student's t over the replicates (exact for normal errors, and honest
at the 3-8 seeds a sweep affords, where a percentile bootstrap of the mean is up to 2-3x too
narrow); `bootstrap` resamples the replicates (scipy's BCa) for statistics other than a mean;
`share` is the exact Clopper-Pearson interval of a proportion. Each estimate names its method
in the evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from tracking.report.claims import Cells, Claim

Direction = Literal["greater", "less"]  # the side of the null the claim predicts
LEVEL = 0.95
MIN_REPLICATES = 2  # below this no interval exists: the claim is null


@dataclass(frozen=True)
class Estimate:
    """An effect over `n` independent replicates and its interval (None: none exists)."""

    effect: float
    interval: tuple[float, float] | None
    n: int
    method: str  # how the interval was made, in words: "t over 5 seeds"
    replicates: tuple[tuple[str, float], ...] = ()  # (label, value): what a reader recomputes

    def describe(self, fmt: str = ".3g") -> str:
        if self.interval is None:
            return f"{self.effect:{fmt}} (n={self.n}, no interval)"
        lo, hi = self.interval
        return (f"{self.effect:{fmt}}, {LEVEL:.0%} interval [{lo:{fmt}}, {hi:{fmt}}] "
                f"({self.method})")


def _labelled(replicates: Sequence[float] | dict[str, float]) -> tuple[tuple[str, float], ...]:
    items = replicates.items() if isinstance(replicates, dict) else (
        (str(i), v) for i, v in enumerate(replicates))
    return tuple((str(k), float(v)) for k, v in items if math.isfinite(float(v)))


def mean_of(replicates: Sequence[float] | dict[str, float], unit: str = "replicates",
            level: float = LEVEL) -> Estimate:
    """The mean of the replicates with Student's t interval; non-finite values are dropped."""
    labelled = _labelled(replicates)
    values = np.array([v for _, v in labelled])
    n = len(values)
    effect = float(values.mean()) if n else math.nan
    if n < MIN_REPLICATES:
        return Estimate(effect, None, n, f"t over {n} {unit}", labelled)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return Estimate(effect, (effect - half, effect + half), n, f"t over {n} {unit}", labelled)


def bootstrap(replicates: Sequence[float] | dict[str, float],
              statistic: Callable[[np.ndarray], float] = np.mean, unit: str = "replicates",
              level: float = LEVEL, resamples: int = 9999, seed: int = 0) -> Estimate:
    """`statistic` of the replicates with a BCa bootstrap interval over them (seeded, so a
    report is the same every time it is written); percentile where BCa is undefined."""
    labelled = _labelled(replicates)
    values = np.array([v for _, v in labelled])
    n = len(values)
    effect = float(statistic(values)) if n else math.nan
    method = f"bootstrap over {n} {unit}"
    if n < MIN_REPLICATES:
        return Estimate(effect, None, n, method, labelled)
    if np.ptp(values) == 0:  # every resample is the same: the interval is the point
        return Estimate(effect, (effect, effect), n, method, labelled)
    rng = np.random.default_rng(seed)
    for kind in ("BCa", "percentile"):
        ci = stats.bootstrap((values,), statistic, n_resamples=resamples, method=kind,
                             confidence_level=level, rng=rng).confidence_interval
        if math.isfinite(ci.low) and math.isfinite(ci.high):
            return Estimate(effect, (float(ci.low), float(ci.high)), n, method, labelled)
    return Estimate(effect, None, n, method, labelled)


def share(successes: int, trials: int, unit: str = "trials", level: float = LEVEL) -> Estimate:
    """The share of successes with the exact (Clopper-Pearson) interval."""
    if trials == 0:
        return Estimate(math.nan, None, 0, f"exact binomial over 0 {unit}")
    ci = stats.binomtest(successes, trials).proportion_ci(level, method="exact")
    return Estimate(successes / trials, (float(ci.low), float(ci.high)), trials,
                    f"exact binomial over {trials} {unit}",
                    (("successes", float(successes)), ("trials", float(trials))))


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of y on x (nan with fewer than two distinct x): one replicate's
    trend, e.g. final rare loss against log width."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < 2:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho of y against x (nan where undefined: fewer than two distinct values):
    one replicate's monotone trend, blind to the curve's shape."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def decide(estimate: Estimate, null: float, direction: Direction,
           min_n: int = MIN_REPLICATES) -> tuple[bool | None, str | None]:
    """(holds, reason): True or False only when the interval excludes the null."""
    if estimate.n < min_n:
        return None, (f"{estimate.n} independent replicate(s) ({estimate.method}), the claim "
                      f"needs at least {min_n}: cannot decide at this scale")
    if estimate.interval is None or not all(map(math.isfinite, estimate.interval)):
        return None, f"no interval could be formed ({estimate.method})"
    lo, hi = estimate.interval
    if lo > null:
        return direction == "greater", None
    if hi < null:
        return direction == "less", None
    return None, (f"the {LEVEL:.0%} interval [{lo:.3g}, {hi:.3g}] includes the null "
                  f"{null:.3g}: cannot decide at this scale (n={estimate.n})")


def judge(claim_id: str, figure: str, text: str, estimate: Estimate, null: float,
          direction: Direction, evidence: str, cells: Cells,
          min_n: int = MIN_REPLICATES) -> Claim:
    """The claim decided by the shared rule; `evidence` says in words what was compared, the
    estimate and its null are appended."""
    holds, reason = decide(estimate, null, direction, min_n)
    side = ">" if direction == "greater" else "<"
    full = f"{evidence}; effect {estimate.describe()}; the claim predicts effect {side} {null:.3g}"
    return Claim(claim_id, figure, text, holds, full, n=estimate.n,
                 effect=_finite(estimate.effect), interval=_interval(estimate), null=null,
                 cells=cells, reason=reason, replicates=estimate.replicates)


def undecided(claim_id: str, figure: str, text: str, reason: str, cells: Cells,
              evidence: str = "", null: float | None = None,
              estimate: Estimate | None = None) -> Claim:
    """A claim its data cannot decide, saying why (no statistic, or not enough of it)."""
    return Claim(claim_id, figure, text, None, evidence or reason,
                 n=estimate.n if estimate else 0,
                 effect=_finite(estimate.effect) if estimate else None,
                 interval=_interval(estimate) if estimate else None, null=null, cells=cells,
                 reason=reason, replicates=estimate.replicates if estimate else ())


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _interval(estimate: Estimate) -> list[float] | None:
    return list(estimate.interval) if estimate.interval is not None else None


@dataclass(frozen=True)
class Part:
    """One of the effects a claim asserts together (C5: the norm falls, and the cosine is
    smaller, and steadier), each with its own null and direction."""

    name: str
    estimate: Estimate
    null: float
    direction: Direction


def judge_all(claim_id: str, figure: str, text: str, parts: Sequence[Part], evidence: str,
              cells: Cells, min_n: int = MIN_REPLICATES) -> Claim:
    """A claim that is several effects at once: True when every part holds, False when any
    part is False, null otherwise. Its `effect`, `interval` and `null` are the deciding part's:
    the first False one, else the first undecided one, else the one closest to its null
    (relative to its interval's width), so the number shown is the weakest link."""
    decided = [(part, *decide(part.estimate, part.null, part.direction, min_n))
               for part in parts]

    def margin(item) -> float:
        part = item[0]
        lo, hi = part.estimate.interval
        return ((lo - part.null) if part.direction == "greater" else (part.null - hi)) / max(
            hi - lo, 1e-300)

    failed = [d for d in decided if d[1] is False]
    open_ = [d for d in decided if d[1] is None]
    part, holds, reason = failed[0] if failed else open_[0] if open_ else min(decided,
                                                                             key=margin)
    if open_ and not failed:
        reason = "; ".join(f"{p.name}: {r}" for p, _, r in open_)
    side = {"greater": ">", "less": "<"}
    lines = "; ".join(f"{p.name}: {p.estimate.describe()}, predicted {side[p.direction]} "
                      f"{p.null:.3g} ({'holds' if h else 'fails' if h is False else 'undecided'})"
                      for p, h, _ in decided)
    return Claim(claim_id, figure, text, holds, f"{evidence}; {lines}", n=part.estimate.n,
                 effect=_finite(part.estimate.effect), interval=_interval(part.estimate),
                 null=part.null, cells=cells, reason=reason,
                 replicates=tuple((f"{p.name}: {label}", v) for p, _, _ in decided
                                  for label, v in p.estimate.replicates))
