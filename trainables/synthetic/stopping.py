"""When a grid point has converged, so that its run stops before its step cap (`steps`).

Checked every `check_every(steps)` steps on the trained model (the losses under the decoders
the student has, not the best ones for its encoder). At a check step t, with A the checks in
(t/4, t/2] and B those in (t/2, t], the run has converged when

    mean_A(model_loss) - mean_B(model_loss) <= tol * max(mean_B(model_loss), tol)
    |mean_A(rare/model_loss) - mean_B(rare/model_loss)| <= tol

that is: the second half of the run so far improved the trained model's loss by at most a
fraction tol (tol^2 absolute where the loss itself goes to 0, as at N >= d) and moved the rare
task's trained loss by at most tol. Halves, not a fixed window, make the rule scale-free: a
run that doubled its length for less than tol has no reason to double it again. Means over
checks, not single values, keep sampled runs' noise (and bursts) from deciding.

The decision is a pure function of the checks' history, which the checkpoint holds: a resumed
run stops at the same step as an uninterrupted one. `tolerance: 0` turns stopping off (a
fixed budget of `steps`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHECKS = 1000  # checks over a run's step cap: the stop step's resolution is cap / CHECKS
MIN_CHECKS = 2  # in each half, before a decision


def check_every(steps: int) -> int:
    return max(1, steps // CHECKS)


@dataclass
class Checks:
    """One member's checks: their steps and trained losses, and where it converged."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    rare: list[float] = field(default_factory=list)
    converged_at: int | None = None

    def record(self, step: int, loss: float, rare: float, tolerance: float) -> bool:
        """Add a check; True if the member has converged at it."""
        self.steps.append(step)
        self.loss.append(loss)
        self.rare.append(rare)
        if converged(np.array(self.steps), np.array(self.loss), np.array(self.rare),
                     tolerance):
            self.converged_at = step
        return self.converged_at is not None

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "loss": list(self.loss), "rare": list(self.rare),
                "converged_at": self.converged_at}

    @classmethod
    def from_state(cls, state: dict) -> "Checks":
        return cls(list(state["steps"]), list(state["loss"]), list(state["rare"]),
                   state["converged_at"])


def converged(steps: np.ndarray, loss: np.ndarray, rare: np.ndarray, tolerance: float) -> bool:
    """The module's criterion at the last check."""
    if tolerance <= 0 or steps.size == 0:
        return False
    t = steps[-1]
    first, second = (steps > t / 4) & (steps <= t / 2), steps > t / 2
    if first.sum() < MIN_CHECKS or second.sum() < MIN_CHECKS:
        return False
    loss_a, loss_b = loss[first].mean(), loss[second].mean()
    rare_a, rare_b = rare[first].mean(), rare[second].mean()
    return bool(loss_a - loss_b <= tolerance * max(loss_b, tolerance)
                and abs(rare_a - rare_b) <= tolerance)
