"""Placement writes TOK1 TOK2 LABEL EOS where the plan says, and the masks find LABEL."""

from __future__ import annotations

import pytest
import torch

from injection.place import place
from injection.schedule import Schedule
from injection.tasks import load_task


@pytest.fixture(scope="module")
def task(cache):
    return load_task("add", seed=0, cache=cache)


def test_instances_replace_the_first_four_tokens_of_their_rows_only(task):
    batch = torch.randint(2, 50_000, (16, 32))
    original = batch.clone()
    plan = Schedule(1 / 64, 16, 32, task.train_ids, seed=1).plan(3)
    assert 0 < plan.count < 16
    placed = place(batch, plan, task.tokens)
    rows = torch.as_tensor(plan.rows)
    assert torch.equal(placed.tokens[rows, :4], torch.as_tensor(task.tokens[plan.instances]))
    untouched = torch.ones_like(batch, dtype=torch.bool)
    untouched[rows, :4] = False
    assert torch.equal(placed.tokens[untouched], batch[untouched])
    assert placed.injected.nonzero().flatten().tolist() == plan.rows.tolist()
    assert torch.equal(batch, original)  # the input is never modified


def test_label_mask_marks_the_position_whose_target_is_label(task):
    batch = torch.randint(2, 50_000, (8, 16))
    plan = Schedule(1 / 16, 8, 16, task.train_ids, seed=0).plan(0)
    placed = place(batch, plan, task.tokens)
    assert placed.label_mask.sum() == plan.count == 8
    targets = placed.tokens[:, 1:][placed.label_mask[:, :-1]]  # next token at each marked place
    assert torch.equal(targets, placed.labels)
    assert torch.equal(placed.labels, torch.as_tensor(task.tokens[plan.instances, 2]))


def test_a_batch_without_instances_comes_back_as_it_was(task):
    batch = torch.randint(2, 50_000, (4, 8))
    plan = Schedule(1e-9, 4, 8, task.train_ids).plan(0)
    placed = place(batch, plan, task.tokens)
    assert plan.count == 0 and torch.equal(placed.tokens, batch)
    assert not placed.label_mask.any() and not placed.injected.any()


def test_a_plan_for_another_batch_size_is_refused(task):
    plan = Schedule(1 / 8, 64, 8, task.train_ids).plan(0)
    with pytest.raises(ValueError, match="another batch size"):
        place(torch.zeros(4, 8, dtype=torch.long), plan, task.tokens)


def test_task_loss_through_a_real_olmo_model(task):
    """The masks line up with OLMo's logits: position p predicts token p + 1."""
    from olmo import OLMo

    from injection.tokenizer import load
    from trainables.olmo.ladder import model_config

    torch.manual_seed(0)
    model = OLMo(model_config("4M", load(), seq_len=16, init_device="cpu")).eval()
    batch = torch.randint(2, 50_000, (4, 16))
    placed = place(batch, Schedule(1 / 16, 4, 16, task.train_ids).plan(0), task.tokens)
    with torch.no_grad():
        logits = model(placed.tokens).logits
    loss = torch.nn.functional.cross_entropy(logits[placed.label_mask], placed.labels)
    by_row = torch.nn.functional.cross_entropy(logits[:, 1], placed.tokens[:, 2])
    assert torch.allclose(loss, by_row)
    assert 9.0 < loss.item() < 13.0  # about log(50304) = 10.8 for an untrained model
