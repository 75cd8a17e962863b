"""Reading a sweep back from MLflow: one row per grid point, its state and final metrics, and
the scaling curves they make: per (task, frequency), the rare metric against width.

MLflow keeps each metric's latest value (largest step) on the run, so the final metrics are
one search away; the per-run `last_step` tag gives progress without reading histories.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from mlflow import MlflowClient
from pydantic import BaseModel

from tracking.fits import late_gain
from tracking.runs import experiment_id, trial_runs

OLMO_LEARNED_ACC = 0.9  # rare/test_acc that counts as learned: well above cmp's chance (0.5)


class UnknownSweep(LookupError):
    """No experiment of that name in the tracking store."""


@dataclass
class Row:
    key: str
    run_id: str
    state: str
    step: int
    params: dict
    trainable: str
    metrics: dict = field(default_factory=dict)

    @property
    def sort_key(self) -> tuple:
        """Task, then frequency from frequent to rare, seed, and width from small to large."""
        p = self.params
        return (p["task"], -float(p["frequency"]), int(p["seed"]), width_order(p["width"]))


def width_order(width: str) -> float:
    """Widths are integers (synthetic) or ladder names such as '20M' (OLMo)."""
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}.get(width[-1:].upper(), 1.0)
    return float(width[:-1] if scale != 1.0 else width) * scale


def read_rows(client: MlflowClient, sweep: str) -> list[Row]:
    experiment = experiment_id(client, sweep)
    if experiment is None:
        raise UnknownSweep(sweep)
    rows = [
        Row(key=run.data.tags["trial_key"], run_id=run.info.run_id, state=run.info.status,
            step=int(run.data.tags.get("last_step", -1)), params=run.data.params,
            trainable=run.data.tags["trainable"], metrics=dict(run.data.metrics))
        for run in trial_runs(client, experiment)
    ]
    return sorted(rows, key=lambda row: row.sort_key)


class Measure(BaseModel):
    """Which metrics make a sweep's scaling curves: `loss` is fitted against width, `score`
    decides whether the rare task is learned (on the right side of `threshold`)."""

    loss: str
    score: str
    threshold: float
    lower_is_better: bool

    def learned(self, score: float) -> bool:
        return score <= self.threshold if self.lower_is_better else score >= self.threshold


def measure_for(rows: list[Row]) -> Measure:
    """CONTRACTS 4's metrics of the sweep's trainable; the synthetic threshold as it ran."""
    if rows[0].trainable == "olmo":
        return Measure(loss="rare/test_loss", score="rare/test_acc",
                       threshold=OLMO_LEARNED_ACC, lower_is_better=False)
    return Measure(loss="rare/loss", score="rare/loss",
                   threshold=float(rows[0].params["learned_threshold"]), lower_is_better=True)


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
        ))
    return curves


def read_late_gains(client: MlflowClient, rows: list[Row], measure: Measure) -> dict[str, float]:
    """run id -> how much the score improved over the last fifth of training, per finished
    run: one history query per run."""
    gains = {}
    for row in finished(rows):
        history = client.get_metric_history(row.run_id, measure.score)
        if len(history) > 1:
            gains[row.run_id] = late_gain([m.step for m in history], [m.value for m in history],
                                          lower_is_better=measure.lower_is_better)
    return gains
