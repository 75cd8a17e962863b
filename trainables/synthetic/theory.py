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
    """Smallest width whose optimum has rare loss <= threshold (the "learned" reading of the
    paper's critical width: the width at which the rare task counts as learned).

    The rare task needs its m largest features, m the fewest whose lambdas sum to
    1 - threshold; the optimum holds them from the width equal to the rank of the m-th.
    """
    needed = np.cumsum(spec.lam[-1]) >= 1.0 - threshold - 1e-12
    m = int(np.argmax(needed))
    return int(spec.ranks()[-1, m]) + 1


def critical_width_first(spec: Spectrum) -> int:
    """Smallest width whose optimum keeps the rare task's leading feature: 1 + the number of
    utilities ranked above pi_r lambda_{r,1} (ties go to the background). The reading of
    Proposition 6 in [T3] (PAPER.md 2.2): the rare direction is stable once pi_r lambda_{r,1}
    is at least the N-th largest background eigenvalue."""
    return int(spec.ranks()[-1, leading_feature(spec)]) + 1


def leading_feature(spec: Spectrum) -> int:
    """Index j of the rare task's largest lambda (the first of equals)."""
    return int(np.argmax(spec.lam[-1]))


def default_lr(spec: Spectrum, mode: str = "population", batch_size: int = 1,
               block: int = 0) -> float:
    """The step size every width of a sweep shares: 1 / the largest curvature any width N <= d
    can meet, which is half the step at which gradient descent diverges.

    Population: the decoder of task k has curvature 2 pi_k, so 0.5 / max pi takes the most
    frequent decoder to its optimum in one step and keeps every other one stable.

    Sampled: a batch with n samples of task k moves its decoder with curvature
    (2/B) lambda_max(H_k^T H_k), H_k the n x N encoder outputs, whose top eigenvalue is about
    (sqrt n + sqrt N)^2 (Marchenko-Pastur's edge); the encoder sees at most
    (2/B) lambda_{max} (sqrt B + sqrt d)^2. Both are bounded with N = d, so the rule holds for
    every width. n is the most samples of one task a batch holds: a background task's share
    plus three standard deviations, and with `{block: n}` min(n, B) rare samples at once
    (a block that fills whole batches gets a step that keeps its decoder stable).
    """
    lr = 0.5 / float(spec.pi.max())
    if mode != "sampled":
        return lr
    B, d = batch_size, spec.dim
    share = spec.pi.copy()
    if block:
        share[:-1] /= share[:-1].sum()  # the background fills what blocks leave
        share[-1] = 0.0
    n = np.minimum(B, share * B + 3.0 * np.sqrt(share * (1.0 - share) * B))
    most = max(float(n.max()), float(min(block, B)))
    decoder = (math.sqrt(most) + math.sqrt(d)) ** 2
    encoder = float(spec.lam.max()) * (math.sqrt(B) + math.sqrt(d)) ** 2
    return min(lr, B / (2.0 * max(decoder, encoder)))


def steps_to_converge(spec: Spectrum, width: int, lr: float, threshold: float,
                      rtol: float = 0.01) -> int:
    """Population steps after which the trained model's loss is within `rtol` of the width's
    optimum and the rare task's loss on the same side of `threshold` as the optimum's
    (`rare/learned` settled): the time scale of a grid point, from which its step cap and
    logging interval are derived (its run stops when it has converged, `stopping`).

    Encoder: like Oja's subspace rule, span(U) settles a feature at a rate set by its utility
    gap to the boundary: a kept feature's to the best one left out (u - u_{N+1}), a left-out
    one's to the worst one kept (u_N - u). Its overlap changes like exp(4 lr gap t) from ~N/d.
    A feature not yet settled costs at most its gap in loss (its lambda in rare loss), so the
    closest features may stay unsettled while those costs sum to under half of each margin:
    rtol of the loss, and the rare optimum's distance to the threshold (at least 0.01). The
    smallest gap among the rest sets the time. Decoders: task k's starts at zero and its
    error decays like (1 - 2 lr pi_k)^(2t), so the rarest task's decoder needs
    log(1/rtol) / (4 lr min pi) steps; at N >= d this is all there is to train. The larger of
    the two, with a safety factor of 2.
    """
    decoders = math.log(1.0 / rtol) / (4.0 * lr * float(spec.pi.min()))
    d = spec.dim
    if width >= d:  # U is square orthogonal: every feature is represented from the start
        return int(math.ceil(2.0 * decoders))
    util, kept = spec.utilities, spec.ranks() < width
    ordered = np.sort(util.ravel())[::-1]
    gaps = np.where(kept, util - ordered[width], ordered[width - 1] - util)
    rare_margin = max(abs(optimum(spec, width).rare_loss - threshold), 0.01)
    slowest = min(
        _smallest_needed_gap(gaps[kept], gaps[kept], 0.5 * rtol * ordered[width:].sum()),
        _smallest_needed_gap(gaps[-1], spec.lam[-1], 0.5 * rare_margin),
    )
    encoder = 0.0
    if np.isfinite(slowest) and slowest > 0:  # else nothing needs settling, or a tie
        encoder = math.log(100.0 * d / width) / (4.0 * lr * slowest)
    return int(math.ceil(2.0 * max(encoder, decoders)))


def _smallest_needed_gap(gaps: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """Smallest gap left once the closest features, costing at most `budget`, are skipped."""
    order = np.argsort(gaps, kind="stable")
    skippable = int(np.searchsorted(np.cumsum(costs[order]), budget, side="right"))
    return float(gaps[order][skippable]) if skippable < len(order) else math.inf
