"""What a report holds: figures and the paper's claims, each claim judged from the report's own
runs (CONTRACTS 7). A claim the runs cannot judge says why (`holds=None`); none is written by
hand."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Claim:
    id: str  # "C1".."C6", "O1".."O5"
    figure: str  # the Figure.name whose data judged it
    claim: str  # the paper's claim, in words
    holds: bool | None  # None: the runs cannot judge it (evidence says why)
    evidence: str  # the numbers that decided it

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Figure:
    name: str  # file stem: figures/<name>.png and figures/<name>.pdf
    title: str  # "Figure 2: learned or not, width x frequency"
    caption: str  # what it shows and what the paper says it shows


@dataclass
class Report:
    experiment: str  # "synthetic" | "olmo"
    scale: str  # "quick" | "full" | ...
    sweeps: list[str] = field(default_factory=list)  # the sweeps its data came from
    figures: list[Figure] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
