"""The synthetic student's gradients in closed form, in the tasks' eigenbasis (see `student`).

Plain functions of tensors batched over a pack's P members: V = Q^T U (P, d, N), the stacked
decoders D (P, d, N) (row (k, j) is D_k's row j), sqrt(lambda) per row (P, d, 1). They are what
training applies and what the interference measures compare (`measures`); the tests check
both against autograd on the full loss.
"""

from __future__ import annotations

import torch


def expected_gradients(V, D, sqrt_lam, weights) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact gradients in (V, D) of sum_k w_k E||D_k U^T x - W_k x||^2 over x ~ N(0, I).

    With U^T U = I: dL/dD_k = 2 w_k (D_k - W_k U) and dL/dU = 2 sum_k w_k (U D_k^T D_k -
    W_k^T D_k). With W = diag(sqrt lambda) Q^T and V = Q^T U: W U = sqrt(lambda) V and
    Q^T W^T D = sqrt(lambda) D. `weights` (P, d, 1) is each row's task weight (pi_k, or a
    mask of some tasks' rows times pi_k for their part of the gradient).
    """
    wD = weights * D
    grad_D = 2 * (wD - weights * sqrt_lam * V)
    grad_V = 2 * (V @ (D.mT @ wD) - sqrt_lam * wD)
    return grad_V, grad_D


def sample_gradients(V, D, sqrt_lam, Z, tasks, features_per_task: int,
                     keep: torch.Tensor | None = None):
    """Gradients in (V, D) of the mean squared error over samples x = Q z of given tasks, and
    with `keep` (P, B) bool the part of the encoder gradient that those samples make (their
    terms, still divided by the whole batch; None without).

    Z (P, B, d), tasks (P, B). W_k x is task k's slice of sqrt(lambda) z and U^T x = V^T z;
    the residuals are masked to each sample's own task rows, which makes the decoder
    gradient of every task one matrix product.
    """
    B, r = Z.shape[1], features_per_task
    H = Z @ V  # (P, B, N) encoder outputs
    own_rows = torch.nn.functional.one_hot(tasks, V.shape[1] // r).to(Z.dtype)
    mask = own_rows.repeat_interleave(r, dim=2)  # (P, B, d)
    E = (H @ D.mT - Z * sqrt_lam.mT) * mask  # residuals in the sample's task rows only
    ED = E @ D  # (P, B, N): each sample's pull on the encoder, before x
    part = None if keep is None else (2.0 / B) * Z.mT @ (ED * keep.unsqueeze(-1).to(Z.dtype))
    return (2.0 / B) * Z.mT @ ED, (2.0 / B) * E.mT @ H, part


def orthonormalise(U: torch.Tensor) -> torch.Tensor:
    """QR with the signs fixed (diag R > 0): the Gram-Schmidt retraction, continuous in U."""
    q, r = torch.linalg.qr(U)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
