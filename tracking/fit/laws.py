"""The numerical fits behind `sweeps fit`: plain functions of arrays, scipy underneath.

- L(N), a step in log N: L(N) = low + (high - low) / (1 + (N / n_step)^steepness), the
  logistic in log N between the loss of models too small for the task (`high`) and of models
  that learn it (`low`). A rare task's loss against width is a step at the critical width, not
  a power law (a power law's L_inf ran to 0 on every demo curve and missed by up to 3x):
  where the data are a step the fit finds it, where they fall gradually (a complex task, whose
  features are kept one by one) a small steepness describes that. Least squares in loss units,
  95% intervals from a residual bootstrap (the widths a sweep ran are fixed by design, so the
  bootstrap redraws the noise around the fit, not the widths); `rmse` and `points` say how well
  it describes how much data.
- The critical width N*: the smallest width that learns the task, interpolated in log width
  where the rare metric crosses the learned threshold; censored when the crossing lies outside
  the swept widths (a bound, kept out of the law below).
- Its power law in frequency, N*(f) = c f^-beta: a straight line in log-log through the
  uncensored N*, fitted from three frequencies on (two points always lie on a line).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel
from scipy import optimize, stats

MIN_WIDTHS = 5  # four parameters and one degree of freedom
MIN_FREQUENCIES = 3  # for N*(f): two points are a line whatever the data
BOOTSTRAP = 200
LEVEL = 0.95
STEEPNESS = (0.1, 50.0)  # bounds: from a fall over a few decades to a jump between two widths
STEP_RANGE = 10.0  # n_step within this factor beyond the swept widths


class StepFit(BaseModel):
    """L(N) = low + (high - low) / (1 + (N / n_step)^steepness), with 95% intervals; rmse in
    the loss's units over `points` observations; `censored` when the step's middle lies
    outside the swept widths (the data show one side of it only)."""

    high: float
    low: float
    n_step: float
    steepness: float
    high_interval: tuple[float, float]
    low_interval: tuple[float, float]
    n_step_interval: tuple[float, float]
    steepness_interval: tuple[float, float]
    rmse: float
    points: int
    censored: bool  # no step inside the sweep: its middle beyond the widths, or none above noise

    def __call__(self, n) -> np.ndarray:
        return step(np.asarray(n, dtype=float), self.high, self.low, self.n_step,
                    self.steepness)


def step(n: np.ndarray, high: float, low: float, n_step: float, steepness: float) -> np.ndarray:
    # (N / n_step)^s as exp(s log(N / n_step)), clipped: far from the step it saturates.
    z = np.clip(steepness * np.log(n / n_step), -500.0, 500.0)
    return low + (high - low) / (1.0 + np.exp(z))


def fit_step(n, loss, rng: np.random.Generator, bootstrap: int = BOOTSTRAP) -> StepFit | None:
    """Fit L(N) to observations (n[i], loss[i]), repeated widths (seeds) allowed.
    None when there are fewer than MIN_WIDTHS distinct widths."""
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    if len(np.unique(n)) < MIN_WIDTHS:
        return None
    x = np.log(n)
    best = _fit(x, loss)
    fitted = _model(x, best)
    residuals = loss - fitted
    draws = np.array([_fit(x, fitted + rng.choice(residuals, residuals.size), best)
                      for _ in range(bootstrap)])
    low, high = np.percentile(draws, [50 * (1 - LEVEL), 50 * (1 + LEVEL)], axis=0)
    interval = [(float(a), float(b)) for a, b in zip(low, high)]
    log_step, rmse = best[2], float(np.sqrt(np.mean(residuals ** 2)))
    visible = abs(best[0] - best[1]) > 2.0 * rmse + 1e-9
    return StepFit(
        high=float(best[0]), low=float(best[1]), n_step=float(math.exp(log_step)),
        steepness=float(best[3]), high_interval=interval[0], low_interval=interval[1],
        n_step_interval=(math.exp(interval[2][0]), math.exp(interval[2][1])),
        steepness_interval=interval[3],
        rmse=rmse, points=int(loss.size),
        censored=not (visible and x.min() <= log_step <= x.max()),
    )


def _model(x: np.ndarray, p) -> np.ndarray:
    return step(np.exp(x), p[0], p[1], math.exp(p[2]), p[3])


def _fit(x: np.ndarray, loss: np.ndarray, start=None) -> np.ndarray:
    """Least squares over (high, low, log n_step, steepness), from `start` (a bootstrap
    replicate starts at the best fit), else from a step between every two swept widths and a
    few steepnesses, as a step's surface has a local minimum at each gap between widths."""
    spread = max(float(np.ptp(loss)), 1e-6)
    floor = min(0.0, float(loss.min()))  # a loss >= 0 (up to rounding) stays so
    lower = [floor, floor, x.min() - math.log(STEP_RANGE), STEEPNESS[0]]
    upper = [loss.max() + spread, loss.max() + spread, x.max() + math.log(STEP_RANGE),
             STEEPNESS[1]]

    def residuals(p):
        return _model(x, p) - loss

    def jacobian(p):
        high, low, m, s = p
        g = 1.0 / (1.0 + np.exp(np.clip(s * (x - m), -500.0, 500.0)))  # the step's share
        slope = (high - low) * g * (1.0 - g)
        return np.stack([g, 1.0 - g, s * slope, -(x - m) * slope], axis=1)

    if start is not None:
        starts = [start]
    else:
        widths = np.unique(x)
        middles = (widths[:-1] + widths[1:]) / 2
        starts = [[loss[x == widths[0]].mean(), loss[x == widths[-1]].mean(), m, s]
                  for m in middles for s in (1.0, 8.0)]
    fits = [optimize.least_squares(residuals, np.clip(s, lower, upper), jac=jacobian,
                                   bounds=(lower, upper)) for s in starts]
    return min(fits, key=lambda f: f.cost).x


