"""Watching a sweep: what `sweeps run` shows while it trains, and `sweeps status --watch`
shows from any other terminal.

Both read the tracking store (through `tracking.query`, so watching imports neither MLflow,
Ray nor torch), because the store is the one place another terminal can see: trials store
their metrics every few seconds (`tracking.logger`), so the view moves with them. In a
terminal it is a live view: one bar over grid points (k of N, elapsed, remaining), one line
per running trial with its points and their scores, a line per trial as it finishes (learned
k of n, with the theory's). Without one (CI, `ray job logs`) it prints plain lines instead: a
line per finished trial and a progress line when the counts change.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from trainables import catalog
from tracking.curves import Measure, width_order
from tracking.errors import TrackingError
from tracking.layout import (AXES, HEARTBEAT_TAG, KIND_SWEEP, KIND_TRIAL, SEARCH_FILE,
                             SEARCH_TAG, TRIAL_TAG, tag_seconds)
from tracking.layout import axis_label, run_name, silent
from tracking.query import Reader, RunRecord, read_sweep

THEORY_LEARNED = "theory/rare/learned"  # where a trainable logs its theory's verdict
TERMINAL = ("FINISHED", "FAILED", "KILLED")
POINTS_SHOWN = 6  # per running trial line
BAR_MIN, BAR_MAX = 10, 30  # the progress bar's width, in columns
POLL_SHARE = 0.02  # of a core, at most, that watching takes (polls rarer if slower)


@dataclass(frozen=True)
class Point:
    """A grid point's run as the view shows it."""

    label: str  # its axes within its trial (`f=0.03`), or its run name
    state: str
    step: int
    steps: int | None  # expected to train (`Trainable.horizon`): the share done is of these
    score: float | None
    learned: bool | None
    theory: bool | None
    start: float | None  # seconds since the epoch
    end: float | None

    @property
    def done(self) -> float:
        """Its share of its training done, 0..1."""
        if self.state == "FINISHED":
            return 1.0
        return min(1.0, max(0, self.step) / self.steps) if self.steps else 0.0


@dataclass(frozen=True)
class Trial:
    """The grid points one Tune trial trains (one, or a pack)."""

    name: str
    points: list[Point]

    @property
    def state(self) -> str:
        states = {p.state for p in self.points}
        if states <= {"FINISHED"}:
            return "FINISHED"
        if states <= set(TERMINAL):
            return "INTERRUPTED" if "KILLED" in states and "FAILED" not in states else "FAILED"
        return "RUNNING"

    @property
    def seconds(self) -> float:
        starts = [p.start for p in self.points if p.start]
        ends = [p.end or time.time() for p in self.points]
        return max(ends) - min(starts) if starts else 0.0


@dataclass(frozen=True)
class Snapshot:
    sweep: str
    total: int  # grid points
    status: str | None  # the parent run's: RUNNING while the sweep runs
    launched_at: float | None  # when this run or resume of it started (seconds)
    trials: list[Trial]
    measure_name: str
    heard_at: float | None = None  # the driver's last heartbeat (seconds; None: never)
    inferred: int = 0  # a search's points decided without training: done, never run

    def count(self, state: str) -> int:
        return sum(p.state == state for t in self.trials for p in t.points)

    @property
    def counts(self) -> tuple[int, int, int]:
        """Finished, running, failed grid points (a point Ctrl-C cut off is `interrupted`)."""
        return self.count("FINISHED"), self.count("RUNNING"), self.count("FAILED")

    @property
    def interrupted(self) -> int:
        return self.count("KILLED")

    @property
    def done(self) -> float:
        """The sweep's share of training done, by steps where runs say how many."""
        trained = sum(p.done for t in self.trials for p in t.points)
        return (trained + self.inferred) / max(1, self.total)

    @property
    def decided(self) -> int:
        """Finished grid points and, for a search, the points it inferred."""
        return self.count("FINISHED") + self.inferred

    @property
    def silent(self) -> bool:
        """RUNNING, but its driver killed outright (`tracking.layout.silent`)."""
        return silent(self.status, self.heard_at)

    @property
    def ended(self) -> bool:
        """The sweep's driver is done with it, or gone (or, without a parent run, every
        point is)."""
        if self.status is not None:
            return self.status != "RUNNING" or self.silent
        points = [p for t in self.trials for p in t.points]
        return len(points) == self.total and all(p.state in TERMINAL for p in points)


