"""When a grid point has converged, so that its run stops before its step cap (`steps`).

Checked every `check_every(steps)` steps on the trained model: its loss and the rare task's
loss under the decoders the student has (`model_loss`, `rare/model_loss`), not under the best
ones for its encoder. With tolerance tol:

- population mode (exact gradients: the loss goes to the width's optimum, which the theory
  gives in closed form): converged once the trained model is within tol of it,
      model_loss <= max(L*(N) (1 + tol), tol^2)   and   |rare/model_loss - L_r*(N)| <= tol,
  a certificate, not a guess: no run stops on a plateau (a feature swap still to come can
  hold the loss 1.5% above the optimum for hundreds of steps, and a near-critical rare task's
  loss first rises, then falls, through the learned threshold), and every run stops as soon
  as it is there. (tol^2 is the floor where L* = 0, at N >= d.) A run that does not get there
  trains to its cap and logs `converged` = 0: the test of the theory is that, and its final
  losses, which the rule cannot change (it only stops runs that are at the optimum).
- sampled mode (SGD: the loss settles at a noise floor above the optimum): converged once the
  run has stopped improving, no earlier than the theory's expected steps
  (`theory.steps_to_converge`), and with `rare/learned` the same at every check of the second
  half of the run so far. At a check step t >= expected, with A the checks in (t/4, t/2] and
  B those in (t/2, t],
      mean_A(model_loss) - mean_B(model_loss) <= tol * max(mean_B(model_loss), tol)
      |mean_A(rare/model_loss) - mean_B(rare/model_loss)| <= tol
      rare/learned constant over B
  that is, the second half of the run so far improved the trained loss by at most a fraction
  tol, moved the rare task's by at most tol, and did not flip whether the rare task is
  learned. Halves make the rule scale-free; means over checks keep noise and bursts from
  deciding. The two guards are there because near the critical width a rare loss can sit
  just above the threshold on a slow approach that the halves do not see (complex f = 0.1 at
  N = N*: 2 of 6 seeds stopped at 6-10% of the cap, not learned, and learned at the cap).

Each decision is a pure function of the state and of the checks' history, which the
checkpoint holds: a resumed run stops at the same step as an uninterrupted one.
`tolerance: 0` turns stopping off (a fixed budget of `steps`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

CHECKS = 1000  # checks over a run's step cap: the stop step's resolution is cap / CHECKS
MIN_CHECKS = 2  # in each half, before a sampled run's decision


def check_every(steps: int) -> int:
    return max(1, steps // CHECKS)


@dataclass(frozen=True)
class Optimum:
    """A population run's rule: the width's optimum, the losses it converges to."""

    loss: float
    rare: float


@dataclass(frozen=True)
class Floor:
    """A sampled run's rule: settled at its noise floor, not before `earliest` steps (the
    theory's expected steps)."""

    earliest: int


@dataclass
class Checks:
    """One member's checks: their steps, trained losses and `rare/learned`, and where it
    converged."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    rare: list[float] = field(default_factory=list)
    learned: list[bool] = field(default_factory=list)
    converged_at: int | None = None

    def record(self, step: int, loss: float, rare: float, learned: bool, tolerance: float,
               rule: Optimum | Floor) -> bool:
        """Add a check; True if the member has converged at it by its mode's rule."""
        self.steps.append(step)
        self.loss.append(loss)
        self.rare.append(rare)
        self.learned.append(learned)
        done = (certified(loss, rare, rule, tolerance) if isinstance(rule, Optimum)
                else settled(self.steps, self.loss, self.rare, self.learned, tolerance,
                             rule.earliest))
        if done:
            self.converged_at = step
        return done

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "loss": list(self.loss), "rare": list(self.rare),
                "learned": list(self.learned), "converged_at": self.converged_at}

    @classmethod
    def from_state(cls, state: dict) -> "Checks":
        return cls(list(state["steps"]), list(state["loss"]), list(state["rare"]),
                   list(state["learned"]), state["converged_at"])


def certified(loss: float, rare: float, optimum: Optimum, tolerance: float) -> bool:
    """The population rule: within tolerance of the width's optimum."""
    return bool(tolerance > 0
                and loss <= max(optimum.loss * (1.0 + tolerance), tolerance ** 2)
                and abs(rare - optimum.rare) <= tolerance)


def settled(steps, loss, rare, learned, tolerance: float, earliest: int = 0) -> bool:
    """The sampled rule at the last check (steps ascending), not before step `earliest`."""
    if tolerance <= 0 or len(steps) == 0 or steps[-1] < earliest:
        return False
    t = steps[-1]
    a, b = bisect.bisect_right(steps, t / 4), bisect.bisect_right(steps, t / 2)
    if b - a < MIN_CHECKS or len(steps) - b < MIN_CHECKS or len(set(learned[b:])) > 1:
        return False
    loss_a, loss_b = np.mean(loss[a:b]), np.mean(loss[b:])
    rare_a, rare_b = np.mean(rare[a:b]), np.mean(rare[b:])
    return bool(loss_a - loss_b <= tolerance * max(loss_b, tolerance)
                and abs(rare_a - rare_b) <= tolerance)
