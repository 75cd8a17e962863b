"""Placement: a batch plan applied to a (B, L) batch of corpus tokens.

An instance replaces the first four tokens of its row with TOK1 TOK2 LABEL EOS, so the model
reads the pair at the start of a context and the EOS separates it from the corpus text that
follows. The task's training loss is the next-token loss at the position whose *target* is
LABEL (position 1, reading TOK1 TOK2): `label_mask` marks it, in the same (B, L) layout as the
logits, so `cross_entropy(logits[label_mask], labels)` with labels = tokens[:, 2][injected] is
the task's loss, and the rest of the batch trains as language modelling as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from injection.schedule import INSTANCE_TOKENS, BatchPlan

LABEL_POSITION = 2  # TOK1 TOK2 LABEL EOS


@dataclass(frozen=True)
class Placed:
    tokens: torch.Tensor  # (B, L) the batch with the instances in place
    label_mask: torch.Tensor  # (B, L) bool: the position whose next token is LABEL
    injected: torch.Tensor  # (B,) bool: the rows holding an instance

    @property
    def labels(self) -> torch.Tensor:
        """(count,) the LABEL tokens, in the order of label_mask's True entries."""
        return self.tokens[self.injected, LABEL_POSITION]


def place(tokens: torch.Tensor, plan: BatchPlan, instance_tokens: np.ndarray) -> Placed:
    """Apply `plan` to `tokens` (B, L); `instance_tokens` is the task's (N, 4) table
    (`TaskSet.tokens`). The input tensor is never modified."""
    B, L = tokens.shape
    if L < INSTANCE_TOKENS:
        raise ValueError(f"sequences of {L} tokens cannot hold a {INSTANCE_TOKENS}-token instance")
    injected = torch.zeros(B, dtype=torch.bool, device=tokens.device)
    label_mask = torch.zeros(B, L, dtype=torch.bool, device=tokens.device)
    if plan.count == 0:
        return Placed(tokens, label_mask, injected)
    if plan.rows[-1] >= B:
        raise ValueError(f"the plan puts an instance in row {plan.rows[-1]} of a {B}-row batch:"
                         " it was made for another batch size")
    rows = torch.from_numpy(plan.rows).to(tokens.device)
    out = tokens.clone()
    out[rows, :INSTANCE_TOKENS] = torch.from_numpy(instance_tokens[plan.instances]).to(out)
    injected[rows] = True
    label_mask[rows, LABEL_POSITION - 1] = True
    return Placed(out, label_mask, injected)