def snapshot(reader: Reader, sweep: str, parent: RunRecord | None, planned: dict,
             experiment: str) -> Snapshot:
    """The sweep now, from its runs (the plan, read once, gives its size)."""
    parents = reader.runs(experiment, KIND_SWEEP) if parent else []
    parent = parents[0] if parents else parent
    # A run is made, then given its params: one caught in between is not shown yet.
    runs = [run for run in reader.runs(experiment, KIND_TRIAL) if set(AXES) <= set(run.params)]
    measure = _measure(runs)
    by_trial: dict[str, list[RunRecord]] = {}
    for run in sorted(runs, key=_grid_order):
        by_trial.setdefault(run.tags.get(TRIAL_TAG, run.name), []).append(run)
    trials = [Trial(name, _points(members, measure)) for name, members in by_trial.items()]
    trials.sort(key=lambda t: -width_order(by_trial[t.name][0].params.get("width", "0")))
    launched = parent and parent.tags.get("launched_at")
    heard = parent and parent.tags.get(HEARTBEAT_TAG)
    return Snapshot(sweep, total=max(len(planned), len(runs)),
                    status=parent.status if parent else None,
                    launched_at=tag_seconds(launched) if launched else None, trials=trials,
                    measure_name=measure.score if measure else "",
                    heard_at=tag_seconds(heard) if heard else None,
                    inferred=_inferred(reader, parent))


def _inferred(reader: Reader, parent: RunRecord | None) -> int:
    """How many points a search has inferred so far (its `search.json`; a grid: none)."""
    if parent is None or SEARCH_TAG not in parent.tags:
        return 0
    return json.loads(reader.artifact_text(parent.run_id, SEARCH_FILE))["inferred"]


def _grid_order(run: RunRecord) -> tuple:
    """Frequent to rare, then by seed and task: the order of the CLI's tables."""
    p = run.params
    return -float(p["frequency"]), p["seed"], p["task"]


def _measure(runs: list[RunRecord]) -> Measure | None:
    for run in runs:
        if "trainable" in run.tags:
            return _trainable(run.tags["trainable"]).measure(run.params)
    return None


def _horizon(run: RunRecord) -> int | None:
    name = run.tags.get("trainable")
    return _trainable(name).horizon(run.params) if name else None


@lru_cache
def _trainable(name: str):
    return catalog.get(name)  # an entry-point scan: once, not per run and poll


def _points(runs: list[RunRecord], measure: Measure | None) -> list[Point]:
    """A trial's points, labelled by the axes that differ between them (its packed axes)."""
    varying = [a for a in AXES if len({r.params.get(a) for r in runs}) > 1]
    points = []
    for run in runs:
        p = run.params
        label = " ".join(axis_label(a, p[a]) for a in varying) if varying else run_name(p)
        score = run.metrics.get(measure.score) if measure else None
        theory = run.metrics.get(THEORY_LEARNED)
        points.append(Point(
            label=label, state=run.status, step=int(run.tags.get("last_step", -1)),
            steps=_horizon(run),
            score=score, learned=None if score is None else measure.learned(score),
            theory=None if theory is None else bool(theory),
            start=run.start_time / 1000 if run.start_time else None,
            end=run.end_time / 1000 if run.end_time else None))
    return points


@dataclass
class Rate:
    """Time left, from how fast the share done grew while watched."""

    seen: tuple[float, float] | None = None  # (time, done) when first watched

    def left(self, done: float) -> float | None:
        now = time.time()
        if self.seen is None:
            self.seen = (now, done)
        start, first = self.seen
        if done >= 1.0:
            return 0.0
        if done - first < 1e-6 or now - start < 1.0:
            return None
        return (now - start) * (1.0 - done) / (done - first)


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


def finished_line(trial: Trial, sweep: str) -> str:
    """What a person wants to know when a trial ends: did its points learn the task?"""
    n = len(trial.points)
    what = f"{trial.name}: {n} point{'s' * (n != 1)} in {clock(trial.seconds)}"
    if trial.state == "INTERRUPTED":
        done = sum(p.state == "FINISHED" for p in trial.points)
        return (f"- {what}: interrupted ({done} of {n} finished); `sweeps resume {sweep}` "
                "finishes it")
    if trial.state == "FAILED":
        done = sum(p.state == "FINISHED" for p in trial.points)
        return (f"x {what}: FAILED ({done} of {n} finished); `sweeps resume {sweep}` retries "
                "it from its last checkpoint")
    learned = [p.learned for p in trial.points if p.learned is not None]
    theory = [p.theory for p in trial.points if p.theory is not None]
    verdict = f"learned {sum(learned)} of {len(learned)}" if learned else "finished"
    if theory:
        verdict += f" (theory: {sum(theory)} of {len(theory)})"
    return f"+ {what}: {verdict}"


def status_line(snap: Snapshot, left: float | None) -> str:
    _, running, failed = snap.counts
    elapsed = time.time() - snap.launched_at if snap.launched_at else None
    return (f"{snap.sweep}: {snap.decided}/{snap.total} grid points finished"
            + (f" ({snap.inferred} inferred by the search)" if snap.inferred else "")
            + f", {running} running, {failed} failed"
            + (f", {snap.interrupted} interrupted" if snap.interrupted else "")
            + f" | {clock(elapsed)} elapsed, {clock(left)} left")


