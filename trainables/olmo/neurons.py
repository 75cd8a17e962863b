"""Weight gradients of the first-layer MLP's neurons, read from activations during backward.

A SwiGLU neuron i of a block owns three d-vectors of weights: row i of `ff_proj` (the value
half), row H + i (the gate half; H = neurons) and column i of `ff_out`. For a linear layer
y = x W^T the weight gradient is sum over tokens of dL/dy^T x, so hooks on the two layers'
inputs and output gradients give each neuron's gradient, (neurons, 3 d), without touching
`.grad`: the same under DDP and FSDP (whose `.grad` is a shard), and per row of the batch, so
one backward over a batch of independent sequences sums several weighted groups of rows at
once (`weights`, groups x rows: row r of the forward counts with weight[g, r] in group g).
`rows` gives the weights of a whole step's rows at once: each forward (a micro-batch) takes
the next rows of it, in order.

Only active inside `with NeuronGrads(...)`; outside it a training step has no hooks at all.
"""

from __future__ import annotations

import torch


def first_mlp(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """`ff_proj`, `ff_out` of the first block of an OLMo model, bare or wrapped (DDP, FSDP)."""
    olmo = getattr(model, "module", model)
    block = olmo.transformer.blocks[0]
    block = getattr(block, "module", block)  # FSDP wraps each block
    return block.ff_proj, block.ff_out


class NeuronGrads:
    """Sums of the selected neurons' weight gradients over every backward while active:
    `grads` (groups, K, 3 d), float32, this process's rows only (callers all-reduce)."""

    def __init__(self, model: torch.nn.Module, neurons: torch.Tensor | None = None,
                 groups: int = 1, rows: torch.Tensor | None = None):
        self.model = getattr(model, "module", model)  # what DDP and FSDP call
        self.proj, self.out = first_mlp(model)
        self.hidden = self.out.in_features  # H: neurons of the block
        self.neurons = neurons  # None: all of them, in order
        self.groups = groups if rows is None else len(rows)
        self.weights: torch.Tensor | None = None  # (groups, rows) of the next forward
        self.rows = rows  # (groups, rows of every forward, in order), or None
        self._taken = 0  # rows of `rows` the forwards so far took
        self.grads: torch.Tensor | None = None
        self._handles: list = []

    def __enter__(self) -> "NeuronGrads":
        self._handles = [self.proj.register_forward_hook(self._on_proj),
                         self.out.register_forward_hook(self._on_out)]
        if self.rows is not None:
            self._handles.append(self.model.register_forward_pre_hook(self._next_rows,
                                                                      with_kwargs=True))
        return self

    def _next_rows(self, module, args, kwargs) -> None:
        n = (args[0] if args else kwargs["input_ids"]).shape[0]
        self.weights = self.rows[:, self._taken:self._taken + n]
        self._taken += n

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _select(self, tensor: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if self.neurons is None:
            return tensor[..., offset:offset + self.hidden]
        return tensor[..., self.neurons + offset]

    def _accumulate(self, part: slice, weights, per_neuron: torch.Tensor,
                    per_dim: torch.Tensor) -> None:
        """Add the sum over rows r and positions l of weight[g, r] per_neuron[r, l, k]
        per_dim[r, l, :] to `part` of each neuron k's gradient."""
        per_neuron, per_dim = per_neuron.float(), per_dim.float()
        if weights is None:
            added = torch.einsum("rlk,rld->kd", per_neuron, per_dim)[None]
        else:
            added = torch.einsum("gr,rlk,rld->gkd", weights.to(per_dim), per_neuron, per_dim)
        if self.grads is None:
            k, d = added.shape[1], self.proj.in_features
            self.grads = torch.zeros(self.groups, k, 3 * d, device=added.device)
        self.grads[:, :, part] += added

    def _on_proj(self, module, args, output) -> None:
        if not output.requires_grad:
            return
        x, weights, d = args[0].detach(), self.weights, module.in_features

        def backward(gy: torch.Tensor) -> None:
            self._accumulate(slice(0, d), weights, self._select(gy), x)
            self._accumulate(slice(d, 2 * d), weights, self._select(gy, self.hidden), x)

        output.register_hook(backward)

    def _on_out(self, module, args, output) -> None:
        if not output.requires_grad:
            return
        a, weights, d = self._select(args[0].detach()), self.weights, module.out_features

        def backward(gy: torch.Tensor) -> None:
            self._accumulate(slice(2 * d, 3 * d), weights, a, gy)

        output.register_hook(backward)
