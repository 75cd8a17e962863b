"""The OLMo model ladder (CONTRACTS 6): one table of sizes named by non-embedding parameters.

Every rung is ai2-olmo's own ladder block (`scripts/ladder.py`: pre-norm RMSNorm, RoPE,
SwiGLU with mlp_ratio 8, no biases, untied output embedding); the ladder grows d_model, and
with it the MLP (mlp_ratio x d_model) and the heads (head dim 64; 44 at 4M, whose width is not
a multiple of 64), and depth from 8 to 16. A block holds 16 d^2 + 2 d parameters: attention
4 d^2 (q, k, v, out), MLP 12 d^2 (d -> 8d SwiGLU -> 4d -> d), two norm weights.

"Non-embedding" counts what scales with depth and width: the blocks and the final norm, not
the input embedding nor the output projection (Kaplan et al.); both are vocabulary-sized and
would swamp the small rungs (50,304 x 176 = 8.9M each at 4M).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from injection.tokenizer import OlmoTokenizer


@dataclass(frozen=True)
class Rung:
    depth: int
    d_model: int
    heads: int
    mlp_ratio: int = 8

    @property
    def non_embedding_params(self) -> int:
        d, hidden = self.d_model, self.mlp_ratio * self.d_model
        attention = 4 * d * d
        mlp = d * hidden + (hidden // 2) * d  # SwiGLU: d -> hidden (two halves) -> d
        return self.depth * (attention + mlp + 2 * d) + d


LADDER = {
    "4M": Rung(depth=8, d_model=176, heads=4),  # 3.97M
    "20M": Rung(depth=12, d_model=320, heads=5),  # 19.7M
    "300M": Rung(depth=14, d_model=1152, heads=18),  # 297M
    "1B": Rung(depth=16, d_model=2048, heads=32),  # 1.07B
    "4B": Rung(depth=16, d_model=4096, heads=64),  # 4.30B
}
SCALE = {"K": 10**3, "M": 10**6, "B": 10**9}


def target(name: str) -> int:
    """The parameter count a ladder name promises: "20M" -> 20,000,000."""
    match = re.fullmatch(r"(\d+)([KMB])", name)
    if match is None:
        raise ValueError(f"{name!r} is not a size name such as 20M or 1B")
    return int(match[1]) * SCALE[match[2]]


def rung(name: str) -> Rung:
    if name not in LADDER:
        raise ValueError(f"{name!r} is not on the model ladder: {', '.join(LADDER)}")
    return LADDER[name]


def model_config(name: str, tokenizer: OlmoTokenizer, seq_len: int,
                 init_device: str | None = None):
    """The `olmo.config.ModelConfig` of a ladder size, its vocabulary from `tokenizer`
    (padded to a multiple of 128 as OLMo's configs do)."""
    from olmo.config import ActivationType, InitFnType, LayerNormType, ModelConfig

    size = rung(name)
    return ModelConfig(
        d_model=size.d_model, n_heads=size.heads, n_layers=size.depth, mlp_ratio=size.mlp_ratio,
        weight_tying=False, rope=True, alibi=False, flash_attention=False,
        attention_dropout=0.0, residual_dropout=0.0, embedding_dropout=0.0,
        attention_layer_norm=False, include_bias=False, bias_for_layer_norm=False,
        layer_norm_type=LayerNormType.rms, layer_norm_with_affine=True, layer_norm_eps=1e-6,
        activation_type=ActivationType.swiglu, max_sequence_length=seq_len,
        vocab_size=tokenizer.vocab_size, embedding_size=tokenizer.embedding_size,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        init_device=init_device, init_fn=InitFnType.normal, init_std=0.02, init_cutoff_factor=3,
    )