class Crossing(BaseModel):
    """Where the rare task becomes learned along the widths: N* interpolated between the
    last width that does not learn it (`below`) and the first that does (`above`). One side
    is None when the crossing is outside the sweep (learned at every width, or at none)."""

    width: float | None
    below: float | None
    above: float | None

    @property
    def bound(self) -> str:
        """N* as text: the value, or the side of the sweep it lies beyond."""
        if self.width is not None:
            return f"{self.width:.3g}"
        if self.above is not None:
            return f"<={self.above:g}"
        return f">{self.below:g}" if self.below is not None else "?"


def critical_width(widths, scores, threshold: float, lower_is_better: bool = True) -> Crossing:
    """The first width whose score is on the learned side of `threshold`, and N* by linear
    interpolation of the score in log width between it and the width before."""
    widths, scores = np.asarray(widths, dtype=float), np.asarray(scores, dtype=float)
    sign = 1.0 if lower_is_better else -1.0
    margin = sign * (threshold - scores)  # >= 0: learned
    learned = np.flatnonzero(margin >= 0)
    if learned.size == 0:
        return Crossing(width=None, below=float(widths[-1]) if widths.size else None, above=None)
    i = int(learned[0])
    if i == 0:
        return Crossing(width=None, below=None, above=float(widths[0]))
    t = -margin[i - 1] / (margin[i] - margin[i - 1])  # in (0, 1]: the margin rises to >= 0
    log_n = np.log(widths[i - 1]) + t * (np.log(widths[i]) - np.log(widths[i - 1]))
    return Crossing(width=float(np.exp(log_n)), below=float(widths[i - 1]),
                    above=float(widths[i]))


class FrequencyLaw(BaseModel):
    """N*(f) = c f^-beta over the frequencies with an uncensored N*; beta's 95% interval from
    the regression's standard error; rmse_log: the residuals of log N*, how well a power law
    describes them; `frequency_range`: the frequencies it was fitted on."""

    c: float
    beta: float
    beta_interval: tuple[float, float]
    frequencies: int
    rmse_log: float
    frequency_range: tuple[float, float]

    def __call__(self, frequency) -> np.ndarray:
        return self.c * np.asarray(frequency, dtype=float) ** -self.beta


def fit_frequency_law(frequencies, widths) -> FrequencyLaw | None:
    """Least squares of log N* against log f; None with fewer than MIN_FREQUENCIES."""
    f, n = np.asarray(frequencies, dtype=float), np.asarray(widths, dtype=float)
    if len(np.unique(f)) < MIN_FREQUENCIES:
        return None
    line = stats.linregress(np.log(f), np.log(n))
    half = stats.t.ppf(0.5 + LEVEL / 2, f.size - 2) * line.stderr
    residuals = np.log(n) - (line.intercept + line.slope * np.log(f))
    return FrequencyLaw(c=float(math.exp(line.intercept)), beta=float(-line.slope),
                        beta_interval=(float(-line.slope - half), float(-line.slope + half)),
                        frequencies=int(f.size), rmse_log=float(np.sqrt(np.mean(residuals ** 2))),
                        frequency_range=(float(f.min()), float(f.max())))
