"""The synthetic student: K linear-regression tasks sharing one width-N orthonormal encoder.

The numerical core of the synthetic trainable, plain PyTorch. It trains a *pack*: P grid
points of one width ("members") in the same batched tensor ops, because on one device a
single grid point is too small to pay for a trial's start-up. Every member has its own
problem (Q from its seed), step size and random generator, so its trajectory is the same
whichever pack it trains in.

Shapes: d = K*r input dimension, N width, B batch; rows of d-sized tensors are ordered
(task, feature), so `.view(P, K, r, ...)` splits them per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np
import torch

from trainables import theory


@dataclass(frozen=True)
class Member:
    """One grid point of a pack: what differs between members of the same width."""

    frequency: float
    rare_decay: float
    seed: int


@dataclass(frozen=True)
class Setup:
    """What all members of a pack share; `lr=None` takes each member's spectrum default."""

    tasks: int
    features_per_task: int
    width: int
    zipf: float = 1.0
    background_decay: float = 2.0
    mode: Literal["population", "sampled"] = "population"
    block: int = 0  # sampled only: 0 draws the rare task i.i.d., n > 0 delivers it n at a time
    batch_size: int = 256
    lr: float | None = None
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

    def member_lr(self, member: Member) -> float:
        if self.lr is not None:
            return self.lr
        lr = theory.default_lr(self.spectrum(member))
        if self.mode == "sampled":
            # One sample moves its decoder with curvature ~2N/B and the encoder with ~2 d
            # lambda_max / B: keep single-sample steps as tame as the expected ones.
            lam_max = max(theory.spectrum(self.features_per_task, a)[0]
                          for a in (self.background_decay, member.rare_decay))
            lr = min(lr, 0.5 * self.batch_size / (self.width + self.dim * lam_max))
        return lr


