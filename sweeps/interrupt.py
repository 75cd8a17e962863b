"""Ctrl-C during `sweeps run`: said at once in one line, then a stop Tune carries out calmly.

Tune's own SIGINT handler logs a paragraph, then stops its loop, saves its state and stops the
trials (seconds, on a loaded laptop), and logs two more. Here SIGINT is ours: it prints the one
line a person needs and asks Tune to stop through SIGUSR1, the signal Tune always listens to
for the same graceful stop; Tune's paragraphs about it are kept off the screen. Grid points
whose training was cut off are marked: their runs end KILLED with an `interrupted_at` tag, so
neither `sweeps status` nor MLflow's UI shows them RUNNING. A second Ctrl-C skips the wait for
Tune (resume then starts points from their last checkpoints); the runs are marked all the same.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

INTERRUPTED_TAG = "interrupted_at"  # on a grid point's run: when a Ctrl-C cut it off (ISO)
TUNE_LOGGER = "ray.tune.tune"  # where Tune logs about a stop signal and unfinished trials


class Interrupted(KeyboardInterrupt):
    """The sweep was stopped by Ctrl-C after saving its state: `sweeps resume` finishes it."""

    def __init__(self, sweep: str):
        super().__init__(sweep)
        self.sweep = sweep


class Stop:
    """Whether Ctrl-C was pressed, and the line it printed."""

    def __init__(self, sweep: str, say: Callable[[str], None], line: Callable[[], str]):
        self.sweep, self.say, self.line = sweep, say, line
        self.requested = threading.Event()

    def __call__(self, signum, frame) -> None:
        if self.requested.is_set():  # the second Ctrl-C: do not wait for the state to save
            raise KeyboardInterrupt
        self.requested.set()
        self.say(self.line())
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's graceful stop, handled after this returns

    def filter(self, record: logging.LogRecord) -> bool:
        """Tune's records once stopping: what they say is in our one line."""
        return not self.requested.is_set()

    def raise_if_requested(self) -> None:
        if self.requested.is_set():
            raise Interrupted(self.sweep)


@contextmanager
def catching(sweep: str, say: Callable[[str], None], line: Callable[[], str]) -> Iterator[Stop]:
    """Ctrl-C while the block runs (Tune's `fit`) becomes a `Stop`; outside, it is as before.
    Only the main thread can own a signal: elsewhere (a notebook's worker thread) Tune's own
    handling stays."""
    stop = Stop(sweep, say, line)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    saved = signal.signal(signal.SIGINT, stop)
    saved_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Tune keeps SIGUSR1 for itself
    logger = logging.getLogger(TUNE_LOGGER)
    logger.addFilter(stop.filter)
    try:
        yield stop
    finally:
        logger.removeFilter(stop.filter)
        signal.signal(signal.SIGINT, saved)
        if saved_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = saved_env


def line(sweep: str, snap) -> str:
    """`stopping: 2 points checkpointed, `sweeps resume tiny` finishes them`, from the view's
    last look at the sweep (a `progress.Snapshot`, None before its first)."""
    if snap is None:
        return f"stopping: `sweeps resume {sweep}` finishes the sweep"
    _, running, _ = snap.counts
    waiting = snap.total - snap.decided - running
    rest = f" and the {waiting} not started" if waiting > 0 and running else ""
    them = "them" if running else f"the {waiting} not started"
    return (f"stopping: {running} point{'s' * (running != 1)} checkpointed, "
            f"`sweeps resume {sweep}` finishes {them}{rest}")


def mark_interrupted(client, runs: list, errored: set[str]) -> None:
    """Runs the stop cut off (still RUNNING, their trial not failed) end KILLED, not
    RUNNING, tagged with when."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for run in runs:
        if run.info.status == "RUNNING" and run.data.tags["trial_key"] not in errored:
            client.set_tag(run.info.run_id, INTERRUPTED_TAG, now)
            client.set_terminated(run.info.run_id, "KILLED")
