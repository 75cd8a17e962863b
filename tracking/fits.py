"""The numerical fits behind `sweeps fit`: plain functions of arrays, scipy underneath.

- L(N) = L_inf + A N^-alpha, fitted in log space (relative errors: the loss spans decades),
  with a residual bootstrap for 95% intervals: the widths a sweep ran are fixed by design, so
  the bootstrap redraws the noise around the fit, not the widths.
- The critical width N*: the smallest width that learns the task, interpolated in log width
  where the rare metric crosses the learned threshold; censored when the crossing lies outside
  the swept widths.
- Its power law in frequency, N*(f) = c f^-beta: a straight line in log-log.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel
from scipy import optimize, stats

LOSS_FLOOR = 1e-2  # losses below this count as this: a converged run's rare loss is only known
#                    to about 0.01 (synthetic runs stop there), and log(0) has no fit
MIN_WIDTHS = 4  # three parameters and one degree of freedom
BOOTSTRAP = 200
LEVEL = 0.95


class PowerLawFit(BaseModel):
    """L(N) = l_inf + a N^-alpha, with 95% intervals [low, high] per parameter."""

    l_inf: float
    a: float
    alpha: float
    l_inf_interval: tuple[float, float]
    a_interval: tuple[float, float]
    alpha_interval: tuple[float, float]
    rmse_log: float  # root-mean-square residual of log L: how well the law describes the curve

    def __call__(self, n) -> np.ndarray:
        return power_law(np.asarray(n, dtype=float), self.l_inf, self.a, self.alpha)


def power_law(n: np.ndarray, l_inf: float, a: float, alpha: float) -> np.ndarray:
    return l_inf + a * n ** -alpha


def fit_power_law(n, loss, rng: np.random.Generator, bootstrap: int = BOOTSTRAP,
                  floor: float = LOSS_FLOOR) -> PowerLawFit | None:
    """Fit L(N) to observations (n[i], loss[i]), repeated widths (seeds) allowed.
    None when there are fewer than MIN_WIDTHS distinct widths."""
    n, loss = np.asarray(n, dtype=float), np.maximum(np.asarray(loss, dtype=float), floor)
    if len(np.unique(n)) < MIN_WIDTHS:
        return None
    scale = math.exp(np.log(n).mean())  # fit in N / scale: keeps A near the losses' size
    x, log_loss = n / scale, np.log(loss)
    best = _fit_log(x, log_loss)
    fitted = np.log(power_law(x, *best))
    residuals = log_loss - fitted
    draws = np.array([_fit_log(x, fitted + rng.choice(residuals, residuals.size), best)
                      for _ in range(bootstrap)])
    params = np.vstack([best, draws])
    params[:, 1] *= scale ** params[:, 2]  # a (N/scale)^-alpha = (a scale^alpha) N^-alpha
    low, high = np.percentile(params[1:], [50 * (1 - LEVEL), 50 * (1 + LEVEL)], axis=0)
    l_inf, a, alpha = params[0]
    return PowerLawFit(
        l_inf=float(l_inf), a=float(a), alpha=float(alpha),
        l_inf_interval=(float(low[0]), float(high[0])),
        a_interval=(float(low[1]), float(high[1])),
        alpha_interval=(float(low[2]), float(high[2])),
        rmse_log=float(np.sqrt(np.mean(residuals ** 2))),
    )


def _fit_log(x: np.ndarray, log_loss: np.ndarray, start=None) -> np.ndarray:
    """Least squares of log(l_inf + a x^-alpha) - log L over l_inf in [0, min L), a > 0,
    alpha in [0, 10]: from `start` (a bootstrap replicate starts at the best fit), else from
    a few exponents, as the surface has local minima."""
    top = math.exp(log_loss.min())
    lower, upper = [0.0, -50.0, 0.0], [top * (1 - 1e-9), 50.0, 10.0]

    def residuals(p):
        return np.log(p[0] + np.exp(p[1]) * x ** -p[2]) - log_loss

    def jacobian(p):
        term = np.exp(p[1]) * x ** -p[2]
        return np.stack([np.ones_like(x), term, -term * np.log(x)], axis=1) / (p[0] + term)[:, None]

    if start is not None:
        starts = [[start[0], math.log(start[1]), start[2]]]
    else:
        level = math.log(max(math.exp(log_loss.mean()) - 0.5 * top, 1e-6))
        starts = [[0.5 * top, level, alpha] for alpha in (0.25, 1.0, 3.0)]
    fits = [optimize.least_squares(residuals, np.clip(s, lower, upper), jac=jacobian,
                                   bounds=(lower, upper)) for s in starts]
    p = min(fits, key=lambda f: f.cost).x
    l_inf = p[0] if p[0] > 1e-9 * top else 0.0  # at its bound, up to the solver's tolerance
    return np.array([l_inf, math.exp(p[1]), p[2]])


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
    """N*(f) = c f^-beta over the frequencies with a measured N*; beta's 95% interval from
    the regression's standard error (None with only two frequencies)."""

    c: float
    beta: float
    beta_interval: tuple[float, float] | None
    frequencies: int

    def __call__(self, frequency) -> np.ndarray:
        return self.c * np.asarray(frequency, dtype=float) ** -self.beta


def fit_frequency_law(frequencies, widths) -> FrequencyLaw | None:
    """Least squares of log N* against log f; None with fewer than two frequencies."""
    f, n = np.asarray(frequencies, dtype=float), np.asarray(widths, dtype=float)
    if len(np.unique(f)) < 2:
        return None
    line = stats.linregress(np.log(f), np.log(n))
    interval = None
    if f.size > 2:
        half = stats.t.ppf(0.5 + LEVEL / 2, f.size - 2) * line.stderr
        interval = (float(-line.slope - half), float(-line.slope + half))
    return FrequencyLaw(c=float(math.exp(line.intercept)), beta=float(-line.slope),
                        beta_interval=interval, frequencies=int(f.size))
