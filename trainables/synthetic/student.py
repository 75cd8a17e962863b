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

from typing import Iterator

import numpy as np
import torch

from trainables import periodic
from trainables.synthetic import measures, stopping, theory
from trainables.synthetic.gradients import expected_gradients, orthonormalise, sample_gradients
from trainables.synthetic.problem import Member, Setup
from tracking.layout import FEATURE_COLUMNS


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
        rare_rows = torch.zeros(P, d, 1, dtype=dtype, device=device)
        rare_rows[:, (K - 1) * r:] = 1.0
        self.rare_rows = rare_rows * self.pi_rows  # the rare task's weights, zero elsewhere
        self.leading = torch.tensor([(K - 1) * r + theory.leading_feature(s) for s in specs],
                                    device=device)
        self.lr = as_tensor([setup.lr(m) for m in members]).view(P, 1, 1)
        self.V = as_tensor(torch.stack(v)).contiguous()  # (P, d, N): Q^T U, orthonormal
        self.D = torch.zeros(P, d, N, dtype=dtype, device=device)  # decoders D_k stacked
        self.step = 0
        self.checks = [stopping.Checks() for _ in members]
        # When each member counts as converged (`stopping`): a population run at its width's
        # optimum; a sampled one settled above it, not before the theory's expected steps.
        self.rules = [self._rule(spec, member) for spec, member in zip(specs, members)]
        # The first step at which each feature's overlap reached LEARNED_OVERLAP (-1: not yet),
        # looked at every step up to 128 and then at a resolution of 1/64 of the step:
        # learning times span decades, and looking every step would cost a quarter of one.
        self.learned_step = torch.full((P, d), -1, dtype=torch.long, device=device)
        self._note_learned()
        self.step_measures: dict[str, torch.Tensor] = {}  # of the step that led here, if any

    def _rule(self, spec: theory.Spectrum, member: Member) -> stopping.Optimum | stopping.Floor:
        s = self.setup
        if s.mode == "population":
            best = theory.optimum(spec, s.width)
            return stopping.Optimum(best.loss, best.rare_loss)
        return stopping.Floor(theory.steps_to_converge(spec, s.width, s.lr(member),
                                                       s.learned_threshold))

    @property
    def U(self) -> torch.Tensor:
        """The encoder in input coordinates, (P, d, N) with orthonormal columns."""
        return self.Q @ self.V

    # -- training -------------------------------------------------------------------------

    def train_step(self, active: torch.Tensor | None = None, measure: bool = False) -> None:
        """One gradient step of the active members (all by default); the others are not
        computed and keep their state exactly. With `measure`, the step's measures
        (interference, the alignment's push and pull; NaN for inactive members) go to
        `step_measures` until the next step."""
        rows = slice(None) if active is None or bool(active.all()) else active.nonzero()[:, 0]
        V, D, sqrt_lam = self.V[rows], self.D[rows], self.sqrt_lam[rows]
        g_task = injected = None  # population: the rare part is G_r itself (`_measure`)
        if self.setup.mode == "population":
            grad_V, grad_D = expected_gradients(V, D, sqrt_lam, self.pi_rows[rows])
        else:
            Z, tasks = self._draw(rows)
            rare = tasks == self.setup.tasks - 1
            grad_V, grad_D, g_task = sample_gradients(V, D, sqrt_lam, Z, tasks,
                                                      self.setup.features_per_task,
                                                      keep=rare if measure else None)
            injected = rare.sum(1)
        self.step_measures = {}
        if measure:
            self._measure(rows, grad_V, g_task, injected)
        lr = self.lr[rows]
        self.D[rows] = D - lr * grad_D
        self.V[rows] = orthonormalise(V - lr * grad_V)
        self.step += 1
        if self.step < 128 or self.step % (1 << (self.step.bit_length() - 7)) == 0:
            self._note_learned()

    def _measure(self, rows, grad_V, g_task, injected) -> None:
        """The step's measures (`measures.interference`, `measures.alignment_split`) at the
        state its gradient was computed at; population mode's rare part is the rare task's
        expected term of the gradient."""
        V, D, sqrt_lam = self.V[rows], self.D[rows], self.sqrt_lam[rows]
        rare_weights = self.rare_rows[rows]
        G_r, _ = expected_gradients(V, D, sqrt_lam, rare_weights)
        background, _ = expected_gradients(V, D, sqrt_lam, self.pi_rows[rows] - rare_weights)
        g_task = G_r if g_task is None else g_task
        values = {**measures.interference(V, grad_V, g_task, G_r, background, injected),
                  **measures.alignment_split(V, self.lr[rows], grad_V, g_task,
                                             self.leading[rows])}
        for name, value in values.items():
            full = torch.full((len(self.members),), float("nan"), dtype=torch.float64,
                              device=value.device)
            full[rows] = value
            self.step_measures[name] = full

    def _note_learned(self) -> None:
        newly = (measures.feature_overlaps(self.V) >= measures.LEARNED_OVERLAP) \
            & (self.learned_step < 0)
        self.learned_step[newly] = self.step

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

    def running(self, i: int, steps: int) -> bool:
        """Whether member i still trains: not converged, and short of its cap `steps`."""
        return self.checks[i].converged_at is None and self.step < steps

    def train(self, steps: list[int], log_every: list[int]
              ) -> Iterator[tuple[dict, list[bool]]]:
        """Train member i until it has converged (`stopping`, at the setup's tolerance) or
        reached steps[i], yielding (metrics, due) whenever a member is due to log: at step 0
        on a fresh start, every log_every[i] steps, and at its last step (where it stopped).
        Interference is measured at the logging steps only (it costs about two more
        gradients); the step a member converged at is logged without it unless it was due
        anyway. A member that has stopped stays frozen while the others go on."""
        every = [stopping.check_every(n) for n in steps]
        tolerance = self.setup.tolerance
        if self.step == 0:
            yield self.metrics(), [True] * len(steps)
        while True:
            running = [self.running(i, n) for i, n in enumerate(steps)]
            if not any(running):
                return
            step = self.step + 1
            logs = [on and periodic.due(step, e, n) for on, e, n in zip(running, log_every, steps)]
            checks = [on and tolerance > 0 and step % e == 0 for on, e in zip(running, every)]
            self.train_step(torch.tensor(running, device=self.V.device), measure=any(logs))
            stopped = self._check(checks) if any(checks) else [False] * len(steps)
            due = [log or stop for log, stop in zip(logs, stopped)]
            if any(due):
                yield self.metrics(), due

    def _check(self, checks: list[bool]) -> list[bool]:
        """Record the checks due at this step; which members converged at it."""
        represented, trained = measures.task_losses(self.V, self.D, self.sqrt_lam,
                                                    self.setup.tasks)
        loss = (self.pi.double() * trained).sum(1)
        learned = represented[:, -1] <= self.setup.learned_threshold
        return [check and self.checks[i].record(self.step, loss[i].item(),
                                                trained[i, -1].item(), bool(learned[i]),
                                                self.setup.tolerance, self.rules[i])
                for i, check in enumerate(checks)]

    # -- metrics --------------------------------------------------------------------------

    @torch.no_grad()
    def metrics(self) -> dict[str, torch.Tensor]:
        """CONTRACTS 4 metrics per member, each a (P,) float64 tensor: those of the current
        state, and the interference measures of the step that led to it where it measured
        them (NaN: not measured, or undefined: not to be logged)."""
        state = measures.state_metrics(self.V, self.D, self.sqrt_lam, self.pi, self.leading,
                                       self.setup.learned_threshold)
        return {**state, **self.step_measures}

    def summary(self, i: int) -> dict[str, float]:
        """What member i logs once, at its last step: whether it converged (1) or ran to its
        cap (0)."""
        return {"converged": float(self.checks[i].converged_at is not None)}

    def feature_table(self, i: int) -> dict:
        """Member i's features as one table (`tracking.layout.FEATURE_STEPS`): task k, feature
        j, utility pi_k lambda_{k,j} and the first step it was learned (-1: never). One
        artifact, not K r single-point metrics that would fill MLflow's chart view."""
        K, r = self.setup.tasks, self.setup.features_per_task
        steps = self.learned_step[i].view(K, r).tolist()
        utility = (self.pi[i].double().view(K, 1)
                   * self.sqrt_lam[i].double().view(K, r) ** 2).tolist()
        return {"columns": list(FEATURE_COLUMNS),
                "data": [[k, j, utility[k][j], steps[k][j]] for k in range(K) for j in range(r)]}

    # -- checkpoints ----------------------------------------------------------------------

    def state_dicts(self) -> list[dict]:
        """One dict per member: all it takes to continue exactly (parameters, RNG, step, the
        convergence checks so far, the features' learning steps)."""
        return [
            {"step": self.step, "V": self.V[i].cpu(), "D": self.D[i].cpu(),
             "rng": g.get_state(), "checks": self.checks[i].state_dict(),
             "learned_step": self.learned_step[i].cpu()}
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
            self.checks[i] = stopping.Checks.from_state(state["checks"])
            self.learned_step[i] = state["learned_step"].to(self.learned_step)
        self.step = steps.pop()
        self.step_measures = {}


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
