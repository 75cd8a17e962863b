"""The OLMo model ladder (CONTRACTS 6): OLMo's own shapes, named as OLMo counts them.

Every rung is the block of allenai/OLMo's `scripts/ladder.py` (pre-norm RMSNorm, RoPE, SwiGLU
with mlp_ratio 8, no biases, untied output projection); the paper's "4M parameter model has
depth 8 and the rest have depth 16". 300M and 1B are `scripts/ladder.py`'s own configs; 4M and
20M are the small rungs OLMo's ladder was extended with for DataDecide (allenai/DataDecide
`constants_models.py`: d 64, 8 heads, 8 layers; d 192, 8 heads, 16 layers). OLMo's ladder has
no 4B: ours keeps depth 16 and picks d_model 3840 (30 heads of 128, OLMo-7B's head size), the
multiple of 128 whose count is nearest 4B (3.97B; 4096 would give 4.49B).

A size's name is what `OLMo.num_params(include_embedding=False)` counts: everything but the
input embedding, so the untied output projection (embedding_size x d_model) is in it. A block
holds 16 d^2 + 2 d parameters: attention 4 d^2 (q, k, v, out), MLP 12 d^2 (d -> 8d SwiGLU ->
4d -> d), two norm weights. With the default tokenizer (embedding 50,304): 4M = 3.74M,
20M = 19.1M, 300M = 320M, 1B = 1.18B, 4B = 3.97B; the names are OLMo's, the counts differ from
them by up to 18% (1B), as in OLMo's ladder.
"""

from __future__ import annotations

from dataclasses import dataclass

from injection.tokenizer import OlmoTokenizer
from tracking.layout import size as target  # the parameter count a ladder name states


@dataclass(frozen=True)
class Rung:
    d_model: int
    heads: int
    depth: int
    mlp_ratio: int = 8

    @property
    def block_params(self) -> int:
        d, hidden = self.d_model, self.mlp_ratio * self.d_model
        return 4 * d * d + d * hidden + (hidden // 2) * d + 2 * d

    @property
    def neurons(self) -> int:
        """MLP neurons per block: SwiGLU halves the d -> mlp_ratio*d projection."""
        return self.mlp_ratio * self.d_model // 2

    def non_embedding_params(self, embedding_size: int) -> int:
        """OLMo's `num_params(include_embedding=False)`: blocks, final norm, output projection."""
        return self.depth * self.block_params + self.d_model + embedding_size * self.d_model

    def params(self, embedding_size: int) -> int:
        """Every parameter, the input embedding included."""
        return self.non_embedding_params(embedding_size) + embedding_size * self.d_model


LADDER = {
    "4M": Rung(d_model=64, heads=8, depth=8),
    "20M": Rung(d_model=192, heads=8, depth=16),
    "300M": Rung(d_model=1024, heads=16, depth=16),
    "1B": Rung(d_model=2048, heads=16, depth=16),
    "4B": Rung(d_model=3840, heads=30, depth=16),
}


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
