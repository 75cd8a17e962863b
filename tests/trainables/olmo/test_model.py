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


# OLMo's ladder at 2048-token sequences: peak lr and batch (sequences). N is the counted size
# for 4M and 20M (DataDecide's 3,744,832 and 19,101,888: its batches 32 and 64, its 5xC runs
# 5,725 and 14,584 steps = 100 N tokens), the name for 300M and 1B (scripts/ladder.py: 320
# and 704 sequences).
LADDER_RECIPE = {"4M": (3_744_832, 32), "20M": (19_101_888, 64), "300M": (300e6, 320),
                 "1B": (1e9, 704)}


@pytest.mark.parametrize("width", list(LADDER_RECIPE))
def test_recipe_is_olmos_ladder(width):
    n, batch = LADDER_RECIPE[width]
    assert recipe.size(width) == n
    assert recipe.peak_lr(width) == pytest.approx(0.0047 * (n / 108e6) ** (-1 / 3), rel=1e-12)
    assert recipe.batch_size(width, 2048) == batch
    # Rounded in whole 2048-token sequences, then held as rows of any length: OLMo's tokens.
    for seq_len in (128, 512, 4096):
        assert recipe.batch_size(width, seq_len) * seq_len == batch * 2048


def test_the_small_rungs_take_datadecides_counted_size_and_batch_tokens():
    assert recipe.batch_tokens("4M") == 65_536 and recipe.batch_tokens("20M") == 131_072
    assert recipe.batch_size("4M", 128) == 512  # not 288: 36,864 tokens
    assert recipe.peak_lr("4M") == pytest.approx(1.441e-2, rel=1e-3)  # the name's: 1.408e-2
    # DataDecide's 5xC runs are 100 N tokens of these N: 5,725 and 14,584 steps.
    assert recipe.steps("4M", 65_536, 100) == pytest.approx(5725, abs=10)
    assert recipe.steps("20M", 131_072, 100) == pytest.approx(14584, abs=15)


def test_defaults_resolve_from_the_size_by_olmos_recipe():
    """`resolve` alone is the per-size recipe (`budget: ladder`); a shared budget's batch and
    length are filled for the whole grid first (tests/sweeps/test_olmo_spec.py)."""
    point = Point("4M", 1e-3, "cmp", 0)
    resolved = OLMO.resolve(OlmoSection(budget="ladder"), point)
    assert resolved.batch_size == recipe.batch_size("4M", 128) == 512
    assert resolved.lr == pytest.approx(0.0047 * (3_744_832 / 108e6) ** (-1 / 3))
    # 20 tokens per parameter; N tokens of warm-up.
    assert resolved.steps == -(-20 * 3_744_832 // 65_536) == 1143
    assert resolved.warmup_steps == round(3_744_832 / 65_536) == 57
    assert (resolved.final_lr, resolved.adamw.weight_decay, resolved.adamw.beta2,
            resolved.grad_clip) == (0.01, 0.05, 0.95, 1.0)
    # A short explicit run: warm-up capped at a tenth of it; explicit values kept.
    short = OLMO.resolve(OlmoSection(steps=300, batch_size=8, lr=1e-3), point)
    assert (short.steps, short.batch_size, short.lr, short.warmup_steps) == (300, 8, 1e-3, 30)
    assert (short.eval_every, short.checkpoint_every) == (30, 75)
    longer = OLMO.resolve(OlmoSection(budget="ladder", tokens_per_param=2.0), point)
    assert longer.steps == -(-2 * 3_744_832 // 65_536)


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
