"""What the synthetic student logs (CONTRACTS 4-5), as plain functions of a pack's state.

All in the tasks' eigenbasis (`student`): V = Q^T U, so row (k, j) of V is U's overlap with
task k's feature j, and inner products and norms of encoder gradients are those in input
coordinates (Q is orthogonal). Each returns (P,) float64 tensors, one value per member.

- Losses (tr C_k = 1, so each task's loss is a share of its target's variance):
  representation loss 1 - ||W_k U||^2 (under the best decoder for U) and trained loss
  ||D_k U^T - W_k||_F^2 = ||D_k - W_k U||^2 + (1 - ||W_k U||^2) (under the decoder D_k the
  student has): the second is the first plus the decoder's own error.
- Interference (the paper's Figure 4/9 protocol): cosines of the step's encoder gradient g,
  its rare-task part and the rest with G_r, the rare task's expected encoder gradient; and
  the norm of the background tasks' expected encoder gradient. All on tangent vectors
  (I - U U^T) x: only that part of a gradient moves span(U), the re-orthonormalisation
  discards the rest (CONTRACTS 5, rev 3).
- The rare alignment's push and pull: the first-order change of ||P_U b||^2 in a step, split
  by the part of the gradient it comes from (the rare samples', the rest's).
"""

from __future__ import annotations

import torch

LEARNED_OVERLAP = 0.5  # a feature counts as learned once ||P_U b||^2 reaches this


def task_losses(V, D, sqrt_lam, tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per task (P, K): the representation loss and the trained model's loss."""
    P = V.shape[0]
    WU = sqrt_lam.double() * V.double()  # W_k U, stacked by rows (k, j)
    captured = WU.square().view(P, tasks, -1).sum(2)
    decoder_error = (D.double() - WU).square().view(P, tasks, -1).sum(2)
    representation = 1.0 - captured
    return representation, representation + decoder_error


def feature_overlaps(V) -> torch.Tensor:
    """||P_U b_kj||^2 for every feature (P, d): how much of it the encoder holds."""
    return V.double().square().sum(-1)


def state_metrics(V, D, sqrt_lam, pi, leading: torch.Tensor,
                  threshold: float) -> dict[str, torch.Tensor]:
    """Everything that is a function of the current state alone. `leading` (P,) is the row of
    each member's rare leading feature (its largest lambda)."""
    K = pi.shape[1]
    representation, trained = task_losses(V, D, sqrt_lam, K)
    pi = pi.double()
    rare = representation[:, -1]
    overlap = feature_overlaps(V)
    return {
        "loss": (pi * representation).sum(1),
        "model_loss": (pi * trained).sum(1),
        **{f"task_loss/{k}": representation[:, k] for k in range(K)},
        "rare/loss": rare,
        "rare/model_loss": trained[:, -1],
        "rare/alignment": overlap.gather(1, leading.view(-1, 1)).squeeze(1),
        "rare/learned": (rare <= threshold).double(),
    }


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per member cosine of two (P, ...) tensors; NaN where either is zero (undefined: e.g.
    every gradient at the first step, whose decoders start at zero)."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    norms = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(norms > 0, (a * b).sum(1) / norms.clamp_min(1e-300),
                       torch.full_like(norms, float("nan")))


def tangent(V, x) -> torch.Tensor:
    """(I - V V^T) x: the part of an encoder gradient x (P, d, N) that moves span(V)."""
    return x - V @ (V.mT @ x)


def interference(V, g, g_task, rare, background,
                 injected: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """CONTRACTS 5's interference measures of one step, at the state V it was computed at.

    g: the encoder gradient the step applied; g_task: its part from the rare samples (their
    terms of the batch's gradient); rare: G_r, the rare task's expected encoder gradient; background: the background tasks'
    expected encoder gradient; injected (P,): rare samples in the step's batch, None in
    population mode, which logs the norm alone (there g_task is G_r's own term, so cos_task
    is 1, and cos_nontask the restoring force of the stationary point: -1 at or above N*).
    `cos_task` is NaN at a sampled step without rare samples (not logged there).
    """
    norm = tangent(V, background).flatten(1).double().norm(dim=1)
    if injected is None:
        return {"interference/frequent_norm": norm}
    g, g_task, rare = tangent(V, g), tangent(V, g_task), tangent(V, rare)
    cos_task = cosine(g_task, rare)
    return {
        "interference/cos_batch": cosine(g, rare),
        "interference/cos_task": torch.where(injected > 0, cos_task,
                                             torch.full_like(cos_task, float("nan"))),
        "interference/cos_nontask": cosine(g - g_task, rare),
        "interference/frequent_norm": norm,
        "rare/injected": injected.double(),
    }


def alignment_split(V, lr, g, g_task, leading: torch.Tensor) -> dict[str, torch.Tensor]:
    """`rare/alignment_push` and `rare/alignment_pull`: the first-order change of the rare
    alignment a = ||P_U b||^2 in the step V <- qf(V - lr g), from g_task (the rare samples'
    part; population: the rare task's expected term) and from g - g_task (the rest's). They sum to the step's first-order change.

    The retraction moves V by -lr (I - V V^T) g plus V times a skew matrix, which leaves
    span(V) unchanged, so da = 2 b^T dV V^T b = -2 lr b^T (I - V V^T) g V^T b: linear in g.
    `leading` (P,) is the row of b; `lr` (P, 1, 1).
    """
    rows = leading.view(-1, 1, 1).expand(-1, 1, V.shape[-1])
    held = V.gather(1, rows).double()  # (P, 1, N): b^T V

    def change(x):
        moved = tangent(V, x).gather(1, rows).double()  # b^T (I - V V^T) x
        return -2.0 * lr.double().view(-1) * (moved * held).sum((1, 2))

    return {"rare/alignment_push": change(g_task), "rare/alignment_pull": change(g - g_task)}
