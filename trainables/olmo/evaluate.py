"""Evaluation of the OLMo trainable (CONTRACTS 4, 6): the injected task and the reference set.

- `rare/test_acc`, `rare/test_loss`: LABEL given TOK1 TOK2 at the start of a context (where
  training puts instances), argmax and cross-entropy over the whole vocabulary, on the task's
  test split; `rare/train_loss` the same on its train split, to tell memorising from learning
  the rule.
- `rare/label_loss`, `rare/label_acc` (test split) and `rare/train_label_loss`: the same with
  the softmax and the argmax over the task's label tokens alone (2 for cmp, the 100 of S for
  add). A model that has learned which tokens can be labels, and nothing else, sits at ln 2 or
  ln 100 and at chance (1/2, 1/100); the full-vocabulary loss falls from ln 50,304 to there by
  that alone, and the full-vocabulary accuracy can stay below chance while the model still
  prefers other tokens. `rare/test_acc` stays unrestricted (CONTRACTS 6's definition).
- `ref/loss`: next-token loss on the answers of the corpus's own true statements of the same
  kind (R_cmp for cmp, R_add for add): does the injected task change what the model does with
  natural comparisons and sums?
The task's numbers are read in float32 (no autocast, full-precision matmuls): retention
(`retention`) divides differences of them, which bf16 rounding would swamp. Each uses a fixed,
evenly spread subset of `eval_instances` items, the same at every step.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from injection.tasks import TaskSet

EVAL_CHUNK = 256  # rows per forward pass


@dataclass(frozen=True)
class EvalSets:
    train: torch.Tensor  # (n, 4) instances of the train split
    test: torch.Tensor  # (n, 4) instances of the test split
    labels: torch.Tensor  # (k,) every token a LABEL can be, sorted
    ref_tokens: torch.Tensor  # (m, T) reference statements, padded
    ref_mask: torch.Tensor  # (m, T) positions whose next token is an answer


def eval_sets(task: TaskSet, ref_tokens: torch.Tensor, ref_mask: torch.Tensor,
              size: int) -> EvalSets:
    def spread(n: int) -> np.ndarray:
        return np.unique(np.linspace(0, n - 1, min(size, n)).round().astype(np.int64))

    tokens = torch.from_numpy(task.tokens)
    keep = torch.from_numpy(spread(len(ref_tokens))) if len(ref_tokens) else slice(0, 0)
    return EvalSets(train=tokens[task.train_ids[spread(len(task.train_ids))]],
                    test=tokens[task.test_ids[spread(len(task.test_ids))]],
                    labels=torch.from_numpy(task.label_tokens),
                    ref_tokens=ref_tokens[keep], ref_mask=ref_mask[keep])


@dataclass(frozen=True)
class TaskScores:
    """Mean cross-entropy and accuracy of LABEL, over the vocabulary and over the labels."""

    loss: float
    acc: float
    label_loss: float
    label_acc: float


@torch.no_grad()
def evaluate(model: torch.nn.Module, sets: EvalSets, device: torch.device) -> dict[str, float]:
    was_training = model.training
    model.eval()
    test = task_scores(model, sets.test, sets.labels, device)
    train = task_scores(model, sets.train, sets.labels, device)
    metrics = {"rare/test_acc": test.acc, "rare/test_loss": test.loss,
               "rare/label_loss": test.label_loss, "rare/label_acc": test.label_acc,
               "rare/train_loss": train.loss, "rare/train_label_loss": train.label_loss}
    if len(sets.ref_tokens):  # a corpus without such statements has no ref/loss
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            metrics["ref/loss"] = _reference(model, sets.ref_tokens, sets.ref_mask, device)
    model.train(was_training)
    return metrics


@torch.no_grad()
def task_loss(model: torch.nn.Module, instances: torch.Tensor, labels: torch.Tensor,
              device: torch.device) -> float:
    """The task's loss alone (retention reads it next to every injection)."""
    was_training = model.training
    model.eval()
    loss = task_scores(model, instances, labels, device).loss
    model.train(was_training)
    return loss


def task_scores(model, instances: torch.Tensor, labels: torch.Tensor,
                device: torch.device) -> TaskScores:
    """LABEL (column 2) read after TOK1 TOK2, in float32; `labels` the tokens a LABEL can be."""
    labels = labels.to(device)
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    with float32(device):
        for chunk in instances.split(EVAL_CHUNK):
            chunk = chunk.to(device)
            logits = model(chunk[:, :2], last_logits_only=True).logits[:, -1].float()
            target = chunk[:, 2].contiguous()
            restricted = logits[:, labels]  # target's column: where labels == target
            column = torch.searchsorted(labels, target)
            sums += torch.stack([
                F.cross_entropy(logits, target, reduction="sum").double(),
                (logits.argmax(-1) == target).sum().double(),
                F.cross_entropy(restricted, column, reduction="sum").double(),
                (restricted.argmax(-1) == column).sum().double()])
    return TaskScores(*(sums / len(instances)).tolist())


@contextmanager
def float32(device: torch.device):
    """No autocast and full-precision float32 matmuls (no TF32) inside."""
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.autocast(device.type, enabled=False):
            yield
    finally:
        torch.set_float32_matmul_precision(precision)


def _reference(model, tokens: torch.Tensor, mask: torch.Tensor, device: torch.device) -> float:
    loss, count = 0.0, 0
    for rows, where in zip(tokens.split(EVAL_CHUNK), mask.split(EVAL_CHUNK)):
        rows, where = rows.to(device), where[:, :-1].to(device)
        logits = model(rows).logits[:, :-1].float()
        loss += F.cross_entropy(logits[where], rows[:, 1:][where], reduction="sum").item()
        count += int(where.sum())
    return loss / max(count, 1)
