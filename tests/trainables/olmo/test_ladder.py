"""The model ladder: OLMo's own shapes, each counted by the ai2-olmo model itself."""

from __future__ import annotations

import pytest
import torch

from injection.tokenizer import load
from trainables.olmo.ladder import LADDER, model_config, target

# CONTRACTS 6 (OLMo's scripts/ladder.py): d_model, heads, layers; and OLMo's count of each
# (num_params(include_embedding=False), default tokenizer) as PAPER.md states it.
SHAPES = {"4M": (64, 8, 8, 3_744_832), "20M": (192, 8, 16, 19_101_888),
          "300M": (1024, 16, 16, 320e6), "1B": (2048, 16, 16, 1.18e9), "4B": (3840, 30, 16, 4e9)}


@pytest.mark.parametrize("name", list(LADDER))
def test_each_size_has_olmos_shape_and_olmos_count(name):
    from olmo import OLMo

    tok = load()
    model = OLMo(model_config(name, tok, seq_len=128, init_device="meta"))  # no memory
    config, (d_model, heads, layers, stated) = model.config, SHAPES[name]
    assert (config.d_model, config.n_heads, config.n_layers) == (d_model, heads, layers)
    assert (config.mlp_ratio, config.weight_tying, config.include_bias) == (8, False, False)
    counted = model.num_params(include_embedding=False)
    assert counted == LADDER[name].non_embedding_params(tok.embedding_size)
    assert model.num_params() == LADDER[name].params(tok.embedding_size)
    assert counted == pytest.approx(stated, rel=0.01), f"{name}: {counted:,}"
    assert abs(counted / target(name) - 1) <= 0.18  # OLMo's names: 1B counts 1.18B
    assert LADDER[name].neurons == model.transformer.blocks[0].ff_out.in_features


def test_depth_is_8_for_4M_and_16_for_the_rest_and_width_grows():
    rungs = list(LADDER.values())
    assert [r.depth for r in rungs] == [8, 16, 16, 16, 16]
    assert all(a.d_model < b.d_model for a, b in zip(rungs, rungs[1:]))


def test_vocabulary_comes_from_the_tokenizer_padded_as_olmo_does():
    config = model_config("4M", load("allenai_dolma2"), seq_len=64)
    assert (config.vocab_size, config.embedding_size) == (100278, 100352)
    assert (config.eos_token_id, config.pad_token_id) == (100257, 100277)
    config = model_config("4M", load(), seq_len=64)
    assert (config.vocab_size, config.embedding_size, config.eos_token_id) == (50280, 50304, 50279)


def test_the_4M_model_trains_a_step_on_cpu():
    from olmo import OLMo

    torch.manual_seed(0)
    model = OLMo(model_config("4M", load(), seq_len=32, init_device="cpu"))
    tokens = torch.randint(0, 50280, (2, 32))
    loss = torch.nn.functional.cross_entropy(model(tokens).logits[:, :-1].flatten(0, 1),
                                             tokens[:, 1:].flatten())
    loss.backward()
    assert torch.isfinite(loss) and model.transformer.blocks[0].att_proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["5M", "xl"])
def test_unknown_sizes_are_refused(name):
    with pytest.raises(ValueError, match="model ladder"):
        model_config(name, load(), seq_len=64)
