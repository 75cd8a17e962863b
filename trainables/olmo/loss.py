"""The next-token loss without the whole micro-batch's float32 logits (a fused linear
cross-entropy): the output projection and the cross-entropy taken `CHUNK` tokens at a time.

At seq 2048 and OLMo's 50,304-token vocabulary, `F.cross_entropy(logits.float())` holds 400 MB
of float32 logits per sequence, again as log-softmax for the backward and again as its
gradient: the largest tensors of a small model's step. Here the forward goes through the
tokens a chunk at a time and computes, for each chunk, its loss and at once its gradients
(d loss / d logits = softmax - one-hot), keeping only the gradients of the hidden states
(tokens x d) and of the output weight (V x d); the backward scales them by the incoming
gradient. One chunk's logits are the most that ever exists (CHUNK x V float32: 206 MB at
V = 50,304), the FLOPs are the plain loss's (no recomputation), and the numbers are the plain
loss's: under autocast the logits and both gradient products are taken in the autocast
dtype, as autocast's linear layer takes them, the softmax in float32. (Eagerly the softmax
runs in place of the chunk's logits, so one chunk-sized float32 tensor is the peak.)
"""

from __future__ import annotations

import torch

CHUNK = 1024  # tokens per chunk: a chunk's float32 logits are CHUNK x vocabulary x 4 bytes


def lm_loss(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
            chunk: int = CHUNK, step=None) -> torch.Tensor:
    """The summed cross-entropy of `targets` (...,) under logits hidden @ weight.T, with
    hidden (..., d) and weight (V, d); float32, differentiable in `hidden` and `weight`.
    `step` is the per-chunk computation (`chunk_step`, or a compiled copy of it)."""
    device = hidden.device.type
    dtype = (torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device)
             else torch.promote_types(hidden.dtype, weight.dtype))
    return _FusedLinearCrossEntropy.apply(hidden.flatten(0, -2), weight, targets.flatten(),
                                          dtype, chunk, step or chunk_step)


def chunk_step(hidden: torch.Tensor, weight: torch.Tensor,
               targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One chunk (hidden (n, d) and weight (V, d) in the compute dtype): its summed loss
    (float32) and the gradients of that sum for the chunk's hidden states and the weight."""
    logits = (hidden @ weight.T).float()
    target = logits.gather(1, targets[:, None]).squeeze(1)
    top = logits.amax(-1, keepdim=True)
    # In place of the logits (logsumexp would hold a second chunk-sized temporary):
    # exp(logits - max), then the softmax.
    grad = logits.sub_(top).exp_()
    total = grad.sum(-1, keepdim=True)
    loss = (top + total.log() - target[:, None]).sum()
    grad.div_(total)
    grad.scatter_add_(1, targets[:, None], torch.full_like(total, -1.0))
    grad = grad.to(hidden.dtype)
    return loss, grad @ weight, grad.T @ hidden


class _FusedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, dtype, chunk, step):
        device = hidden.device.type
        with torch.autocast(device, enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
            grad_hidden = torch.empty_like(hidden)
            grad_weight = torch.zeros_like(weight, dtype=torch.float32)
            for lo in range(0, len(h), chunk):
                part = slice(lo, lo + chunk)
                chunk_loss, dh, dw = step(h[part], w, targets[part])
                loss += chunk_loss
                grad_hidden[part] = dh
                grad_weight += dw
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None, None, None
