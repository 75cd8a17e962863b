"""What a training loop talks to: a `Tracker` (levanter's seam), never MLflow itself.

A loop calls `log` with each step's metrics, `save` into every checkpoint folder it writes,
`log_model` and `log_table` once a grid point is trained, and `finish` at its end. The outage
protocol lives here, once: `save` tries to store what is buffered and writes whatever the
store did not take into the checkpoint folder, a restart hands that folder back to
`open_tracker`, and `finish` marks the runs FINISHED only after every metric is stored. A
worker that logs no runs (ranks other than 0 of a one-point trial) gets a `NoopTracker`, so
loops have no `if tracker:` branch.
Metrics are also stored every few seconds between checkpoints, so a person watching the sweep
sees them move. The runs themselves are made as a trial starts (`open_runs`), so each starts
when its training does.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Mapping

from tracking.logged_model import LoggedModel

UNSTORED_FILE = "unstored-{run_id}.json"  # per run: metrics the store had not taken


class Tracker:
    """The no-op tracker, and the interface every tracker has."""

    def log(self, run_id: str, step: int, metrics: Mapping[str, float]) -> None:
        """Metrics of one grid point's run at a training step."""

    def save(self, folder: Path) -> None:
        """At a checkpoint: store what can be stored, keep the rest in `folder`."""

    def log_model(self, run_id: str, model: LoggedModel) -> None:
        """The run's trained model; waits for the store if it is away."""

    def log_table(self, run_id: str, path: str, table: dict) -> None:
        """A table as the run's artifact `path` (MLflow's table JSON: `columns`, `data`);
        written whole, so a retry replaces it. Waits for the store if it is away."""

    def finish(self) -> None:
        """Everything stored, the runs FINISHED; raises if the store stays away."""


class NoopTracker(Tracker):
    """A worker that logs no runs."""


class MlflowTracker(Tracker):
    def __init__(self, tracking_uri: str, run_ids: list[str], checkpoint: Path | None = None):
        from mlflow import MlflowClient
        from mlflow.entities import RunStatus

        from tracking.logger import RunLogger

        unstored = {}
        for run_id in run_ids if checkpoint is not None else []:
            path = checkpoint / UNSTORED_FILE.format(run_id=run_id)
            if path.is_file():
                unstored[run_id] = [tuple(m) for m in json.loads(path.read_text())]
        self.logger = RunLogger(MlflowClient(tracking_uri), run_ids, unstored)
        self.logger.set_status(RunStatus.RUNNING)
        self.logger.try_flush()  # RUNNING at once if the store answers

    def log(self, run_id: str, step: int, metrics: Mapping[str, float]) -> None:
        self.logger.log(run_id, step, metrics)
        self.logger.flush_if_due()

    def save(self, folder: Path) -> None:
        self.logger.try_flush()
        for run_id, metrics in self.logger.unstored().items():
            (folder / UNSTORED_FILE.format(run_id=run_id)).write_text(json.dumps(metrics))

    def log_model(self, run_id: str, model: LoggedModel) -> None:
        from tracking.logger import keep_trying
        from tracking.registry import log_trained_model

        keep_trying(partial(log_trained_model, self.logger.client, run_id, model))

    def log_table(self, run_id: str, path: str, table: dict) -> None:
        from tracking.logger import keep_trying

        keep_trying(partial(self.logger.client.log_dict, run_id, table, path))

    def finish(self) -> None:
        self.logger.finish()


def open_tracker(tracking_uri: str, run_ids: list[str], checkpoint: Path | None) -> Tracker:
    """The tracker of a worker logging `run_ids` (none: a no-op), resumed from `checkpoint`."""
    return MlflowTracker(tracking_uri, run_ids, checkpoint) if run_ids else NoopTracker()


def open_runs(tracking_uri: str, experiment: str, parent: str, planned: list) -> dict[str, str]:
    """The runs of a trial's grid points (`tracking.runs.PlannedRun`s), made as its training
    starts or found again on a retry; key -> run id. Waits for the store if it is away."""
    from mlflow import MlflowClient

    from tracking.logger import keep_trying
    from tracking.runs import ensure_runs

    client = MlflowClient(tracking_uri)
    return keep_trying(partial(ensure_runs, client, experiment, planned, parent))
