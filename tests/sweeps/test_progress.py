"""The progress view, read from a real sqlite store: what it counts, what it says when a
trial ends, and `sweeps status --watch` following a sweep from another process until it
ends, light (no torch, Ray or MLflow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from mlflow.entities import Metric

from sweeps import cli, progress, summary
from tests.conftest import REPO, wait_for
from tests.sweeps.test_fast_cli import PROBE
from tracking.layout import (HEARTBEAT_TAG, PLAN_FILE, SEARCH_FILE, SEARCH_TAG, TRIAL_TAG,
                             iso_time)
from tracking.query import open_reader, read_sweep
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id, start_sweep_run

POINTS = [(w, f) for w in (2, 12) for f in (0.2, 0.02)]


def params(width: int, frequency: float) -> dict:
    return {"width": str(width), "frequency": str(frequency), "task": "complex", "seed": "0",
            "steps": "100", "learned_threshold": "0.5"}


def key(width: int, frequency: float) -> str:
    return f"width={width},frequency={frequency},task=complex,seed=0"


def train(client, run_id: str, step: int, rare_loss: float, finished: bool) -> None:
    """What a trial stores: metrics with their `last_step`, then FINISHED."""
    client.log_batch(run_id, metrics=[Metric("rare/loss", rare_loss, 0, step),
                                      Metric("theory/rare/learned", 1.0, 0, 0)])
    client.set_tag(run_id, "last_step", str(step))
    if finished:
        client.set_terminated(run_id)


@pytest.fixture
def sweep(store_uri):
    """A sweep of two trials: w2 done (not learned), w12 half-way; its parent RUNNING."""
    client = connect(store_uri)
    experiment = experiment_id(client, "tiny", create=True)
    plan = {"name": "tiny", "trainable": "synthetic", "trials": 2,
            "points": [{"key": key(*p), "params": params(*p)} for p in POINTS]}
    parent = start_sweep_run(client, experiment, "tiny", tags={"launched_at": "0"},
                             files={PLAN_FILE: json.dumps(plan)}, params={})
    runs = {}
    for width in (2, 12):
        runs |= ensure_runs(client, experiment, [
            PlannedRun(key=key(width, f), params=params(width, f), tags={
                "sweep": "tiny", "trainable": "synthetic", TRIAL_TAG: f"w{width} complex"})
            for f in (0.2, 0.02)], parent)
    for f in (0.2, 0.02):
        train(client, runs[key(2, f)], 100, 0.9, finished=True)
    train(client, runs[key(12, 0.2)], 50, 0.1, finished=False)
    return client, parent, runs


def test_snapshot_counts_points_and_says_what_each_finished_trial_learned(sweep, store_uri):
    reader = open_reader(store_uri)
    found = read_sweep(reader, "tiny")
    snap = progress.snapshot(reader, "tiny", found.parent, found.planned, found.experiment_id)
    assert snap.total == 4 and snap.counts == (2, 2, 0) and snap.status == "RUNNING"
    assert snap.done == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert not snap.ended
    by_name = {t.name: t for t in snap.trials}
    assert by_name["w2 complex"].state == "FINISHED" and by_name["w12 complex"].state == "RUNNING"
    assert [p.label for p in by_name["w12 complex"].points] == ["f=0.2", "f=0.02"]
    line = progress.finished_line(by_name["w2 complex"], "tiny")
    assert "learned 0 of 2 (theory: 2 of 2)" in line and line.startswith("+ w2 complex: 2 points")


def test_a_searchs_inferred_points_count_as_finished(sweep, store_uri):
    client, parent, _ = sweep  # as the searcher records them: search.json, and its tag
    client.log_text(parent, json.dumps({"cells": [], "inferred": 1}), SEARCH_FILE)
    client.set_tag(parent, SEARCH_TAG, "critical_width")
    reader = open_reader(store_uri)
    found = read_sweep(reader, "tiny")
    snap = progress.snapshot(reader, "tiny", found.parent, found.planned, found.experiment_id)
    assert snap.counts == (2, 2, 0) and snap.inferred == 1 and snap.decided == 3
    assert snap.done == pytest.approx((1 + 1 + 0.5 + 0 + 1) / 4)
    assert "tiny: 3/4 grid points finished (1 inferred by the search), 2 running" in \
        progress.status_line(snap, None)


def test_status_watch_follows_the_sweep_until_it_ends(sweep, tmp_path, store_uri):
    client, parent, runs = sweep
    watch = subprocess.Popen(
        [sys.executable, "-c", PROBE, "status", "tiny", "--watch", "--tracking-uri",
         store_uri], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reading = threading.Thread(target=lambda: lines.extend(watch.stdout), daemon=True)
    reading.start()
    try:
        wait_for(lambda: any("grid points" in line for line in lines), timeout=120,
                 what="the watcher's first progress line")
        assert any("2/4 grid points finished, 2 running, 0 failed" in line for line in lines)
        assert "workflowType=machine_learning" in lines[0]  # where the runs are in the UI
        assert watch.poll() is None, "it waits for the sweep"
        train(client, runs[key(12, 0.2)], 100, 0.1, finished=True)
        train(client, runs[key(12, 0.02)], 100, 0.7, finished=True)
        client.set_terminated(parent)
        watch.wait(timeout=120)
        reading.join(timeout=10)
    finally:
        watch.kill()
    out, err = "".join(lines), watch.stderr.read()
    assert "+ w12 complex: 2 points" in out and "learned 1 of 2 (theory: 2 of 2)" in out
    assert "4/4 grid points finished, 0 running, 0 failed" in out
    assert json.loads(out.strip().splitlines()[-1]) == {"code": 0, "heavy": []}, err


@pytest.mark.parametrize("iso", [True, False], ids=["iso", "epoch-ms"])
@pytest.mark.parametrize("heard_s_ago, silent", [(None, False), (30, False), (3600, True)])
def test_a_sweep_whose_driver_stopped_beating_is_taken_as_ended(sweep, store_uri,
                                                                heard_s_ago, silent, iso):
    """A driver killed outright leaves its sweep RUNNING; its stale heartbeat tells, in the
    progress view and in `sweeps list`'s state alike, whichever form the tag has."""
    client, parent, _ = sweep
    if heard_s_ago is not None:
        at = time.time() - heard_s_ago
        client.set_tag(parent, HEARTBEAT_TAG, iso_time(at) if iso else str(int(at * 1000)))
    reader = open_reader(store_uri)
    found = read_sweep(reader, "tiny")
    snap = progress.snapshot(reader, "tiny", found.parent, found.planned, found.experiment_id)
    assert snap.status == "RUNNING" and snap.silent is silent and snap.ended is silent
    counts = summary.Counts(4, 1, 1, 0, 0)
    assert summary.state(found, counts) == ("lost" if silent else "running")


