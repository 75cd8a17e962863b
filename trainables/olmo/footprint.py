"""What an OLMo sweep is on a cluster, before anything starts (`sweeps validate`): GPU-hours
from its training FLOPs at a stated MFU, the checkpoint storage it holds at its peak, the
tokens its trials read, and the grid points that would see their corpus more than
`REPEAT_LIMIT` times (a model that large memorises a corpus it sees that often, and the
paper's "infinite data" no longer holds).

GPU-hours assume `MFU` of an A100's dense bf16 peak (`PEAK_FLOPS`, what OLMo's own runs reach
on A100s is ~40%); the FLOPs per token are 6 x the parameters OLMo counts (all but the input
embedding, a lookup) plus attention's 6 x layers x seq_len x d_model (`flops_per_token`),
measurements and evaluations left out. A checkpoint holds fp32 weights and AdamW's two moments, 12 bytes per
parameter, and Ray Train keeps the newest `CHECKPOINTS_KEPT` of every trial, finished ones too.
"""

from __future__ import annotations

from trainables.contract import CHECKPOINTS_KEPT

PEAK_FLOPS = 312e12  # A100, dense bf16
MFU = 0.40
REPEAT_LIMIT = 10  # corpus epochs above which a point is warned about
CHECKPOINT_BYTES_PER_PARAM = 12  # fp32 weights + AdamW's first and second moments


def flops_per_token(non_embedding_params: int, layers: int, seq_len: int, d_model: int) -> int:
    """Training FLOPs per token: forward and backward of the weights, and attention's scores
    and mixing over the sequence (PaLM's appendix B accounting)."""
    return 6 * non_embedding_params + 6 * layers * seq_len * d_model


def gpu_hours(flops: float, mfu: float = MFU) -> float:
    return flops / (PEAK_FLOPS * mfu) / 3600


def checkpoint_bytes(params: int) -> int:
    return CHECKPOINT_BYTES_PER_PARAM * params


def size_lines(points: list[tuple[str, int, int, int]], corpus_dtype_bytes: int) -> list[str]:
    """`points`: (key, all parameters, training tokens, FLOPs per token) of every point."""
    flops = sum(float(per_token) * tokens for _, _, tokens, per_token in points)
    biggest = max(checkpoint_bytes(params) for _, params, _, _ in points)
    stored = sum(checkpoint_bytes(params) * CHECKPOINTS_KEPT for _, params, _, _ in points)
    tokens = sum(tokens for _, _, tokens, _ in points)
    return [
        "on a cluster (A100 bf16 at {:.0%} MFU, {:.0f} TFLOP/s; FLOPs per token = 6 x params "
        "+ attention):".format(MFU, PEAK_FLOPS * MFU / 1e12),
        f"  compute      {gpu_hours(flops):,.1f} GPU-hours ({flops:.3g} FLOPs)",
        f"  checkpoints  {_bytes(stored)} at the peak: {len(points)} points x {CHECKPOINTS_KEPT}"
        f" kept, the largest {_bytes(biggest)} (fp32 weights + AdamW moments, "
        f"{CHECKPOINT_BYTES_PER_PARAM} bytes/param)",
        f"  data         {tokens:,} tokens read ({_bytes(tokens * corpus_dtype_bytes)} of token"
        " files)",
    ]


def repeat_warnings(points: list[tuple[str, int, int, int]], corpus: str,
                    corpus_tokens: int | None) -> list[str]:
    if corpus_tokens is None:
        return [f"corpus {corpus} is not readable from here: its size, and how often the "
                "grid points repeat it, are checked on the cluster"]
    return [f"{key}: {tokens:,} training tokens repeat the corpus ({corpus_tokens:,} tokens, "
            f"{corpus}) {tokens / corpus_tokens:,.0f} times (more than {REPEAT_LIMIT}); give a "
            "larger corpus (olmo.corpus: `sweeps corpus build` or `adopt`) or fewer steps"
            for key, _, tokens, _ in points if tokens > REPEAT_LIMIT * corpus_tokens]


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError
