"""Metric histories of a trial's runs: logged in batches, each step exactly once, none lost.

A trial buffers its members' metrics and stores them every few seconds (so a person watching
the sweep sees them move, `flush_if_due`) and before each checkpoint. Whatever
could not be stored (the tracking server is away) goes into the checkpoint itself (`unstored`)
and is given back to the logger on a restart, so training goes on through an outage and no
metric is lost with the process. A run is marked FINISHED only after all of its metrics are
stored (`finish` waits for the store).

Every batch carries a `last_step` tag, written in the same call as its metrics; the logger
drops what is at or below it before writing. That is what keeps a step from being stored twice
when a restarted trial replays the steps past its checkpoint, or when a request was stored but
its answer lost.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus, RunTag

from tracking.runs import quick_requests

BATCH_LIMIT = 1000  # MLflow's log_batch accepts at most 1000 metrics per call
FLUSH_EVERY_S = 5.0  # between stores while training: what `sweeps status --watch` sees move
FLUSH_SHARE = 0.05  # ... or rarer, so that storing takes at most this share of the time
log = logging.getLogger(__name__)
T = TypeVar("T")

Unstored = list[tuple[str, float, int, int]]  # (key, value, timestamp ms, step)


class RunLogger:
    """Buffers metrics for a set of runs and stores them in step order (`try_flush`, `finish`)."""

    def __init__(self, client: MlflowClient, run_ids: list[str],
                 unstored: dict[str, Unstored] | None = None):
        self.client = client
        self.buffer: dict[str, list[Metric]] = {run_id: [] for run_id in run_ids}
        for run_id, metrics in (unstored or {}).items():
            self.buffer[run_id] = [Metric(*m) for m in metrics]
        self.stored_step: dict[str, int] = {}  # known `last_step` tags; missing = ask first
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
        self.try_flush(whole_steps_only=True)
        took = time.monotonic() - now
        self.next_flush = time.monotonic() + max(FLUSH_EVERY_S, took / FLUSH_SHARE)

    def set_status(self, status: RunStatus | int) -> None:
        """Write the runs' status with the next flush."""
        self.status = RunStatus.to_string(status)

    def unstored(self) -> dict[str, Unstored]:
        """What is not stored yet, in a form a checkpoint can hold."""
        return {run_id: [(m.key, m.value, m.timestamp, m.step) for m in metrics]
                for run_id, metrics in self.buffer.items() if metrics}

    def try_flush(self, whole_steps_only: bool = False) -> bool:
        """One attempt to store everything buffered; False (and nothing lost) if the store
        is away. Quick requests, so training is not held up by MLflow's own retries.
        `whole_steps_only` (between checkpoints) keeps each run's newest step back: a loop may
        still log more of it (OLMo logs a step's batch metrics, then its evaluation), and once
        `last_step` names a step, what comes later for it would be taken for a replay."""
        try:
            with quick_requests():
                for run_id in self.buffer:
                    self._store(run_id, whole_steps_only)
                if self.status:
                    for run_id in self.buffer:
                        self._write_status(run_id, self.status)
                    self.status = None
        except Exception as err:  # the store's errors vary by backend: REST, SQL, OS
            self.stored_step.clear()  # a request may have landed without its answer
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

    def _store(self, run_id: str, whole_steps_only: bool = False) -> None:
        held = []
        if whole_steps_only and self.buffer[run_id]:
            newest = max(m.step for m in self.buffer[run_id])
            held = [m for m in self.buffer[run_id] if m.step == newest]
            self.buffer[run_id] = [m for m in self.buffer[run_id] if m.step != newest]
        try:
            if run_id not in self.stored_step:
                tags = self.client.get_run(run_id).data.tags
                self.stored_step[run_id] = int(tags.get("last_step", -1))
            todo = [m for m in self.buffer[run_id] if m.step > self.stored_step[run_id]]
            for start in range(0, len(todo), BATCH_LIMIT):
                chunk, rest = todo[start:start + BATCH_LIMIT], todo[start + BATCH_LIMIT:]
                # The tag claims only whole steps: a step split across batches counts when
                # its last part is stored.
                done = chunk[-1].step - (1 if rest and rest[0].step == chunk[-1].step else 0)
                self.client.log_batch(run_id, metrics=chunk,
                                      tags=[RunTag("last_step", str(done))])
                self.stored_step[run_id], self.buffer[run_id] = done, rest
            self.buffer[run_id] = []
        finally:
            self.buffer[run_id] = self.buffer[run_id] + held

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
