"""Rare-task retention between injections, the paper's Figure 8 (CONTRACTS 6).

An injection is a training step whose global batch holds task instances. Around each one the
task's test loss is read at three states: just before it (L_before), just after it (L_after),
and just before the next injection (L_next). Of the drop the injection made, the share still
there when the next one comes:

    rare/retained = (L_before - L_next) / (L_before - L_after)

1 when nothing was forgotten, 0 when the loss is back where it was, negative when it is worse;
not logged for an injection that did not lower the loss by more than float32 rounding
(`DROP_TOLERANCE` of L_before: no drop to retain, and a ratio over rounding noise would be
noise). The losses are float32 reads (`evaluate.task_scores`). Also logged:
`rare/injection_drop` = L_before - L_after at the injection step, and each loss read as
`rare/test_loss` at its step, so the saw-tooth between injections is in the history.

Only states next to an injection are evaluated: two per injection (one when injections are
in consecutive steps), none elsewhere. `Retention` keeps what one injection leaves for the
next; it goes into every checkpoint, so a resumed run continues exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable


DROP_TOLERANCE = 1e-5  # relative: float32 means over instances agree to ~1e-6 of the loss


def retained(before: float, after: float, later: float) -> float | None:
    """Share of an injection's drop in loss (before -> after) still there at `later`; None
    where the drop is within rounding of zero or negative."""
    drop = before - after
    return None if drop <= DROP_TOLERANCE * abs(before) else (before - later) / drop


@dataclass
class Retention:
    before: float | None = None  # L_before of the injection now being trained
    last: tuple[float, float] | None = None  # (L_before, L_after) of the last injection

    def observe(self, loss: Callable[[], float], injected_last: bool,
                injects_next: bool) -> dict[str, float]:
        """At a state between two steps: `injected_last` if the step that led here injected,
        `injects_next` if the next one will. `loss()` reads the task's test loss; it is
        called only when one of the two holds."""
        if not (injected_last or injects_next):
            return {}
        now = loss()
        metrics = {"rare/test_loss": now}
        if injected_last and self.before is not None:
            metrics["rare/injection_drop"] = self.before - now
            self.last, self.before = (self.before, now), None
        if injects_next:
            share = retained(*self.last, now) if self.last is not None else None
            if share is not None:
                metrics["rare/retained"] = share
            self.before = now
        return metrics

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.before = state["before"]
        self.last = None if state["last"] is None else tuple(state["last"])
