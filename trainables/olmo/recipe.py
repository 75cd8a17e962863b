"""OLMo's ladder recipe (CONTRACTS 6): each default a pure function of the size, with its source.

From ai2-olmo's `scripts/ladder.py` (the runs the paper's sizes come from), which takes N from
the size's name (`parse_size("20M")` = 2e7); OLMo-core's ladder uses the counted non-embedding
parameters instead, at most 18% apart (1B), a 6% difference in lr:
- peak lr 0.0047 (N / 108M)^(-1/3) and global batch 160 (N / 108M)^(2/3) sequences of 2048
  tokens, rounded to a multiple of 32 sequences and scaled by 2048 / seq_len so a batch keeps
  its tokens at any length (Porian et al. 2024, "Resolving discrepancies in compute-optimal
  scaling");
- warm-up of N tokens; cosine decay to 1% of the peak (`alpha_f=0.01`); length 20 N tokens
  ("1xC", Chinchilla);
- AdamW betas (0.9, 0.95), eps 1e-8, weight decay 0.05 on every parameter
  (`decay_norm_and_bias`, `decay_embeddings`); gradient clipping at norm 1.0.
Every one of them is a field of the spec's `olmo` section (`trainable.OlmoSection`).
"""

from __future__ import annotations

import math

from trainables.olmo.ladder import target

REFERENCE = 108e6  # the N at which the fitted lr and batch rules are anchored
PEAK_LR = 0.0047
BATCH_SEQUENCES = 160  # at N = REFERENCE and 2048-token sequences
BATCH_MULTIPLE = 32  # OLMo's 8 GPUs per node x micro-batch 4
REFERENCE_SEQ_LEN = 2048
FINAL_LR = 0.01  # cosine ends at this share of the peak
TOKENS_PER_PARAM = 20.0
WEIGHT_DECAY = 0.05
BETAS = (0.9, 0.95)
EPS = 1e-8
CLIP = 1.0
WARMUP_CAP = 0.1  # a short run's warm-up: at most this share of its steps


def peak_lr(width: str) -> float:
    return PEAK_LR * (target(width) / REFERENCE) ** (-1 / 3)


def batch_size(width: str, seq_len: int) -> int:
    """Sequences per global batch: OLMo's tokens per batch, at least one multiple of 32."""
    sequences = (BATCH_SEQUENCES * (target(width) / REFERENCE) ** (2 / 3)
                 * REFERENCE_SEQ_LEN / seq_len)
    return max(1, round(sequences / BATCH_MULTIPLE)) * BATCH_MULTIPLE


def steps(width: str, tokens_per_batch: int, tokens_per_param: float) -> int:
    """Steps that train `tokens_per_param` tokens per parameter (N from the name)."""
    return max(1, math.ceil(tokens_per_param * target(width) / tokens_per_batch))


def warmup_steps(width: str, tokens_per_batch: int, total_steps: int) -> int:
    """N tokens of warm-up, but at most WARMUP_CAP of the steps: a run of fewer than
    1 / WARMUP_CAP tokens per parameter (a CPU test) still reaches its peak."""
    return min(round(target(width) / tokens_per_batch), int(WARMUP_CAP * total_steps))


def lr_factor(step: int, warmup: int, total_steps: int, final: float) -> float:
    """Linear warm-up to the peak, then cosine down to `final` of it at `total_steps`."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
