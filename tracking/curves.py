"""A sweep as read back from MLflow: one row per grid point, its state and final metrics, and
the scaling curves they make: per (task, frequency), the rare metric against width.

Plain data (numpy, pydantic): reading rows from a store is `tracking.query`'s, and which
metrics make the curves is the trainable's (`Measure`, from its contract).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
from pydantic import BaseModel

from tracking.layout import AXES, SIZE, size


@dataclass
class Row:
    key: str
    run_id: str
    state: str
    step: int
    params: dict
    trainable: str
    metrics: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)  # artifact path -> table, where read (`query`)
    inferred: bool | None = None  # an INFERRED point's verdict: learned or not (a search's)

    @property
    def sort_key(self) -> tuple:
        """Task, then frequency from frequent to rare, seed, and width from small to large."""
        p = self.params
        return (p["task"], -float(p["frequency"]), int(p["seed"]), width_order(p["width"]))


def typed(params: dict[str, str]) -> dict:
    """Params as values: MLflow keeps each as text, so numbers come back as numbers (an
    integer where the text is one), "True"/"False" as booleans, "None" as None; the rest
    (a task, a ladder width such as "20M") stays text."""
    return {key: _value(text) for key, text in params.items()}


def _value(text: str):
    constants = {"True": True, "False": False, "None": None}
    if text in constants:
        return constants[text]
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text


def width_order(width: str) -> float:
    """Widths are integers (synthetic) or ladder names such as '20M' (OLMo)."""
    return float(size(width)) if SIZE.fullmatch(width) else float(width)


class Measure(BaseModel):
    """Which metrics make a sweep's scaling curves: `loss` is fitted against width, `score`
    decides whether the rare task is learned (on the right side of `threshold`)."""

    loss: str
    score: str
    threshold: float
    lower_is_better: bool

    def learned(self, score: float) -> bool:
        return score <= self.threshold if self.lower_is_better else score >= self.threshold


class Curve(BaseModel):
    """One (task, frequency) of a sweep: per width (ascending), the final values of its
    finished seeds. `late_gain` is how much the score still improved at the end of training
    (None without a history); `theory_*` are the synthetic optimum's, where logged."""

    task: str
    frequency: float
    widths: list[str]  # as in the grid: integers, or ladder names such as "20M"
    sizes: list[float]  # the widths as numbers
    losses: list[list[float]]  # per width, one value per finished seed
    scores: list[list[float]]
    late_gain: list[float | None]
    theory_loss: list[float | None]
    theory_critical: float | None
    inferred: dict[str, list[bool]] = {}  # width -> a search's verdicts at seeds not trained

    @property
    def loss_mean(self) -> np.ndarray:
        return np.array([np.mean(v) for v in self.losses])

    @property
    def loss_std(self) -> np.ndarray:
        return np.array([np.std(v) for v in self.losses])

    @property
    def score_mean(self) -> np.ndarray:
        return np.array([np.mean(v) for v in self.scores])

    def learned(self, measure: Measure) -> np.ndarray:
        """Fraction of seeds that learned the rare task, per width."""
        return np.array([np.mean([measure.learned(s) for s in v]) for v in self.scores])


def finished(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.state == "FINISHED"]


def scaling_curves(rows: list[Row], measure: Measure,
                   late_gains: dict[str, float] | None = None) -> list[Curve]:
    """The curves of the finished rows, by task, then frequency from frequent to rare."""
    late_gains = late_gains or {}
    groups: dict[tuple, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in finished(rows):
        p = row.params
        groups[(p["task"], float(p["frequency"]))][p["width"]].append(row)
    inferred: dict[tuple, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.inferred is not None:
            p = row.params
            inferred[(p["task"], float(p["frequency"]))][p["width"]].append(row.inferred)
    curves = []
    for (task, frequency), by_width in sorted(groups.items(), key=lambda g: (g[0][0], -g[0][1])):
        widths = sorted(by_width, key=width_order)
        seeds = [by_width[w] for w in widths]
        gains = [[late_gains[r.run_id] for r in rs if r.run_id in late_gains] for rs in seeds]
        theory = [[r.metrics["theory/rare/loss"] for r in rs if "theory/rare/loss" in r.metrics]
                  for rs in seeds]
        critical = [r.metrics["theory/critical_width"] for rs in seeds for r in rs
                    if "theory/critical_width" in r.metrics]
        curves.append(Curve(
            task=task, frequency=frequency, widths=widths,
            sizes=[width_order(w) for w in widths],
            losses=[[r.metrics[measure.loss] for r in rs] for rs in seeds],
            scores=[[r.metrics[measure.score] for r in rs] for rs in seeds],
            late_gain=[float(np.mean(g)) if g else None for g in gains],
            theory_loss=[float(np.mean(t)) if t else None for t in theory],
            theory_critical=critical[0] if critical else None,
            inferred=dict(inferred[(task, frequency)]),
        ))
    return curves


def late_gain(steps, values, tail: float = 0.2, lower_is_better: bool = True) -> float:
    """How much a metric still improved over the last `tail` of training: a run whose metric
    has flattened gains nothing from more of the same data."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    order = np.argsort(steps)
    steps, values = steps[order], values[order]
    start = np.searchsorted(steps, (1.0 - tail) * steps[-1])
    gain = values[min(start, len(values) - 1)] - values[-1]
    return float(gain if lower_is_better else -gain)


def grid_params(planned: Iterable[dict]) -> dict[str, str]:
    """A sweep's run params from its planned points' (`grid.width` = "4, 8, 16", ...): each
    axis' values in order, and `grid.points`: how many."""
    values, points = defaultdict(set), 0
    for params in planned:
        points += 1
        for axis in AXES:
            values[axis].add(str(params[axis]))
    order = {"width": width_order, "frequency": lambda f: -float(f), "seed": int}
    return {**{f"grid.{axis}": ", ".join(sorted(values[axis], key=order.get(axis, str)))
               for axis in AXES}, "grid.points": str(points)}


OPEN = "?"  # N*(f) where a width narrower than any learned one has no verdict (failed, not run)


def critical_table(rows: list[Row], measure: Measure) -> dict[tuple[str, int, float], str | None]:
    """N*(f) per (task, seed, frequency): the narrowest width learned, finished or inferred by
    a search (None: none learned; `OPEN`: a narrower width, or every one, has no verdict, so a
    failed point never moves N* to the next width). A grid sweep and a search of it give the
    same table."""
    table: dict[tuple[str, int, float], str | None] = {}
    for row in sorted(rows, key=lambda r: width_order(r.params["width"])):
        p = row.params
        key = (p["task"], int(p["seed"]), float(p["frequency"]))
        learned = row.inferred if row.state != "FINISHED" else \
            measure.learned(row.metrics[measure.score]) if measure.score in row.metrics else None
        if table.get(key) is None:  # no narrower width learned, none open
            table[key] = OPEN if learned is None else p["width"] if learned else None
    return table
