"""A sweep's fit: every scaling curve's law, critical width and regime, and what they predict.

`fit_sweep` turns the curves of whatever has finished into a `SweepFit`; its JSON is what the
`fit` run logs and what the registered pyfunc model (`tracking/fit/model.py`) predicts from.

Regimes (the paper's two, decided per (task, frequency) from the training curves):
- "data scaling": the smallest swept width learns the task, or every width that does not was
  still improving when training ended: more data (steps, tokens) may get there.
- "model scaling": some width stopped improving above the learned threshold (its late gain
  under `PLATEAU`): more of the same data does not help it, a wider model is needed; the
  critical width N* says how wide.
- "undecided": the curves are missing (nothing finished) or too short to tell.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel

from tracking.curves import Curve, Measure, width_order
from tracking.fit.laws import (Crossing, FrequencyLaw, StepFit, critical_width, fit_frequency_law,
                           fit_step)

PLATEAU = 0.01  # a score that improved by less than this over the last fifth has flattened
DATA, MODEL, UNDECIDED = "data scaling", "model scaling", "undecided"


class CurveFit(BaseModel):
    curve: Curve
    step: StepFit | None  # None with too few widths
    critical: Crossing
    regime: str


class TaskLaw(BaseModel):
    """N*(f) of one task: measured, and the synthetic theory's where the runs logged it."""

    task: str
    measured: FrequencyLaw | None
    theory: FrequencyLaw | None


class SweepFit(BaseModel):
    sweep: str
    trainable: str
    measure: Measure
    curves: list[CurveFit]
    laws: list[TaskLaw]
    finished: int
    total: int
    missing: list[str]  # keys of the grid points not finished yet

    def curves_of(self, task: str) -> list[CurveFit]:
        return [c for c in self.curves if c.curve.task == task]

    def critical_width(self, frequency: float, task: str) -> float:
        """N*(f): the task's power law in f; without one (fewer than three uncensored N*),
        the measured N* at the nearest frequency; NaN if none was measured."""
        law = next((t.measured for t in self.laws if t.task == task), None)
        if law is not None:
            return float(law(frequency))
        measured = [c for c in self.curves_of(task) if c.critical.width is not None]
        if not measured:
            return math.nan
        nearest = min(measured, key=lambda c: abs(math.log(c.curve.frequency / frequency)))
        return nearest.critical.width

    def rare_loss(self, width: float | str, frequency: float, task: str) -> float:
        """L(N) of the task's fitted curves, interpolated in log f between the two nearest
        swept frequencies (the nearest one's outside them: see `extrapolated`); NaN if the
        task has no fit."""
        fitted = sorted((c for c in self.curves_of(task) if c.step is not None),
                        key=lambda c: c.curve.frequency)
        if not fitted:
            return math.nan
        n = width_order(str(width))
        log_f = np.log([c.curve.frequency for c in fitted])
        return float(np.interp(math.log(frequency), log_f, [float(c.step(n)) for c in fitted]))

    def extrapolated(self, width: float | str, frequency: float, task: str) -> bool:
        """Whether (width, frequency) lies outside what the task's sweep ran: the fit's
        answers there are the nearest data's, not measurements."""
        curves = self.curves_of(task)
        if not curves:
            return True
        frequencies = [c.curve.frequency for c in curves]
        sizes = [s for c in curves for s in c.curve.sizes]
        n = width_order(str(width))
        return not (min(frequencies) <= frequency <= max(frequencies)
                    and min(sizes) <= n <= max(sizes))


def regime(learned: list[bool], late_gain: list[float | None],
           plateau: float = PLATEAU) -> str:
    """The regime of one curve (module docstring), widths ascending."""
    if not learned:
        return UNDECIDED
    if learned[0]:
        return DATA
    stuck = [g for ok, g in zip(learned, late_gain) if not ok]
    if any(g is not None and g < plateau for g in stuck):
        return MODEL
    return DATA if all(g is not None for g in stuck) else UNDECIDED


def fit_curve(curve: Curve, measure: Measure, rng: np.random.Generator) -> CurveFit:
    sizes = [s for s, values in zip(curve.sizes, curve.losses) for _ in values]
    losses = [v for values in curve.losses for v in values]
    learned = curve.learned(measure)
    return CurveFit(
        curve=curve,
        step=fit_step(sizes, losses, rng),
        critical=searched_critical(curve, measure) if curve.inferred else
        critical_width(curve.sizes, curve.score_mean, measure.threshold, measure.lower_is_better),
        regime=regime([bool(x >= 0.5) for x in learned], curve.late_gain),
    )


def searched_critical(curve: Curve, measure: Measure) -> Crossing:
    """N* of a searched sweep's curve, its trained and inferred cells together: the first
    width learned at most of its seeds; interpolated by score as in a grid sweep where that
    width and the one before were trained at every seed, else their midpoint in log width
    (an inferred cell has a verdict, not a score)."""
    verdicts: dict[str, list[bool]] = {w: list(v) for w, v in curve.inferred.items()}
    for width, scores in zip(curve.widths, curve.scores):
        verdicts.setdefault(width, []).extend(measure.learned(s) for s in scores)
    widths = sorted(verdicts, key=width_order)
    learned = [np.mean(verdicts[w]) >= 0.5 for w in widths]
    if not any(learned):
        return Crossing(width=None, below=width_order(widths[-1]), above=None)
    i = learned.index(True)
    if i == 0:
        return Crossing(width=None, below=None, above=width_order(widths[0]))
    pair = widths[i - 1:i + 1]
    if not any(w in curve.inferred for w in pair):
        scores = [np.mean(curve.scores[curve.widths.index(w)]) for w in pair]
        crossing = critical_width([width_order(w) for w in pair], scores, measure.threshold,
                                  measure.lower_is_better)
        if crossing.width is not None:
            return crossing
    below, above = width_order(pair[0]), width_order(pair[1])
    return Crossing(width=float(np.sqrt(below * above)), below=below, above=above)


def fit_sweep(sweep: str, trainable: str, measure: Measure, curves: list[Curve],
              total: int, missing: list[str], seed: int = 0) -> SweepFit:
    """Fit every curve, then N*(f) per task; the bootstrap draws from one seeded generator,
    so the same curves give the same fit."""
    rng = np.random.default_rng(seed)
    fits = [fit_curve(c, measure, rng) for c in curves]
    laws = []
    for task in dict.fromkeys(c.task for c in curves):
        mine = [f for f in fits if f.curve.task == task]
        measured = [(f.curve.frequency, f.critical.width) for f in mine
                    if f.critical.width is not None]
        theory = [(f.curve.frequency, f.curve.theory_critical) for f in mine
                  if f.curve.theory_critical is not None]
        laws.append(TaskLaw(task=task, measured=fit_frequency_law(*zip(*measured))
                            if measured else None,
                            theory=fit_frequency_law(*zip(*theory)) if theory else None))
    finished = sum(len(v) for c in curves for v in c.losses)
    return SweepFit(sweep=sweep, trainable=trainable, measure=measure, curves=fits, laws=laws,
                    finished=finished, total=total, missing=missing)
