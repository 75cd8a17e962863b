"""What the width-N synthetic student can at best learn, in closed form.

With the best decoders for U the frequency-weighted population loss is 1 - tr(U^T M U), where
M = sum_k pi_k C_k. M's eigenvalues are the utilities pi_k * lambda_{k,j} (the task subspaces are
orthogonal), so the width-N optimum spans the N features of largest utility. Everything here is
numpy on arrays of K x r numbers; training code and tests compare against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def task_frequencies(tasks: int, zipf: float, frequency: float) -> np.ndarray:
    """pi_k: background tasks Zipf-distributed over 1 - f, the last (rare) task at f."""
    background = np.arange(1, tasks, dtype=np.float64) ** -zipf
    background *= (1.0 - frequency) / background.sum()
    return np.append(background, frequency)


def spectrum(features: int, decay: float) -> np.ndarray:
    """lambda_j proportional to j^-decay, normalised to sum 1 (so tr C_k = 1)."""
    lam = np.arange(1, features + 1, dtype=np.float64) ** -decay
    return lam / lam.sum()


@dataclass(frozen=True)
class Spectrum:
    """The task frequencies and feature spectra of one synthetic problem."""

    pi: np.ndarray  # (K,)
    lam: np.ndarray  # (K, r)

    @classmethod
    def build(
        cls,
        tasks: int,
        features_per_task: int,
        zipf: float,
        background_decay: float,
        rare_decay: float,
        frequency: float,
    ) -> "Spectrum":
        decays = [background_decay] * (tasks - 1) + [rare_decay]
        lam = np.stack([spectrum(features_per_task, a) for a in decays])
        return cls(pi=task_frequencies(tasks, zipf, frequency), lam=lam)

    @property
    def dim(self) -> int:
        return self.lam.size

    @property
    def utilities(self) -> np.ndarray:
        return self.pi[:, None] * self.lam

    def ranks(self) -> np.ndarray:
        """Rank (0 = largest) of every feature's utility; ties go to the lower (task, feature)."""
        order = np.argsort(-self.utilities.ravel(), kind="stable")
        ranks = np.empty_like(order)
        ranks[order] = np.arange(order.size)
        return ranks.reshape(self.lam.shape)


@dataclass(frozen=True)
class Optimum:
    """The width-N optimum: per-task losses under the best U and their pi-weighted sum."""

    width: int
    task_losses: np.ndarray  # (K,)
    loss: float

    @property
    def rare_loss(self) -> float:
        return float(self.task_losses[-1])


def optimum(spec: Spectrum, width: int) -> Optimum:
    kept = spec.ranks() < width
    task_losses = 1.0 - (spec.lam * kept).sum(axis=1)
    return Optimum(width=width, task_losses=task_losses, loss=float(spec.pi @ task_losses))


def critical_width(spec: Spectrum, threshold: float) -> int:
    """Smallest width whose optimum has rare loss <= threshold.

    The rare task needs its m largest features, m the fewest whose lambdas sum to
    1 - threshold; the optimum holds them from the width equal to the rank of the m-th.
    """
    needed = np.cumsum(spec.lam[-1]) >= 1.0 - threshold - 1e-12
    m = int(np.argmax(needed))
    return int(spec.ranks()[-1, m]) + 1


def default_lr(spec: Spectrum, mode: str = "population", batch_size: int = 1,
               width: int = 1) -> float:
    """Gradient-descent step from the spectrum: the decoder of task k has curvature 2 pi_k, so
    0.5 / max pi takes the most frequent decoder to its optimum in one step and keeps all
    others stable, whatever the frequencies. In sampled mode one sample moves its decoder
    with curvature ~2N/B and the encoder with ~2 d lambda_max / B: single-sample steps are
    kept as tame as the expected ones."""
    lr = 0.5 / float(spec.pi.max())
    if mode == "sampled":
        lr = min(lr, 0.5 * batch_size / (width + spec.dim * float(spec.lam.max())))
    return lr


def steps_to_converge(spec: Spectrum, width: int, lr: float, threshold: float,
                      rtol: float = 0.01) -> int:
    """Population steps after which the loss is within `rtol` of the width's optimum and the
    rare task's loss on the same side of `threshold` as the optimum's (`rare/learned` settled).

    Like Oja's subspace rule, span(U) settles a feature at a rate set by its utility gap to the
    boundary: a kept feature's to the best one left out (u - u_{N+1}), a left-out one's to
    the worst one kept (u_N - u). Its overlap changes like exp(4 lr gap t) from ~N/d. A
    feature not yet settled costs at most its gap in loss (its lambda in rare loss), so the
    closest features may stay unsettled while those costs sum to under half of each margin:
    rtol of the loss, and the rare optimum's distance to the threshold (at least 0.01). The
    smallest gap among the rest sets the time, with a safety factor of 2.
    """
    d = spec.dim
    if width >= d:
        return 1  # U is square orthogonal: everything is represented from the start
    util, kept = spec.utilities, spec.ranks() < width
    ordered = np.sort(util.ravel())[::-1]
    gaps = np.where(kept, util - ordered[width], ordered[width - 1] - util)
    rare_margin = max(abs(optimum(spec, width).rare_loss - threshold), 0.01)
    slowest = min(
        _smallest_needed_gap(gaps[kept], gaps[kept], 0.5 * rtol * ordered[width:].sum()),
        _smallest_needed_gap(gaps[-1], spec.lam[-1], 0.5 * rare_margin),
    )
    if not np.isfinite(slowest) or slowest <= 0:
        return 1  # nothing needs settling, or the kept set ties with what is left out
    growth = math.log(100.0 * d / width) / (4.0 * lr * slowest)
    return int(math.ceil(2.0 * growth))


def _smallest_needed_gap(gaps: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """Smallest gap left once the closest features, costing at most `budget`, are skipped."""
    order = np.argsort(gaps, kind="stable")
    skippable = int(np.searchsorted(np.cumsum(costs[order]), budget, side="right"))
    return float(gaps[order][skippable]) if skippable < len(order) else math.inf
