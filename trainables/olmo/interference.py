"""Gradient interference as the paper's Figure 9 measures it (CONTRACTS 6), at one step.

On the first-layer MLP (the layer with the largest causal effect on the task, Section 4.4):
- g_r, the task's reference gradient: the mean LABEL loss over `interference_instances` task
  instances (train and test, evenly spread over the 10,000), at the step's parameters;
- the K neurons with the largest |g_r| (the norm of each neuron's 3 d weight gradient);
- g, the gradient of the step's global batch as the optimizer gets it (before clipping, whose
  scale a cosine ignores), split into g_task, the loss on the LABEL tokens of the batch's
  injected instances, and g_nontask = g - g_task, the loss on every other token;
- split another way: g_rows, the loss on every position of the rows that hold an instance
  (TOK2, LABEL, EOS and the corpus text after it), and g - g_rows, the rows without one.
Logged: cos(g, g_r), cos(g_task, g_r) and cos(g_rows, g_r) (at steps that inject),
cos(g_nontask, g_r) and cos(g - g_rows, g_r) (`interference/cos_nontask_rows`). In g_nontask
the injected rows' other positions count as non-task: they follow the task's tokens in the
same context and dominate g_nontask's overlap with g_r (4-9x in a 4M run);
`cos_nontask_rows` is the background's alone.

How it is computed without perturbing the step. An instance sits at the start of its row
and attention is causal, so the loss on its LABEL depends on TOK1 TOK2 alone: g_task is the
gradient of the LABEL loss of the bare instances, weighted as the training loss weights one
token (1 / predicted tokens of the global batch). g_r and g_task come from one extra forward
and backward over those 3-token instances before the step (its `.grad` is discarded: the
step starts with zero_grad), each process taking an equal share, then an all-reduce; g comes
from hooks on the step's own backward (`neurons.NeuronGrads`), all-reduced and averaged as
DDP and FSDP average gradients, and g_rows from the same hooks with the rows weighted by
whether they hold an instance (no extra pass). The optimizer step, its gradients and the RNG
are the ones it would have without the measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trainables.olmo.model import INSTANCE_CHUNK, eager
from trainables.olmo.neurons import NeuronGrads



def spread(n: int, count: int) -> np.ndarray:
    """`count` indices evenly spread over 0..n-1 (all of them when count >= n)."""
    return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))


def reference_gradients(model: torch.nn.Module, reference: torch.Tensor, task: torch.Tensor,
                        token_weight: float, device: torch.device, rank: int = 0,
                        world_size: int = 1) -> torch.Tensor:
    """(2, neurons, 3 d): g_r, the mean LABEL-loss gradient of the `reference` instances
    (n, 3: TOK1 TOK2 LABEL), and g_task, the LABEL-loss gradient of the `task` instances
    weighted `token_weight` each; global sums, the same on every rank. `model` is what
    forwards on this rank: the bare model under DDP (no reducer involved), the FSDP module
    under FSDP (every rank runs the same number of passes)."""
    rows = torch.cat([reference, task]).long()
    weights = torch.zeros(2, len(rows), dtype=torch.float64)
    weights[0, :len(reference)] = 1 / len(reference)
    weights[1, len(reference):] = token_weight
    share = -(-len(rows) // world_size)
    pad = share * world_size - len(rows)  # zero-weight rows: equal shares, equal passes
    rows = torch.cat([rows, rows[:1].expand(pad, -1)])
    weights = torch.cat([weights, weights.new_zeros(2, pad)], dim=1)
    mine = slice(rank * share, (rank + 1) * share)
    with NeuronGrads(model, groups=2) as capture:
        for chunk, weight in zip(rows[mine].split(INSTANCE_CHUNK),
                                 weights[:, mine].split(INSTANCE_CHUNK, dim=1)):
            capture.weights = weight
            chunk = chunk.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=device.type == "cuda"):
                logits = model(chunk[:, :2], last_logits_only=True).logits[:, -1]
            F.cross_entropy(logits.float(), chunk[:, 2], reduction="sum").backward()
    return _sum_over_ranks(capture.grads, world_size)


def top_neurons(g_r: torch.Tensor, k: int) -> torch.Tensor:
    """The k neurons with the largest gradient norm in g_r (neurons, 3 d), ascending."""
    return g_r.norm(dim=1).topk(k).indices.sort().values


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-300))


def cosines(g: torch.Tensor, g_task: torch.Tensor, g_rows: torch.Tensor, g_r: torch.Tensor,
            injected: bool) -> dict[str, float]:
    """The cosines of CONTRACTS 6; those of the task's own gradients only where the batch
    injected (g_task and g_rows are zero otherwise)."""
    metrics = {"interference/cos_batch": cosine(g, g_r),
               "interference/cos_nontask": cosine(g - g_task, g_r),
               "interference/cos_nontask_rows": cosine(g - g_rows, g_r)}
    if injected:
        metrics["interference/cos_task"] = cosine(g_task, g_r)
        metrics["interference/cos_task_rows"] = cosine(g_rows, g_r)
    return metrics


@dataclass
class Probe:
    """One step's measurement: enter it around the training step, then read `metrics`."""

    model: torch.nn.Module
    neurons: torch.Tensor
    g_r: torch.Tensor
    g_task: torch.Tensor
    rows: torch.Tensor  # (rows,) bool: this process's rows of the batch that hold an instance
    injected: bool  # whether the global batch holds any
    world_size: int
    capture: NeuronGrads | None = None
    _eager: object = None

    def __enter__(self) -> "Probe":
        # A compiled model runs the measured step eagerly: the hooks see every module.
        self._eager = eager()
        self._eager.__enter__()
        weights = torch.stack([torch.ones(len(self.rows)), self.rows.float()])
        self.capture = NeuronGrads(self.model, self.neurons, rows=weights).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.capture.__exit__(*exc)
        self._eager.__exit__(*exc)

    def metrics(self) -> dict[str, float]:
        g, g_rows = _sum_over_ranks(self.capture.grads, self.world_size) / self.world_size
        return cosines(g, self.g_task, g_rows, self.g_r, self.injected)


def probe(model: torch.nn.Module, forward_model: torch.nn.Module, reference: torch.Tensor,
          task: torch.Tensor, rows: torch.Tensor, token_weight: float, neurons: int,
          device: torch.device, rank: int = 0, world_size: int = 1) -> Probe:
    """Everything measured before the step: g_r and g_task on every neuron, the top
    `neurons` of g_r; the returned probe then captures g and g_rows during the step on
    `model`, whose rows on this process hold an instance where `rows` is True."""
    g_r, g_task = reference_gradients(forward_model, reference, task, token_weight, device,
                                      rank, world_size)
    top = top_neurons(g_r, neurons)
    return Probe(model, top.to(device), g_r[top], g_task[top], rows.bool(),
                 injected=len(task) > 0, world_size=world_size)


def _sum_over_ranks(tensor: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