def live_view(snap: Snapshot, left: float | None, width: int = 160) -> Group:
    """The bar and its counts on one line (the bar narrower, or the trial count on a line of
    its own, where the terminal is narrow), then a line per running trial."""
    _, running, failed = snap.counts
    elapsed = time.time() - snap.launched_at if snap.launched_at else None
    active = [t for t in snap.trials if t.state == "RUNNING"]
    trouble = ", ".join(f"{n} point{'s' * (n != 1)} {what}" for n, what in
                        ((failed, "failed"), (snap.interrupted, "interrupted")) if n)
    texts = [Text(snap.sweep, style="bold"), Text(f"{snap.decided}/{snap.total} grid points"
                  + (f" ({snap.inferred} inferred)" if snap.inferred else "")),
             Text(f"{clock(elapsed)} elapsed, {clock(left)} left", style="cyan"),
             Text(f"{len(active)} trial{'s' * (len(active) != 1)} running"
                  + (f", {trouble}" if trouble else ""), style="red" if trouble else "dim")]
    room = width - sum(len(t) for t in texts) - len(texts)
    below = room < BAR_MIN  # the trial count goes to the next line
    if below:
        room += len(texts[-1]) + 1
    head = Table.grid(padding=(0, 1))
    head.add_row(texts[0], ProgressBar(total=snap.total, completed=snap.decided,
                                       width=max(BAR_MIN, min(BAR_MAX, room))),
                 *texts[1:-1 if below else None])
    lines = [head, Text("  ").append(texts[-1])] if below else [head]
    pad = max((len(t.name) for t in active), default=0)
    for trial in active:
        done = sum(p.done for p in trial.points) / len(trial.points)
        cells = [f"{p.label} {_score(p.score)}{' L' if p.learned else ''}"
                 for p in trial.points[:POINTS_SHOWN]]
        more = len(trial.points) - POINTS_SHOWN
        lines.append(Text.from_markup(
            f"  [bold]{escape(trial.name.ljust(pad))}[/] {done:4.0%}  "
            f"{escape(snap.measure_name)}: " + escape("  ".join(cells))
            + (f"  (+{more} more)" if more > 0 else "")))
    return Group(*lines)


def _score(value: float | None) -> str:
    """A score as a person compares them: three decimals (a loss of -1e-8 is 0.000)."""
    return "..." if value is None else f"{abs(value) if abs(value) < 5e-4 else value:.3f}"


@dataclass
class Watcher:
    """Polls the store and shows the sweep until `stop` is set (or, `until_ended`, until its
    parent run ends: what `--watch` waits for)."""

    open_reader: Callable[[], Reader]
    sweep: str
    console: Console
    every_s: float = 1.0
    on_counts: Callable[[Snapshot], None] | None = None  # the driver records them
    stop: threading.Event = field(default_factory=threading.Event)
    announced: set = field(default_factory=set)
    rate: Rate = field(default_factory=Rate)
    last: Snapshot | None = None
    printed: tuple[float, tuple | None] = (0.0, None)  # the last plain line: when, counts
    failing: bool = False  # the store did not answer the last poll

    def run(self, until_ended: bool = False) -> Snapshot | None:
        reader = self.open_reader()  # in this thread: a sqlite connection stays in one
        sweep = read_sweep(reader, self.sweep)
        args = (reader, self.sweep, sweep.parent, sweep.planned, sweep.experiment_id)
        live = Live(console=self.console, auto_refresh=False) if self.console.is_terminal \
            else None
        with live or nullcontext():
            while True:
                ended = self.stop.is_set()  # read first: the last poll sees the end
                began = time.monotonic()
                try:
                    snap = snapshot(*args)
                except (TrackingError, sqlite3.Error, OSError) as err:
                    if not self.failing:  # said once; training goes on meanwhile
                        self.say(f"{self.sweep}: the tracking store does not answer "
                                  f"({err}); the view waits for it")
                    self.failing = True
                else:
                    self.failing = False
                    ended = ended or (until_ended and snap.ended)
                    self._show(snap, live, final=ended)
                if ended:
                    return self.last
                # Rarer where a poll is slow (a large sweep, a loaded machine): the view
                # takes at most POLL_SHARE of a core from the trials it shows.
                self.stop.wait(max(self.every_s, (time.monotonic() - began) / POLL_SHARE))

    def _show(self, snap: Snapshot, live: Live | None, final: bool) -> None:
        if self.on_counts and (self.last is None or snap.counts != self.last.counts):
            self.on_counts(snap)
        self.last = snap
        for trial in snap.trials:
            if trial.state != "RUNNING" and trial.name not in self.announced:
                self.announced.add(trial.name)
                self.say(finished_line(trial, snap.sweep))
        left = self.rate.left(snap.done)
        if live is not None:
            live.update(live_view(snap, left, self.console.width), refresh=True)
            return
        at, counts = self.printed
        since = time.time() - at
        if final or since >= 60 or (snap.counts != counts and since >= 10):
            self.say(status_line(snap, left))
            self.printed = (time.time(), snap.counts)

    def say(self, line: str) -> None:
        """A line that stays (above the live view in a terminal), wrapped between words."""
        self.console.print(line, markup=False, highlight=False)


def console() -> Console:
    """Standard output; a live view only where it is a terminal (not under CI or a job)."""
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
