"""The model ladder: every size's non-embedding count is within 10% of its name."""

from __future__ import annotations

import pytest
import torch

from injection.tokenizer import load
from trainables.olmo.ladder import LADDER, model_config, target


def non_embedding(model) -> int:
    """ai2-olmo's count without the input embedding, less the untied output projection."""
    output = model.transformer.ff_out.weight.numel()
    return model.num_params(include_embedding=False) - output


@pytest.mark.parametrize("name", list(LADDER))
def test_each_size_builds_and_its_non_embedding_count_matches_its_name(name):
    from olmo import OLMo

    model = OLMo(model_config(name, load(), seq_len=128, init_device="meta"))  # no memory
    count = non_embedding(model)
    assert count == LADDER[name].non_embedding_params
    assert abs(count / target(name) - 1) <= 0.10, f"{name}: {count:,}"
    assert model.config.d_model % model.config.n_heads == 0


def test_depth_runs_from_8_to_16_and_width_grows():
    rungs = list(LADDER.values())
    assert rungs[0].depth == 8 and rungs[-1].depth == 16
    assert all(a.d_model < b.d_model and a.depth <= b.depth for a, b in zip(rungs, rungs[1:]))


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
