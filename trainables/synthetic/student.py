"""The synthetic student: K linear-regression tasks sharing one width-N orthonormal encoder.

The numerical core of the synthetic trainable, plain PyTorch. It trains a *pack*: P grid
points of one width ("members") in the same batched tensor ops, because on one device a
single grid point is too small to pay for a trial's start-up. Every member has its own
problem (Q from its seed), step size and random generator, so its trajectory is the same
whichever pack it trains in.

It works in the tasks' eigenbasis: the state is V = Q^T U and a sample is drawn as z with
x = Q z. Because Q is orthogonal this is exact (x is still N(0, I), QR commutes with Q, the
gradient in V is Q^T times the gradient in U), and it turns W_k x into a slice of z and
W_k U into a slice of V, so no step multiplies by a d x d matrix. `U` gives Q V back.

Shapes: d = K*r input dimension, N width, B batch; rows of d-sized tensors are ordered
(task, feature), so `.view(P, K, r, ...)` splits them per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np
import torch

from trainables import periodic
from trainables.synthetic import theory


@dataclass(frozen=True)
class Member:
    """One grid point of a pack: what differs between members of the same width."""

    frequency: float
    rare_decay: float
    seed: int
    lr: float | None = None  # None: the spectrum's default (theory.default_lr)


@dataclass(frozen=True)
class Setup:
    """What all members of a pack share."""

    tasks: int
    features_per_task: int
    width: int
    zipf: float = 1.0
    background_decay: float = 2.0
    mode: Literal["population", "sampled"] = "population"
    block: int = 0  # sampled only: 0 draws the rare task i.i.d., n > 0 delivers it n at a time
    batch_size: int = 256
    learned_threshold: float = 0.5

    @property
    def dim(self) -> int:
        return self.tasks * self.features_per_task

    def spectrum(self, member: Member) -> theory.Spectrum:
        return theory.Spectrum.build(
            self.tasks,
            self.features_per_task,
            self.zipf,
            self.background_decay,
            member.rare_decay,
            member.frequency,
        )

    def lr(self, member: Member) -> float:
        return member.lr or theory.default_lr(self.spectrum(member), self.mode,
                                              self.batch_size, self.width)


class Pack:
    """Problem and student state of P members, with the steps and metrics over them."""

    def __init__(self, setup: Setup, members: list[Member], device="cpu",
                 dtype=torch.float32):
        self.setup, self.members = setup, members
        P, K, r, N, d = len(members), setup.tasks, setup.features_per_task, setup.width, setup.dim
        self.generators = [torch.Generator(device).manual_seed(m.seed) for m in members]
        q, v = [], []
        for g in self.generators:
            # Q and the initial encoder come from the seed alone, so members that differ only
            # in frequency or task start from the same problem and the same student.
            Q = torch.linalg.qr(_randn((d, d), g, device))[0]
            q.append(Q)
            v.append(Q.mT @ torch.linalg.qr(_randn((d, N), g, device))[0])
        specs = [setup.spectrum(m) for m in members]
        as_tensor = lambda x: torch.as_tensor(x, dtype=dtype, device=device)  # noqa: E731
        self.Q = as_tensor(torch.stack(q))
        self.sqrt_lam = as_tensor(np.stack([s.lam.ravel() ** 0.5 for s in specs])).view(P, d, 1)
        self.pi = as_tensor(np.stack([s.pi for s in specs]))  # (P, K)
        self.pi_rows = self.pi.repeat_interleave(r, dim=1).view(P, d, 1)
        self.lr = as_tensor([setup.lr(m) for m in members]).view(P, 1, 1)
        self.V = as_tensor(torch.stack(v)).contiguous()  # (P, d, N): Q^T U, orthonormal
        self.D = torch.zeros(P, d, N, dtype=dtype, device=device)  # decoders D_k stacked
        self.step = 0

    @property
    def U(self) -> torch.Tensor:
        """The encoder in input coordinates, (P, d, N) with orthonormal columns."""
        return self.Q @ self.V

    # -- training -------------------------------------------------------------------------

    def train_step(self, active: torch.Tensor | None = None) -> None:
        """One gradient step of the active members (all by default); the others are not
        computed and keep their state exactly."""
        rows = slice(None) if active is None or bool(active.all()) else active.nonzero()[:, 0]
        V, D, sqrt_lam = self.V[rows], self.D[rows], self.sqrt_lam[rows]
        if self.setup.mode == "population":
            grad_V, grad_D = expected_gradients(V, D, sqrt_lam, self.pi_rows[rows])
        else:
            Z, tasks = self._draw(rows)
            grad_V, grad_D = sample_gradients(V, D, sqrt_lam, Z, tasks,
                                              self.setup.features_per_task)
        lr = self.lr[rows]
        self.D[rows] = D - lr * grad_D
        self.V[rows] = orthonormalise(V - lr * grad_V)
        self.step += 1

    def _draw(self, rows) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's samples of the given members, each from its own generator:
        z (P', B, d) with x = Q z, and tasks (P', B)."""
        s = self.setup
        B, first = s.batch_size, self.step * s.batch_size
        picked = range(len(self.members))[rows] if isinstance(rows, slice) else rows.tolist()
        zs, tasks = [], []
        for i in picked:
            g, pi, device = self.generators[i], self.pi[i].double(), self.V.device
            zs.append(_randn((B, s.dim), g, device))
            if s.block == 0:
                tasks.append(torch.multinomial(pi, B, replacement=True, generator=g))
                continue
            background = torch.multinomial(pi[:-1], B, replacement=True, generator=g)
            rare = block_schedule(first, B, self.members[i].frequency, s.block, device=device)
            tasks.append(torch.where(rare, s.tasks - 1, background))
        return torch.stack(zs).to(self.V.dtype), torch.stack(tasks)

    def train(self, steps: list[int], log_every: list[int]
              ) -> Iterator[tuple[dict, list[bool]]]:
        """Train member i for steps[i] steps, yielding (metrics, due) whenever a member is due
        to log: at step 0 on a fresh start, every log_every[i] steps, and at its last step.
        A member that has finished stays frozen while the others go on."""
        limits = torch.tensor(steps, device=self.V.device)
        if self.step == 0:
            yield self.metrics(), [True] * len(steps)
        while self.step < max(steps):
            self.train_step(self.step < limits)
            due = [self.step <= n and periodic.due(self.step, every, n)
                   for n, every in zip(steps, log_every)]
            if any(due):
                yield self.metrics(), due

    # -- metrics --------------------------------------------------------------------------

    @torch.no_grad()
    def metrics(self) -> dict[str, torch.Tensor]:
        """CONTRACTS 4 metrics per member, each a (P,) float64 tensor."""
        P, K, r = len(self.members), self.setup.tasks, self.setup.features_per_task
        V = self.V.double()  # = Q^T U: row (k, j) is U's overlap with task k's feature j
        captured = (self.sqrt_lam.double() * V).square().view(P, K, r, -1).sum((2, 3))
        task_loss = 1.0 - captured  # tr C_k = 1
        pi = self.pi.double()
        rare_loss = task_loss[:, -1]
        rare_only = torch.zeros_like(self.pi_rows)
        rare_only.view(P, K, r)[:, -1] = self.pi_rows.view(P, K, r)[:, -1]
        # Gradients in V: Q^T preserves inner products, so the cosine is U's.
        g_rare, _ = expected_gradients(self.V, self.D, self.sqrt_lam, rare_only)
        g_freq, _ = expected_gradients(self.V, self.D, self.sqrt_lam, self.pi_rows - rare_only)
        out = {
            "loss": (pi * task_loss).sum(1),
            **{f"task/{k}/loss": task_loss[:, k] for k in range(K)},
            "rare/loss": rare_loss,
            "rare/alignment": V.view(P, K, r, -1)[:, -1].square().sum((1, 2)) / r,
            "interference/cos": torch.nn.functional.cosine_similarity(
                g_freq.flatten(1).double(), g_rare.flatten(1).double(), dim=1, eps=1e-30
            ),
            "rare/learned": (rare_loss <= self.setup.learned_threshold).double(),
        }
        return out

    # -- checkpoints ----------------------------------------------------------------------

    def state_dicts(self) -> list[dict]:
        """One dict per member: all it takes to continue exactly (parameters, RNG, step)."""
        return [
            {"step": self.step, "V": self.V[i].cpu(), "D": self.D[i].cpu(),
             "rng": g.get_state()}
            for i, g in enumerate(self.generators)
        ]

    def load_state_dicts(self, states: list[dict]) -> None:
        steps = {s["step"] for s in states}
        if len(states) != len(self.members) or len(steps) != 1:
            raise ValueError(f"checkpoint holds {len(states)} members at steps {sorted(steps)};"
                             f" the pack has {len(self.members)} members")
        for i, state in enumerate(states):
            self.V[i] = state["V"].to(self.V)
            self.D[i] = state["D"].to(self.D)
            self.generators[i].set_state(state["rng"])
        self.step = steps.pop()