def test_status_watch_says_when_the_driver_is_gone(sweep, store_uri, capsys):
    client, parent, _ = sweep
    client.set_tag(parent, HEARTBEAT_TAG, str(int((time.time() - 3600) * 1000)))
    codes = []
    watching = threading.Thread(target=lambda: codes.append(cli.main(
        ["status", "tiny", "--watch", "--tracking-uri", store_uri])), daemon=True)
    watching.start()
    watching.join(timeout=120)
    assert codes == [0], "the watcher ended without waiting for a driver that is gone"
    out = " ".join(capsys.readouterr().out.split())  # as words: the console wraps lines
    assert "2/4 grid points finished, 2 running" in out
    assert "driver has not been heard from since" in out and "sweeps resume tiny" in out


def test_a_run_that_stops_once_converged_counts_against_its_expected_steps(sweep,
                                                                           store_uri):
    """Synthetic runs stop near the theory's expected steps, far below their cap: the share
    done (and the time left) counts against those."""
    client, _, runs = sweep
    running = runs[key(12, 0.2)]  # at step 50 of a 100-step cap
    client.log_param(running, "tolerance", "0.01")
    client.log_param(running, "stopping.expected_steps", "60")
    reader = open_reader(store_uri)
    found = read_sweep(reader, "tiny")
    snap = progress.snapshot(reader, "tiny", found.parent, found.planned, found.experiment_id)
    assert snap.done == pytest.approx((1 + 1 + 50 / 60 + 0) / 4)
