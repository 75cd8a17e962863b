"""What a sweep records about itself in MLflow (CONTRACTS 4): an experiment that says what
the sweep is, and a parent run holding the spec, the plan, the code's version and the counts
of finished, running and failed grid points; the grid points' runs, fits and reports are its
children."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from sweeps import packing
from sweeps.plan import PointPlan, as_json
from sweeps.spec import SweepSpec
from tracking.layout import AXES, HEARTBEAT_TAG, PLAN_FILE, SPEC_FILE, iso_time, run_name

PROJECT = Path(__file__).resolve().parents[1]
HEARTBEAT_S = 60.0  # how often a sweep's driver says it is alive (`keep_alive`)


def describe(spec: SweepSpec, planned: list[PointPlan]) -> str:
    """The experiment's description (Markdown, shown above its runs in the UI)."""
    axes = " x ".join(f"{len(getattr(spec.grid, a))} {a}" for a in AXES)
    example = run_name(planned[0].params)
    return (
        f"Scaling sweep **{spec.name}** (trainable `{spec.trainable}`): {len(planned)} grid "
        f"points = {axes}, trained as {len(packing.trials(spec, planned))} Ray Tune trials.\n\n"
        f"- The run **{spec.name}** (`kind=sweep`) is the sweep: its spec (`{SPEC_FILE}`), "
        f"its plan (`{PLAN_FILE}`: every grid point's params), the code's version and the "
        "counts of finished, running and failed points (`points/...`).\n"
        f"- Its children: one run per grid point (`kind=trial`, named like `{example}`, tag "
        "`trial_key`, params the grid axes and the section as it ran), started when its "
        "training starts; the `fit` runs of `sweeps fit` (plots, the fitted scaling laws).\n"
        "- Trained models: the Models tab (a logged model per grid point, its axes as params); "
        f"the fit is the registered model `{spec.name}`.\n"
        f"- From a terminal: `sweeps status {spec.name} --watch`, `sweeps curves "
        f"{spec.name}`, `sweeps fit {spec.name}`.")


def code_version() -> dict[str, str]:
    """Which code ran: the package's version and, in a git checkout, the commit and whether
    the tree had changes (MLflow's own source tags, which its UI shows)."""
    tags = {"mlflow.source.name": "sweeps", "mlflow.source.type": "LOCAL"}
    try:
        tags["code.version"] = version("scaling-sweeps")
    except PackageNotFoundError:
        pass
    try:
        commit = _git("rev-parse", "HEAD")
        changed = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return tags  # not a checkout (an installed wheel), or no git: the version says it
    tags["mlflow.source.git.commit"] = commit
    tags["code.dirty"] = str(bool(changed)).lower()
    return tags


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(PROJECT), *args], capture_output=True, text=True,
                          check=True, timeout=10).stdout.strip()


def open_sweep(client, spec: SweepSpec, planned: list[PointPlan]) -> tuple[str, str]:
    """The sweep's experiment (described) and its parent run, RUNNING from now; their ids."""
    from tracking.curves import grid_params
    from tracking.runs import describe_experiment, experiment_id, start_sweep_run

    experiment = experiment_id(client, spec.name, create=True)
    describe_experiment(client, experiment, describe(spec, planned))
    now = iso_time(time.time())  # a resume's heartbeat is fresh as it turns RUNNING
    parent = start_sweep_run(
        client, experiment, spec.name,
        tags={"sweep": spec.name, "trainable": spec.trainable, "launched_at": now,
              HEARTBEAT_TAG: now, **code_version()},
        files={SPEC_FILE: yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False),
               PLAN_FILE: json.dumps(as_json(spec, planned), indent=1)},
        params=grid_params(p.params for p in planned))
    return experiment, parent


def keep_alive(client, parent: str, stop: threading.Event) -> None:
    """Until `stop`: the parent run's heartbeat tag, every `HEARTBEAT_S`. A driver killed
    outright (SIGKILL, its machine lost) cannot end its sweep's run, which stays RUNNING;
    the stale heartbeat is how a watcher tells that from a sweep still training. Best effort:
    while the store is away the next beat tries again."""
    from tracking.runs import quick_requests

    while True:
        try:
            with quick_requests():
                client.set_tag(parent, HEARTBEAT_TAG, iso_time(time.time()))
        except Exception:  # the store's errors vary by backend: REST, SQL, OS
            pass
        if stop.wait(HEARTBEAT_S):
            return


def summarise(tracking_uri: str, name: str, fit=None) -> None:
    """The sweep's run brought up to date as the sweep ends and when it is fitted
    (`tracking.sweep_summary`): its learning curves, its headline (with `fit`, a
    `SweepFit`, where there is one), its grid axes."""
    from trainables import catalog
    from tracking.query import open_reader, read_sweep
    from tracking.runs import connect
    from tracking.sweep_summary import record_summary

    reader = open_reader(tracking_uri)
    sweep = read_sweep(reader, name)
    measure = catalog.get(sweep.trainable).measure(next(iter(sweep.planned.values())))
    record_summary(connect(tracking_uri), reader, sweep, measure, fit)
