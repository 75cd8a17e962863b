"""A sweep's state in one line: what `sweeps status` opens with and `sweeps list` shows per
sweep. The state is its parent run's (RUNNING while a driver runs it, FINISHED, FAILED, KILLED
after Ctrl-C), read beside the counts of its grid points."""

from __future__ import annotations

from dataclasses import dataclass

from tracking.curves import Row
from tracking.layout import HEARTBEAT_TAG, INFERRED, SEARCH_TAG, silent, tag_seconds
from tracking.query import Sweep

STATES = {"RUNNING": "running", "FINISHED": "finished", "FAILED": "failed",
          "KILLED": "interrupted"}


@dataclass(frozen=True)
class Counts:
    total: int
    finished: int
    running: int
    interrupted: int
    failed: int
    inferred: int = 0  # a search's: decided by the others' verdicts, never trained

    @classmethod
    def of(cls, rows: list[Row]) -> "Counts":
        def count(*states: str) -> int:
            return sum(r.state in states for r in rows)

        return cls(len(rows), count("FINISHED"), count("RUNNING"), count("KILLED"),
                   count("FAILED"), count(INFERRED))

    @property
    def done(self) -> int:
        return self.finished + self.inferred

    @property
    def waiting(self) -> int:
        return self.total - self.done - self.running - self.interrupted - self.failed


def state(sweep: Sweep, counts: Counts) -> str:
    """running, finished, failed, interrupted, or lost (RUNNING, its driver silent)."""
    parent = sweep.parent
    if parent is None:  # tracked before sweeps had parent runs: from its points
        return "finished" if counts.done == counts.total else \
            "running" if counts.running else "failed" if counts.failed else "interrupted"
    heard = parent.tags.get(HEARTBEAT_TAG)
    if silent(parent.status, tag_seconds(heard) if heard else None):
        return "lost"
    return STATES.get(parent.status, parent.status.lower())


def line(sweep: Sweep, rows: list[Row]) -> str:
    """`tiny: interrupted, 2 of 4 points finished, 2 interrupted; `sweeps resume tiny`
    finishes them`. A searched sweep's inferred points count as finished (and are said),
    its points not started as undecided: the search may never train them."""
    counts = Counts.of(rows)
    now = state(sweep, counts)
    parts = [f"{sweep.name}: {now}, {counts.done} of {counts.total} points finished"
             + (f" ({counts.inferred} inferred by the search)" if counts.inferred else "")]
    searched = sweep.parent is not None and SEARCH_TAG in sweep.parent.tags
    for n, what in [(counts.running, "running"), (counts.interrupted, "interrupted"),
                    (counts.failed, "failed"),
                    (counts.waiting, "undecided" if searched else "not started")]:
        if n:
            parts.append(f"{n} {what}")
    text = ", ".join(parts)
    if now == "lost":
        text += " (its driver is gone: killed, or its machine lost)"
    if now != "running" and counts.done < counts.total:
        text += f"; `sweeps resume {sweep.name}` finishes them"
    return text


def undecided(sweep: Sweep) -> list[str]:
    """A searched sweep's cells without a verdict, and why: the search trains around a
    failed point, but where no other verdict implies the point's, its N*(f) stays open until
    `sweeps resume` trains it again; the others were not trained yet (interrupted)."""
    failed = sorted(k for k, f in sweep.undecided.items() if f)
    waiting = sorted(k for k, f in sweep.undecided.items() if not f)
    out = [f"no verdict, as its trial failed (N*(f) open at its frequency): {key}"
           for key in failed]
    if waiting:
        out.append(f"{len(waiting)} cell{'s' * (len(waiting) != 1)} not trained yet "
                   f"(interrupted): {'; '.join(waiting)}")
    return out
