"""Metric histories of a trial's runs, logged in batches, each step exactly once.

A trial buffers its members' metrics and flushes them before it reports a checkpoint, so every
step up to a checkpoint is stored before that checkpoint exists. After a restart the trial
replays the steps past its checkpoint; the `last_step` tag, written in the same batch as the
metrics, tells the logger which of those are stored already, so none is logged twice.
"""

from __future__ import annotations

import logging
import time

from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus, RunTag

BATCH_LIMIT = 1000  # MLflow's log_batch accepts at most 1000 metrics per call
log = logging.getLogger(__name__)


class RunLogger:
    """Buffers metrics for a set of runs and writes them with `flush`."""

    def __init__(self, client: MlflowClient, run_ids: list[str], retry_for_s: float = 600.0):
        self.client = client
        self.run_ids = list(run_ids)
        self.retry_for_s = retry_for_s
        self.stored_step = {run_id: int(client.get_run(run_id).data.tags.get("last_step", -1))
                            for run_id in self.run_ids}
        self.buffer: dict[str, list[Metric]] = {run_id: [] for run_id in self.run_ids}
        self.pending_step = dict(self.stored_step)

    def log(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        if step <= self.stored_step[run_id]:
            return  # replayed after a restart: already stored
        now = int(time.time() * 1000)
        self.buffer[run_id].extend(Metric(k, float(v), now, step) for k, v in metrics.items())
        self.pending_step[run_id] = max(self.pending_step[run_id], step)

    def flush(self) -> None:
        for run_id in self.run_ids:
            metrics, step = self.buffer[run_id], self.pending_step[run_id]
            if not metrics:
                continue
            for start in range(0, len(metrics), BATCH_LIMIT):
                last = start + BATCH_LIMIT >= len(metrics)
                tags = [RunTag("last_step", str(step))] if last else []
                self._retry(self.client.log_batch, run_id,
                            metrics=metrics[start:start + BATCH_LIMIT], tags=tags)
            self.buffer[run_id] = []
            self.stored_step[run_id] = step

    def set_status(self, status: RunStatus | int) -> None:
        name = RunStatus.to_string(status)
        for run_id in self.run_ids:
            if name == "FINISHED":
                self._retry(self.client.set_terminated, run_id, name)
            else:
                self._retry(self.client.update_run, run_id, status=name)

    def _retry(self, call, *args, **kwargs):
        """Keep trying while the store is away: training goes on, nothing is dropped."""
        deadline, wait = time.monotonic() + self.retry_for_s, 0.5
        while True:
            try:
                return call(*args, **kwargs)
            except Exception as err:  # the store's errors vary by backend
                if time.monotonic() > deadline:
                    raise
                log.warning("MLflow %s failed (%s); retrying in %.1fs", call.__name__, err, wait)
                time.sleep(wait)
                wait = min(wait * 2, 30.0)
