"""Metric histories of a trial's runs: logged in batches, each step exactly once, none lost.

A trial buffers its members' metrics and stores them every few seconds (so a person watching
the sweep sees them move, `flush_if_due`) and before each checkpoint. Whatever
could not be stored (the tracking server is away) goes into the checkpoint itself (`unstored`)
and is given back to the logger on a restart, so training goes on through an outage and no
metric is lost with the process. A run is marked FINISHED only after all of its metrics are
stored (`finish` waits for the store).

What is stored is known from the stored metrics themselves, never from a tag alone: MLflow
commits a `log_batch`'s metrics in one transaction and its tags in a later one (behind a
tracking server, and in any SQL store written through MLflow's API), so a process killed
between the two leaves metrics whose tag does not name them (the embedded sqlite store is
written by `tracking.metric_rows`, metrics and tag in one transaction; the cursor does not
count on it). Batches go out in log order, so what a run has stored is a prefix of what it
logged; its `Cursor` (the newest stored step and which keys of it are in) is read back from
the run's latest metrics whenever it is not known (a restart, a lost answer), and the logger
drops what the cursor covers before writing. That is what keeps a step from being stored
twice when a restarted trial replays the steps past its checkpoint, or when a request was
stored but its answer lost. Each batch also writes a `last_step` tag (the newest whole step
stored), the run's progress for `sweeps status`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus, RunTag

from tracking.metric_rows import batch_writer
from tracking.runs import quick_requests

BATCH_LIMIT = 999  # and the `last_step` tag: the 1000 MLflow takes in one store call
FLUSH_EVERY_S = 5.0  # between stores while training: what `sweeps status --watch` sees move
FLUSH_SHARE = 0.05  # ... or rarer, so that storing takes at most this share of the time
log = logging.getLogger(__name__)
T = TypeVar("T")

Unstored = list[tuple[str, float, int, int]]  # (key, value, timestamp ms, step)


@dataclass(frozen=True)
class Cursor:
    """How far a run's history is stored: every step before `step`, and `keys` of it."""

    step: int = -1
    keys: frozenset[str] = frozenset()

    def covers(self, metric: Metric) -> bool:
        return metric.step < self.step or (metric.step == self.step and metric.key in self.keys)

    def after(self, chunk: list[Metric]) -> Cursor:
        """The cursor once `chunk` (metrics past this cursor, in log order) is stored."""
        step = chunk[-1].step
        keys = {m.key for m in chunk if m.step == step}
        return Cursor(step, frozenset(keys | (self.keys if step == self.step else set())))

    @classmethod
    def stored(cls, client: MlflowClient, run_id: str) -> Cursor:
        """Read back from the run's latest metrics (each key's newest stored step)."""
        latest = client.get_run(run_id).data.to_proto().metrics
        step = max((m.step for m in latest), default=-1)
        return cls(step, frozenset(m.key for m in latest if m.step == step))


class RunLogger:
    """Buffers metrics for a set of runs and stores them in step order (`try_flush`, `finish`)."""

    def __init__(self, client: MlflowClient, run_ids: list[str],
                 unstored: dict[str, Unstored] | None = None):
        self.client = client
        self.write = batch_writer(client)  # log_batch, or rows straight into sqlite
        self.buffer: dict[str, list[Metric]] = {run_id: [] for run_id in run_ids}
        for run_id, metrics in (unstored or {}).items():
            self.buffer[run_id] = [Metric(*m) for m in metrics]
        self.stored: dict[str, Cursor] = {}  # known cursors; missing = read back first
        self.status: str | None = None  # a status still to be written
        self.failing_since: float | None = None
        self.next_flush = time.monotonic() + FLUSH_EVERY_S

    def log(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.buffer[run_id].extend(Metric(k, float(v), now, step) for k, v in metrics.items())

    def flush_if_due(self) -> None:
        """Store what is buffered if it is time; while the store is away only checkpoints
        try (`try_flush`), so training is not held up by one timeout after another."""
        now = time.monotonic()
        if now < self.next_flush or self.failing_since is not None:
            return
        self.try_flush()
        took = time.monotonic() - now
        self.next_flush = time.monotonic() + max(FLUSH_EVERY_S, took / FLUSH_SHARE)

    def set_status(self, status: RunStatus | int) -> None:
        """Write the runs' status with the next flush."""
        self.status = RunStatus.to_string(status)

    def unstored(self) -> dict[str, Unstored]:
        """What is not stored yet, in a form a checkpoint can hold."""
        return {run_id: [(m.key, m.value, m.timestamp, m.step) for m in metrics]
                for run_id, metrics in self.buffer.items() if metrics}

    def try_flush(self) -> bool:
        """One attempt to store everything buffered; False (and nothing lost) if the store
        is away. Quick requests, so training is not held up by MLflow's own retries."""
        try:
            with quick_requests():
                for run_id in self.buffer:
                    self._store(run_id)
                if self.status:
                    for run_id in self.buffer:
                        self._write_status(run_id, self.status)
                    self.status = None
        except Exception as err:  # the store's errors vary by backend: REST, SQL, OS
            self.stored.clear()  # a request may have landed without its answer
            if self.failing_since is None:
                self.failing_since = time.monotonic()
                log.warning("MLflow is unreachable (%s); training goes on, metrics are kept "
                            "until it is back", err)
            return False
        if self.failing_since is not None:
            log.warning("MLflow is back after %.0f s; metrics stored",
                        time.monotonic() - self.failing_since)
            self.failing_since = None
        return True

    def finish(self, wait_s: float = 600.0) -> None:
        """Store everything, then mark the runs FINISHED; wait up to `wait_s` for the store.
        Raises if it stays away: the trial fails and its retry keeps the metrics."""
        self.set_status(RunStatus.FINISHED)
        keep_trying(self._flush_or_raise, wait_s)

    def _flush_or_raise(self) -> None:
        if not self.try_flush():
            raise ConnectionError(f"{sum(map(len, self.buffer.values()))} metrics unstored")

    def _store(self, run_id: str) -> None:
        if run_id not in self.stored:
            self.stored[run_id] = Cursor.stored(self.client, run_id)
        todo = [m for m in self.buffer[run_id] if not self.stored[run_id].covers(m)]
        for start in range(0, len(todo), BATCH_LIMIT):
            chunk, rest = todo[start:start + BATCH_LIMIT], todo[start + BATCH_LIMIT:]
            # The tag claims only whole steps: a step split across batches counts when its
            # last part is stored.
            done = chunk[-1].step - (1 if rest and rest[0].step == chunk[-1].step else 0)
            self.write(run_id, metrics=chunk, tags=[RunTag("last_step", str(done))])
            self.stored[run_id] = self.stored[run_id].after(chunk)
            self.buffer[run_id] = rest
        self.buffer[run_id] = []

    def _write_status(self, run_id: str, status: str) -> None:
        if status == "FINISHED":
            self.client.set_terminated(run_id, status)
        else:
            self.client.update_run(run_id, status=status)


def keep_trying(call: Callable[[], T], wait_s: float = 600.0) -> T:
    """Call until it succeeds, backing off while the store is away; raise after wait_s."""
    deadline, pause = time.monotonic() + wait_s, 0.5
    while True:
        try:
            with quick_requests():
                return call()
        except Exception as err:  # the store's errors vary by backend: REST, SQL, OS
            if time.monotonic() > deadline:
                raise RuntimeError(f"MLflow unreachable for {wait_s:.0f} s: {err}") from err
        time.sleep(pause)  # backoff while the store is away, not synchronisation
        pause = min(pause * 2, 10.0)
