"""Reading a sweep back from MLflow: one row per grid point, its state and final metrics.

MLflow keeps each metric's latest value (largest step) on the run, so the final metrics are
one search away; the per-run `last_step` tag gives progress without reading histories.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow import MlflowClient

from tracking.runs import experiment_id, trial_runs

class UnknownSweep(LookupError):
    """No experiment of that name in the tracking store."""


@dataclass
class Row:
    key: str
    run_id: str
    state: str
    step: int
    params: dict
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
            metrics=dict(run.data.metrics))
        for run in trial_runs(client, experiment)
    ]
    return sorted(rows, key=lambda row: row.sort_key)
