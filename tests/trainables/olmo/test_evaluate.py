"""The task's evaluation on the real 4M model: the label-restricted loss and accuracy equal a
hand computation on the model's own logits, a model that knows only which tokens can be
labels sits at ln 2 (cmp) or ln 100 (add), and every task number is read in float32."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from injection.tasks import build_task
from trainables.olmo.evaluate import eval_sets, evaluate, task_loss

CPU = torch.device("cpu")
NO_REFERENCE = (torch.zeros(0, 8, dtype=torch.long), torch.zeros(0, 8, dtype=torch.bool))


@pytest.fixture(scope="module", params=["cmp", "add"])
def task(request, cmp_task):
    return cmp_task if request.param == "cmp" else build_task("add", 0)


def sharpened(initial):
    """The 4M model with its output projection scaled up: logits far from uniform, so the
    restricted loss is nowhere near ln k by accident."""
    net = copy.deepcopy(initial)
    with torch.no_grad():
        net.transformer.ff_out.weight.mul_(40)
    return net


def by_hand(net, instances: torch.Tensor, labels: np.ndarray) -> tuple[float, float]:
    """Softmax over the label tokens' logits alone, in float64, one instance at a time."""
    with torch.no_grad():
        logits = net(instances[:, :2]).logits[:, -1].double().numpy()
    losses, hits = [], []
    for row, (tok1, tok2, label, _) in zip(logits, instances.numpy()):
        z = row[labels]
        losses.append(math.log(np.exp(z - z.max()).sum()) + z.max() - row[label])
        hits.append(labels[int(np.argmax(z))] == label)
    return float(np.mean(losses)), float(np.mean(hits))


def test_label_loss_and_accuracy_equal_a_hand_computation(initial, task):
    net = sharpened(initial)
    sets = eval_sets(task, *NO_REFERENCE, size=300)
    metrics = evaluate(net, sets, CPU)
    loss, acc = by_hand(net, sets.test, task.label_tokens)
    assert metrics["rare/label_loss"] == pytest.approx(loss, rel=1e-6)
    assert metrics["rare/label_acc"] == pytest.approx(acc, abs=1e-12)
    train_loss, _ = by_hand(net, sets.train, task.label_tokens)
    assert metrics["rare/train_label_loss"] == pytest.approx(train_loss, rel=1e-6)
    k = len(task.label_tokens)
    assert k == {"cmp": 2, "add": 100}[task.task]
    assert abs(loss - math.log(k)) > 0.1  # not the uniform answer
    # Restricting can only lower the loss and raise the accuracy: the labels' share of the
    # whole vocabulary's mass is at most 1.
    assert metrics["rare/label_loss"] <= metrics["rare/test_loss"]
    assert metrics["rare/label_acc"] >= metrics["rare/test_acc"]


def test_a_model_that_learned_only_the_label_vocabulary_sits_at_ln_k(initial, task):
    """Blocks made the identity and the task tokens embedded alike, so every instance ends in
    the same final state h; the label tokens' output rows give each of them logit 30 there.
    The model puts all its mass on the labels and knows nothing about which one: the
    whole-vocabulary loss falls from ln 50,304 to ln k, the label loss is ln k exactly, and
    the restricted accuracy is the share of the first label (ties go to it)."""
    net = copy.deepcopy(initial)
    sets = eval_sets(task, *NO_REFERENCE, size=300)
    with torch.no_grad():
        for block in net.transformer.blocks:
            block.attn_out.weight.zero_()
            block.ff_out.weight.zero_()
        net.transformer.wte.weight[torch.from_numpy(task.symbols)] = torch.randn(
            64, generator=torch.Generator().manual_seed(0))
        h = net(sets.test[:1, :2], output_hidden_states=True).hidden_states[-1][0, -1]
        net.transformer.ff_out.weight[torch.from_numpy(task.label_tokens)] = 30 * h / h @ h
    before = evaluate(copy.deepcopy(initial), sets, CPU)
    metrics = evaluate(net, sets, CPU)
    k = len(task.label_tokens)
    assert before["rare/test_loss"] > 10
    assert metrics["rare/test_loss"] == pytest.approx(math.log(k), abs=1e-3)
    assert metrics["rare/label_loss"] == pytest.approx(math.log(k), abs=1e-5)
    first = (sets.test[:, 2] == int(task.label_tokens[0])).double().mean().item()
    assert metrics["rare/label_acc"] == pytest.approx(first)


def test_the_task_loss_is_read_in_float32_under_any_autocast(initial, cmp_task):
    net = sharpened(initial)
    test = eval_sets(cmp_task, *NO_REFERENCE, size=200).test
    labels = torch.from_numpy(cmp_task.label_tokens)
    plain = task_loss(net, test, labels, CPU)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = task_loss(net, test, labels, CPU)
        with torch.no_grad():  # what a bf16 read would give
            logits = net(test[:, :2]).logits[:, -1].float()
    bf16 = torch.nn.functional.cross_entropy(logits, test[:, 2]).item()
    assert inside == plain
    assert abs(bf16 - plain) > 1e-4  # bf16 rounding a float32 read does not have
