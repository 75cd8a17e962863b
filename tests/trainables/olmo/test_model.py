"""The OLMo trainable's parts without Ray: global batches, the recipe, an exact resume."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from injection.schedule import Schedule
from trainables.olmo import OLMO, OlmoSection, model, recipe
from trainables.olmo.data import GlobalBatches, share
from trainables.points import Point

SEQ_LEN, BATCH = 16, 4


@pytest.fixture(scope="module")
def batches(tiny_corpus, cmp_task) -> GlobalBatches:
    schedule = Schedule(0.03, BATCH, SEQ_LEN, cmp_task.train_ids, seed=0)
    return GlobalBatches(tiny_corpus, schedule, cmp_task.tokens, seed=0)


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


def test_lr_warms_up_linearly_then_decays_by_cosine_to_a_hundredth():
    factors = [recipe.lr_factor(step, warmup=4, total_steps=20, final=0.01) for step in range(21)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))
    assert factors[-1] == pytest.approx(0.01) and recipe.FINAL_LR == 0.01


# OLMo's scripts/ladder.py at 2048-token sequences (PAPER.md 4.2): peak lr and batch.
LADDER_RECIPE = {"4M": (1.41e-2, 32), "20M": (8.24e-3, 64), "300M": (3.33e-3, 320),
                 "1B": (2.24e-3, 704)}


@pytest.mark.parametrize("width", list(LADDER_RECIPE))
def test_recipe_is_olmos_ladder(width):
    lr, batch = LADDER_RECIPE[width]
    assert recipe.peak_lr(width) == pytest.approx(lr, rel=0.01)
    assert recipe.batch_size(width, 2048) == batch
    # At any sequence length the fitted tokens per batch, to the nearest 32 sequences.
    fitted = 160 * (float(width[:-1]) * {"M": 1e6, "B": 1e9}[width[-1]] / 108e6) ** (2 / 3)
    assert abs(recipe.batch_size(width, 128) - fitted * 16) <= 16


def test_defaults_resolve_from_the_size_by_olmos_recipe():
    point = Point("4M", 1e-3, "cmp", 0)
    resolved = OLMO.resolve(OlmoSection(), point)
    batch = recipe.batch_size("4M", 128)
    assert resolved.batch_size == batch == 288
    assert resolved.lr == pytest.approx(0.0047 * (4e6 / 108e6) ** (-1 / 3))
    # 20 tokens per parameter of the name; N tokens of warm-up.
    assert resolved.steps == -(-20 * 4_000_000 // (batch * 128)) == 2171
    assert resolved.warmup_steps == round(4e6 / (batch * 128)) == 109
    assert (resolved.final_lr, resolved.adamw.weight_decay, resolved.adamw.beta2,
            resolved.grad_clip) == (0.01, 0.05, 0.95, 1.0)
    # A short explicit run: warm-up capped at a tenth of it; explicit values kept.
    short = OLMO.resolve(OlmoSection(steps=300, batch_size=8, lr=1e-3), point)
    assert (short.steps, short.batch_size, short.lr, short.warmup_steps) == (300, 8, 1e-3, 30)
    assert (short.eval_every, short.checkpoint_every) == (30, 75)
    longer = OLMO.resolve(OlmoSection(tokens_per_param=2.0), point)
    assert longer.steps == -(-2 * 4_000_000 // (batch * 128))


def test_micro_batches_accumulate_to_the_step_of_the_whole_batch(batches, initial):
    tokens, cpu = batches.rows(0, 0, BATCH).tokens, torch.device("cpu")
    models = [copy.deepcopy(initial) for _ in range(2)]

    def sgd(net):  # parameters move by the gradient itself (Adam's first step is its sign)
        optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    # 3 does not divide 4: a micro-batch of 3 rows and one of 1, weighted by their tokens.
    losses = [model.train_step(m, *sgd(m), tokens, micro, cpu, clip=1.0)["loss"].item()
              for m, micro in zip(models, (BATCH, 3))]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for a, b in zip(*(m.parameters() for m in models)):
        assert torch.allclose(a, b, atol=1e-5)


def test_a_run_resumed_from_its_state_continues_exactly(batches, initial, tmp_path):
    cpu = torch.device("cpu")

    section = OlmoSection(steps=3, lr=3e-3, warmup_steps=1)

    def fresh():
        net = copy.deepcopy(initial)
        return (net, *model.optimizer_for(net, section))

    def train(parts, steps):
        return [model.train_step(*parts, batches.rows(step, 0, BATCH).tokens, 2, cpu, clip=1.0)
                ["loss"].item() for step in steps]

    straight = fresh()
    losses = train(straight, range(3))
    first = fresh()
    train(first, range(1))
    model.save_state(*first[:2], tmp_path)
    resumed = fresh()
    model.load_state(*resumed[:2], tmp_path)
    resumed[2].load_state_dict(first[2].state_dict())
    assert train(resumed, range(1, 3)) == losses[1:]
    for a, b in zip(straight[0].parameters(), resumed[0].parameters()):
        assert torch.equal(a, b)
    assert losses[-1] < losses[0]