class Pack:
    """Problem and student state of P members, with the steps and metrics over them."""

    def __init__(self, setup: Setup, members: list[Member], device="cpu",
                 dtype=torch.float32):
        self.setup, self.members = setup, members
        P, K, r, N, d = len(members), setup.tasks, setup.features_per_task, setup.width, setup.dim
        self.generators = [torch.Generator(device).manual_seed(m.seed) for m in members]
        q, u = [], []
        for g, _ in zip(self.generators, members):
            # Q and the initial encoder come from the seed alone, so members that differ only
            # in frequency or task start from the same problem and the same student.
            q.append(torch.linalg.qr(_randn((d, d), g, device))[0])
            u.append(torch.linalg.qr(_randn((d, N), g, device))[0])
        specs = [setup.spectrum(m) for m in members]
        as_tensor = lambda x: torch.as_tensor(x, dtype=dtype, device=device)  # noqa: E731
        self.Q = as_tensor(torch.stack(q))
        self.sqrt_lam = as_tensor(np.stack([s.lam.ravel() ** 0.5 for s in specs])).view(P, d, 1)
        self.pi = as_tensor(np.stack([s.pi for s in specs]))  # (P, K)
        self.pi_rows = self.pi.repeat_interleave(r, dim=1).view(P, d, 1)
        self.lr = as_tensor([setup.member_lr(m) for m in members]).view(P, 1, 1)
        self.U = as_tensor(torch.stack(u))  # (P, d, N), orthonormal columns
        self.D = torch.zeros(P, d, N, dtype=dtype, device=device)  # decoders D_k stacked
        self.step = 0

    # -- training -------------------------------------------------------------------------

    def gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.setup.mode == "population":
            return self._expected_gradients(self.pi_rows)
        return self._sample_gradients()

    def _expected_gradients(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact gradients of sum_k w_k E||D_k U^T x - W_k x||^2 over x ~ N(0, I).

        With U^T U = I: dL/dD_k = 2 w_k (D_k - W_k U), dL/dU = 2 sum_k w_k (U D_k^T D_k -
        W_k^T D_k), where the stacked W is diag(sqrt lambda) Q^T.
        """
        WU = self.sqrt_lam * (self.Q.mT @ self.U)
        wD = weights * self.D
        grad_D = 2 * (wD - weights * WU)
        grad_U = 2 * (self.U @ (self.D.mT @ wD) - self.Q @ (self.sqrt_lam * wD))
        return grad_U, grad_D

    def _sample_gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of the mean squared error over a batch of drawn (task, x) samples."""
        s = self.setup
        B, K, r = s.batch_size, s.tasks, s.features_per_task
        X = torch.stack([_randn((B, s.dim), g, self.U.device) for g in self.generators])
        tasks = self._draw_tasks()  # (P, B)
        X = X.to(self.U.dtype)
        H = X @ self.U  # (P, B, N) encoder outputs
        targets = (X @ self.Q) * self.sqrt_lam.mT  # every task's target, (P, B, d)
        own_task = torch.nn.functional.one_hot(tasks, K).to(X.dtype)
        mask = own_task.repeat_interleave(r, dim=2)  # (P, B, d): the sample's task rows
        E = (H @ self.D.mT - targets) * mask  # residuals, in the sample's task rows only
        grad_D = (2.0 / B) * E.mT @ H
        grad_U = (2.0 / B) * X.mT @ (E @ self.D)
        return grad_U, grad_D

    def _draw_tasks(self) -> torch.Tensor:
        s = self.setup
        B, first = s.batch_size, self.step * s.batch_size
        drawn = []
        for g, pi, m in zip(self.generators, self.pi, self.members):
            if s.block == 0:
                drawn.append(torch.multinomial(pi.double(), B, replacement=True, generator=g))
                continue
            background = torch.multinomial(pi[:-1].double(), B, replacement=True, generator=g)
            rare = block_schedule(first, B, m.frequency, s.block, device=background.device)
            drawn.append(torch.where(rare, s.tasks - 1, background))
        return torch.stack(drawn)

    def train_step(self, active: torch.Tensor | None = None) -> None:
        """One gradient step; members where `active` is False keep their state exactly."""
        grad_U, grad_D = self.gradients()
        lr = self.lr if active is None else self.lr * active.view(-1, 1, 1)
        self.D -= lr * grad_D
        stepped = orthonormalise(self.U - lr * grad_U)
        self.U = stepped if active is None else torch.where(active.view(-1, 1, 1), stepped, self.U)
        self.step += 1

    def train(self, steps: list[int], log_every: int) -> Iterator[tuple[dict, list[bool]]]:
        """Train member i for steps[i] steps, yielding (metrics, due) whenever a member is due
        to log: at step 0 on a fresh start, every `log_every` steps, and at its last step.
        A member that has finished stays frozen while the others go on."""
        limits = torch.tensor(steps, device=self.U.device)
        if self.step == 0:
            yield self.metrics(), [True] * len(steps)
        while self.step < max(steps):
            self.train_step(self.step < limits)
            due = [self.step == n or (self.step % log_every == 0 and self.step < n)
                   for n in steps]
            if any(due):
                yield self.metrics(), due

    # -- metrics --------------------------------------------------------------------------

    @torch.no_grad()
    def metrics(self) -> dict[str, torch.Tensor]:
        """CONTRACTS 4 metrics per member, each a (P,) float64 tensor."""
        P, K, r = len(self.members), self.setup.tasks, self.setup.features_per_task
        QtU = (self.Q.mT @ self.U).double()
        captured = (self.sqrt_lam.double() * QtU).square().view(P, K, r, -1).sum((2, 3))
        task_loss = 1.0 - captured  # tr C_k = 1
        pi = self.pi.double()
        rare_loss = task_loss[:, -1]
        rare_only = torch.zeros_like(self.pi_rows)
        rare_only.view(P, K, r)[:, -1] = self.pi_rows.view(P, K, r)[:, -1]
        g_rare, _ = self._expected_gradients(rare_only)
        g_freq, _ = self._expected_gradients(self.pi_rows - rare_only)
        out = {
            "loss": (pi * task_loss).sum(1),
            **{f"task/{k}/loss": task_loss[:, k] for k in range(K)},
            "rare/loss": rare_loss,
            "rare/alignment": QtU.view(P, K, r, -1)[:, -1].square().sum((1, 2)) / r,
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
            {"step": self.step, "U": self.U[i].cpu(), "D": self.D[i].cpu(),
             "rng": g.get_state()}
            for i, g in enumerate(self.generators)
        ]

    def load_state_dicts(self, states: list[dict]) -> None:
        steps = {s["step"] for s in states}
        if len(states) != len(self.members) or len(steps) != 1:
            raise ValueError(f"checkpoint holds {len(states)} members at steps {sorted(steps)};"
                             f" the pack has {len(self.members)} members")
        for i, state in enumerate(states):
            self.U[i] = state["U"].to(self.U)
            self.D[i] = state["D"].to(self.D)
            self.generators[i].set_state(state["rng"])
        self.step = steps.pop()


def orthonormalise(U: torch.Tensor) -> torch.Tensor:
    """QR with the signs fixed (diag R > 0): the Gram-Schmidt retraction, continuous in U."""
    q, r = torch.linalg.qr(U)
    # Row-major like every other U, so a restored U multiplies bit for bit the same.
    return (q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)).contiguous()


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
