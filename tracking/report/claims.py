"""What a report holds: figures with the numbers they plot, and the paper's claims, each judged
from the report's own runs by the shared verdict rules (`tracking.report.verdict`, CONTRACTS 7
rev 3). A claim the runs cannot judge says why (`holds=None`, `reason`); none is written by
hand."""

from __future__ import annotations

from dataclasses import dataclass, field

# One plotted value (long format, CONTRACTS 7): every grid axis, seed, n (replicates behind
# the value: 1 for one run, k for a mean over k seeds), step, metric, value; extra axes
# (a burst size, a gap) as further keys.
DATA_COLUMNS = ("width", "frequency", "task", "seed", "n", "step", "metric", "value")


@dataclass(frozen=True)
class Cells:
    """The grid points a claim reads: planned by its sweeps, and used (finished and fit for
    the claim's rule)."""

    planned: int
    used: int

    def as_json(self) -> dict:
        return {"planned": self.planned, "used": self.used}


@dataclass(frozen=True)
class Claim:
    id: str  # "C1".."C8", "O1".."O5"
    figure: str  # the Figure.name whose data judged it
    claim: str  # the paper's claim, in words
    holds: bool | None  # None: the runs cannot decide it (`reason` says why)
    evidence: str  # what was compared, in words, with the numbers that decided it
    n: int = 0  # independent replicates behind `effect`
    effect: float | None = None  # the signed statistic the claim is about
    interval: list[float] | None = None  # its 95% interval [lo, hi]
    null: float | None = None  # the effect under no such phenomenon
    cells: Cells | None = None
    reason: str | None = None  # why `holds` is None
    replicates: tuple[tuple[str, float], ...] = ()  # (label, value): written to data/claims.csv

    def as_json(self) -> dict:
        return {"id": self.id, "figure": self.figure, "claim": self.claim, "holds": self.holds,
                "evidence": self.evidence, "n": self.n, "effect": self.effect,
                "interval": self.interval, "null": self.null,
                "cells": self.cells.as_json() if self.cells else None, "reason": self.reason}


@dataclass(frozen=True)
class Figure:
    name: str  # file stem: figures/<name>.png and .pdf, data/<name>.csv
    title: str  # "Figure 2: learned or not, width x frequency"
    caption: str  # what it shows and what the paper says it shows
    data: tuple[dict, ...] = ()  # the plotted values, one dict per value (DATA_COLUMNS)


@dataclass(frozen=True)
class Provenance:
    """Where a report's numbers come from: when and by which code it was judged, from which
    runs, how long they trained."""

    created: str  # ISO 8601, UTC
    commit: str  # the judging code's git commit ("+ changes" when its tree had some)
    seeds: list  # the seeds its sweeps ran
    runtime_s: float  # training time: per sweep, first run's start to last run's end, summed
    links: dict = field(default_factory=dict)  # sweep -> its parent run in MLflow's UI


@dataclass
class Report:
    experiment: str  # "synthetic" | "olmo"
    scale: str  # "quick" | "full" | ...
    sweeps: list[str] = field(default_factory=list)  # the sweeps its data came from
    figures: list[Figure] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    provenance: Provenance | None = None