def expected_gradients(V, D, sqrt_lam, weights) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact gradients in (V, D) of sum_k w_k E||D_k U^T x - W_k x||^2 over x ~ N(0, I).

    With U^T U = I: dL/dD_k = 2 w_k (D_k - W_k U) and dL/dU = 2 sum_k w_k (U D_k^T D_k -
    W_k^T D_k). With W = diag(sqrt lambda) Q^T and V = Q^T U: W U = sqrt(lambda) V and
    Q^T W^T D = sqrt(lambda) D. `weights` (P, d, 1) is each row's task weight (pi_k).
    """
    wD = weights * D
    grad_D = 2 * (wD - weights * sqrt_lam * V)
    grad_V = 2 * (V @ (D.mT @ wD) - sqrt_lam * wD)
    return grad_V, grad_D


def sample_gradients(V, D, sqrt_lam, Z, tasks, features_per_task: int):
    """Gradients in (V, D) of the mean squared error over samples x = Q z of given tasks.

    Z (P, B, d), tasks (P, B). W_k x is task k's slice of sqrt(lambda) z and U^T x = V^T z;
    the residuals are masked to each sample's own task rows, which makes the decoder
    gradient of every task one matrix product.
    """
    B, r = Z.shape[1], features_per_task
    H = Z @ V  # (P, B, N) encoder outputs
    own_rows = torch.nn.functional.one_hot(tasks, V.shape[1] // r).to(Z.dtype)
    mask = own_rows.repeat_interleave(r, dim=2)  # (P, B, d)
    E = (H @ D.mT - Z * sqrt_lam.mT) * mask  # residuals in the sample's task rows only
    return (2.0 / B) * Z.mT @ (E @ D), (2.0 / B) * E.mT @ H


def orthonormalise(U: torch.Tensor) -> torch.Tensor:
    """QR with the signs fixed (diag R > 0): the Gram-Schmidt retraction, continuous in U."""
    q, r = torch.linalg.qr(U)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def block_schedule(first: int, count: int, frequency: float, block: int,
                   device="cpu") -> torch.Tensor:
    """Which of samples first..first+count-1 belong to the rare task under `{block: n}`.

    Block j >= 1 fills the n samples ending at floor(j n / f), so after S samples exactly
    n * floor(S f / n) rare samples (give or take the block in progress) have arrived, and the
    long-run frequency is f. Blocks cannot overlap because n / f > n.
    """
    period = block / frequency
    s = torch.arange(first, first + count, dtype=torch.float64, device=device)
    block_end = torch.floor(torch.ceil((s + 1) / period) * period)
    return block_end - s <= block


def _randn(shape, generator: torch.Generator, device) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=device, dtype=torch.float64)
