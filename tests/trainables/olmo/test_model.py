"""The OLMo trainable's parts without Ray: global batches, the recipe, an exact resume."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest
import torch

from injection import corpus as corpora
from injection.schedule import Schedule
from injection.tasks import build_task
from trainables.olmo import OLMO, OlmoSection, model, recipe
from trainables.olmo.data import GlobalBatches, share
from trainables.points import Point

SEQ_LEN, BATCH = 16, 4


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> corpora.Corpus:
    """A few hundred tokens of real text, tokenised with the default OLMo tokenizer."""
    folder = tmp_path_factory.mktemp("olmo")
    docs = [f"Document {i}: the {i}th river is {i + 3} miles longer than the {i + 1}th one."
            for i in range(40)]
    (folder / "docs.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs))
    return corpora.build(str(folder / "docs.jsonl"), folder / "corpus")


@pytest.fixture(scope="module")
def batches(tiny_corpus) -> GlobalBatches:
    task = build_task("cmp", 0)
    schedule = Schedule(0.03, BATCH, SEQ_LEN, task.train_ids, seed=0)
    return GlobalBatches(tiny_corpus, schedule, task.tokens, seed=0)


@pytest.mark.parametrize("world_size", [2, 4])
def test_every_world_size_trains_the_same_global_batches(batches, world_size):
    for batch in (0, 1, 7, 1000):
        whole = batches.rows(batch, 0, BATCH)
        parts = [batches.rows(batch, *share(BATCH, rank, world_size))
                 for rank in range(world_size)]
        assert torch.equal(torch.cat([p.tokens for p in parts]), whole.tokens)
        assert torch.equal(torch.cat([p.label_mask for p in parts]), whole.label_mask)
        assert int(whole.injected.sum()) == batches.schedule.plan(batch).count


def test_an_epoch_reads_every_chunk_once_and_the_next_in_another_order(batches):
    n = batches.chunks
    first, second = batches.chunk_ids(0, 0, n), batches.chunk_ids(0, n, 2 * n)
    assert sorted(first) == list(range(n)) and sorted(second) == list(range(n))
    assert not np.array_equal(first, second)


def test_lr_warms_up_linearly_then_decays_by_cosine_to_a_tenth():
    factors = [recipe.lr_factor(step, warmup=4, steps=20) for step in range(21)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))
    assert factors[-1] == pytest.approx(recipe.FINAL_LR)


def test_defaults_resolve_from_the_size_and_the_steps():
    section = OlmoSection(steps=300)
    resolved = OLMO.resolve(section, Point("4M", 1e-3, "cmp", 0))
    assert resolved.lr == pytest.approx(0.0047 * (3_967_920 / 108e6) ** (-1 / 3))
    assert (resolved.warmup_steps, resolved.eval_every, resolved.checkpoint_every) \
        == (15, 30, 75)
    assert OLMO.resolve(OlmoSection(steps=300, lr=1e-3), Point("1B", 1e-3, "cmp", 0)).lr == 1e-3


@pytest.fixture(scope="module")
def initial():
    from injection.tokenizer import load

    return model.build_model("4M", load(), SEQ_LEN, torch.device("cpu"), world_size=1, seed=0)


def test_micro_batches_accumulate_to_the_step_of_the_whole_batch(batches, initial):
    tokens, cpu = batches.rows(0, 0, BATCH).tokens, torch.device("cpu")
    models = [copy.deepcopy(initial) for _ in range(2)]

    def sgd(net):  # parameters move by the gradient itself (Adam's first step is its sign)
        optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    losses = [model.train_step(m, *sgd(m), tokens, micro, cpu)["loss"].item()
              for m, micro in zip(models, (BATCH, 1))]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for a, b in zip(*(m.parameters() for m in models)):
        assert torch.allclose(a, b, atol=1e-5)


def test_a_run_resumed_from_its_state_continues_exactly(batches, initial):
    cpu = torch.device("cpu")

    def fresh():
        net = copy.deepcopy(initial)
        return (net, *model.optimizer_for(net, lr=3e-3, warmup=1, steps=3))

    def train(parts, steps):
        return [model.train_step(*parts, batches.rows(step, 0, BATCH).tokens, 2, cpu)["loss"]
                .item() for step in steps]

    straight = fresh()
    losses = train(straight, range(3))
    first = fresh()
    train(first, range(1))
    buffer = io.BytesIO()
    torch.save(model.state(*first, step=1), buffer)
    buffer.seek(0)
    resumed = fresh()
    start = model.load_state(*resumed, torch.load(buffer, weights_only=False))
    assert start == 1 and train(resumed, range(start, 3)) == losses[1:]
    for a, b in zip(straight[0].parameters(), resumed[0].parameters()):
        assert torch.equal(a, b)
    assert losses[-1] < losses[0]
