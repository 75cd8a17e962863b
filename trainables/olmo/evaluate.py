"""Evaluation of the OLMo trainable (CONTRACTS 4): the injected task and the reference set.

- `rare/test_acc`, `rare/test_loss`: LABEL given TOK1 TOK2 at the start of a context (where
  training puts instances), argmax over the whole vocabulary, on the task's test split;
  `rare/train_loss` the same on its train split, to tell memorising from learning the rule.
- `ref/loss`: next-token loss on the answers of the corpus's own true statements of the same
  kind (R_cmp for cmp, R_add for add): does the injected task change what the model does with
  natural comparisons and sums?
Each uses a fixed, evenly spread subset of `eval_instances` items, the same at every step.
"""

from __future__ import annotations

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
                    ref_tokens=ref_tokens[keep], ref_mask=ref_mask[keep])


@torch.no_grad()
def evaluate(model: torch.nn.Module, sets: EvalSets, device: torch.device) -> dict[str, float]:
    was_training = model.training
    model.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        test_loss, test_acc = _task(model, sets.test, device)
        train_loss, _ = _task(model, sets.train, device)
        metrics = {"rare/test_acc": test_acc, "rare/test_loss": test_loss,
                   "rare/train_loss": train_loss}
        if len(sets.ref_tokens):  # a corpus without such statements has no ref/loss
            metrics["ref/loss"] = _reference(model, sets.ref_tokens, sets.ref_mask, device)
    model.train(was_training)
    return metrics


@torch.no_grad()
def task_loss(model: torch.nn.Module, instances: torch.Tensor, device: torch.device) -> float:
    """The task's loss alone (retention reads it next to every injection)."""
    was_training = model.training
    model.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        loss, _ = _task(model, instances, device)
    model.train(was_training)
    return loss


def _task(model, instances: torch.Tensor, device: torch.device) -> tuple[float, float]:
    """Mean loss and accuracy of LABEL (column 2) read after TOK1 TOK2."""
    loss, correct = 0.0, 0
    for chunk in instances.split(EVAL_CHUNK):
        chunk = chunk.to(device)
        logits = model(chunk[:, :2], last_logits_only=True).logits[:, -1].float()
        loss += F.cross_entropy(logits, chunk[:, 2], reduction="sum").item()
        correct += (logits.argmax(-1) == chunk[:, 2]).sum().item()
    return loss / len(instances), correct / len(instances)


def _reference(model, tokens: torch.Tensor, mask: torch.Tensor, device: torch.device) -> float:
    loss, count = 0.0, 0
    for rows, where in zip(tokens.split(EVAL_CHUNK), mask.split(EVAL_CHUNK)):
        rows, where = rows.to(device), where[:, :-1].to(device)
        logits = model(rows).logits[:, :-1].float()
        loss += F.cross_entropy(logits[where], rows[:, 1:][where], reduction="sum").item()
        count += int(where.sum())
    return loss / max(count, 1)
