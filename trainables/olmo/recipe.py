"""The OLMo training recipe: learning rate and its schedule, from the model's size. Small pure
functions of the parameter count, each with its source (OLMo-core's ladder)."""

from __future__ import annotations

import math

from trainables.olmo.ladder import LADDER

WARMUP_SHARE = 0.05  # default warm-up: this share of the steps (OLMo's ladder: ~1 token/param)
FINAL_LR = 0.1  # cosine decays to this share of the peak (OLMo's configs: alpha_f = 0.1)
ADAMW = dict(betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)  # OLMo's configs
CLIP = 1.0  # OLMo's max_grad_norm


def ladder_lr(width: str) -> float:
    """Peak lr of a size: 0.0047 (N / 108M)^(-1/3), OLMo-core's model ladder (after Porian et
    al. 2024), N the non-embedding parameters."""
    return 0.0047 * (LADDER[width].non_embedding_params / 108e6) ** (-1 / 3)


def lr_factor(step: int, warmup: int, steps: int) -> float:
    """Linear warm-up to the peak, then cosine down to FINAL_LR of it at `steps`."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return FINAL_LR + (1 - FINAL_LR) * 0.5 * (1 + math.cos(math.pi * progress))
