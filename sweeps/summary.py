"""A sweep's state in one line: what `sweeps status` opens with and `sweeps list` shows per
sweep. The state is its parent run's (RUNNING while a driver runs it, FINISHED, FAILED, KILLED
after Ctrl-C), read beside the counts of its grid points."""

from __future__ import annotations

from dataclasses import dataclass

from tracking.curves import Row
from tracking.layout import HEARTBEAT_TAG, silent, tag_seconds
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

    @classmethod
    def of(cls, rows: list[Row]) -> "Counts":
        def count(*states: str) -> int:
            return sum(r.state in states for r in rows)

        return cls(len(rows), count("FINISHED"), count("RUNNING"), count("KILLED"),
                   count("FAILED"))

    @property
    def waiting(self) -> int:
        return self.total - self.finished - self.running - self.interrupted - self.failed


def state(sweep: Sweep, counts: Counts) -> str:
    """running, finished, failed, interrupted, or lost (RUNNING, its driver silent)."""
    parent = sweep.parent
    if parent is None:  # tracked before sweeps had parent runs: from its points
        return "finished" if counts.finished == counts.total else \
            "running" if counts.running else "failed" if counts.failed else "interrupted"
    heard = parent.tags.get(HEARTBEAT_TAG)
    if silent(parent.status, tag_seconds(heard) if heard else None):
        return "lost"
    return STATES.get(parent.status, parent.status.lower())


def line(sweep: Sweep, rows: list[Row]) -> str:
    """`tiny: interrupted, 2 of 4 points finished, 2 interrupted; `sweeps resume tiny`
    finishes them`."""
    counts = Counts.of(rows)
    now = state(sweep, counts)
    parts = [f"{sweep.name}: {now}, {counts.finished} of {counts.total} points finished"]
    for n, what in [(counts.running, "running"), (counts.interrupted, "interrupted"),
                    (counts.failed, "failed"), (counts.waiting, "not started")]:
        if n:
            parts.append(f"{n} {what}")
    text = ", ".join(parts)
    if now == "lost":
        text += " (its driver is gone: killed, or its machine lost)"
    if now != "running" and counts.finished < counts.total:
        text += f"; `sweeps resume {sweep.name}` finishes them"
    return text
