"""OLMo's ladder recipe (CONTRACTS 6): each default a pure function of the size, with its source.

OLMo's (ai2-olmo `scripts/ladder.py`, the fits of Porian et al. 2024, "Resolving discrepancies
in compute-optimal scaling"), with N the size the formulas take (`size`):
- peak lr 0.0047 (N / 108M)^(-1/3);
- global batch 160 (N / 108M)^(2/3) sequences of 2048 tokens, rounded to a multiple of 32
  sequences (8 GPUs x micro-batch 4);
- warm-up of N tokens; cosine decay to 1% of the peak (`alpha_f=0.01`); length 20 N tokens
  ("1xC", Chinchilla);
- AdamW betas (0.9, 0.95), eps 1e-8, weight decay 0.05 on every parameter
  (`decay_norm_and_bias`, `decay_embeddings`); gradient clipping at norm 1.0.
N: `scripts/ladder.py` parses the name (`parse_size("300M")` = 3e8) and has no rung below
150M. OLMo's 4M and 20M rungs are DataDecide's (Magnusson et al. 2025; allenai/DataDecide
`constants_models.py`), whose runs take the counted non-embedding sizes 3,744,832 and
19,101,888: their lengths are 100 N tokens with those N (4M: 5,725 steps x 32 x 2048 = 375M
tokens), their batches 32 and 64 sequences; 300M and 1B there are 100 x the name's tokens
(45,787 x 320 x 2048 = 30.0B). The lr of those runs is not in the constants: ours takes the
same N in every formula.

Ours, not OLMo's:
- the batch at another sequence length: OLMo's tokens (whole 2048-token sequences, rounded
  as above) as rows of `seq_len`, so 4M's batch is 65,536 tokens at any length (`scripts/
  ladder.py` instead scales the sequences by 2048 / seq_len before rounding: 36,864 tokens at
  128);
- a short run's warm-up is at most a tenth of its steps (`WARMUP_CAP`);
- 4B (no OLMo rung): N from its name.
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
COUNTED = {"4M": 3_744_832, "20M": 19_101_888}  # DataDecide's N for OLMo's small rungs
FINAL_LR = 0.01  # cosine ends at this share of the peak
TOKENS_PER_PARAM = 20.0
WEIGHT_DECAY = 0.05
BETAS = (0.9, 0.95)
EPS = 1e-8
CLIP = 1.0
WARMUP_CAP = 0.1  # a short run's warm-up: at most this share of its steps


def size(width: str) -> int:
    """N in OLMo's formulas: the counted size for 4M and 20M, else the name's."""
    return COUNTED.get(width) or target(width)


def peak_lr(width: str) -> float:
    return PEAK_LR * (size(width) / REFERENCE) ** (-1 / 3)


def batch_tokens(width: str) -> int:
    """OLMo's tokens per global batch: whole 2048-token sequences, a multiple of 32 of them."""
    sequences = BATCH_SEQUENCES * (size(width) / REFERENCE) ** (2 / 3)
    return max(1, round(sequences / BATCH_MULTIPLE)) * BATCH_MULTIPLE * REFERENCE_SEQ_LEN


def batch_size(width: str, seq_len: int) -> int:
    """Rows of `seq_len` per global batch holding OLMo's tokens (the nearest whole row)."""
    return max(1, round(batch_tokens(width) / seq_len))


def steps(width: str, tokens_per_batch: int, tokens_per_param: float) -> int:
    """Steps that train `tokens_per_param` tokens per parameter (N = `size`)."""
    return max(1, math.ceil(tokens_per_param * size(width) / tokens_per_batch))


def warmup_steps(width: str, tokens_per_batch: int, total_steps: int) -> int:
    """N tokens of warm-up, but at most WARMUP_CAP of the steps: a run of fewer than
    1 / WARMUP_CAP tokens per parameter (a CPU test) still reaches its peak."""
    return min(round(size(width) / tokens_per_batch), int(WARMUP_CAP * total_steps))


def lr_factor(step: int, warmup: int, total_steps: int, final: float) -> float:
    """Linear warm-up to the peak, then cosine down to `final` of it at `total_steps`."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
