"""The names of the MLflow layout (CONTRACTS 4) that readers and writers share: run kinds,
tags, artifact paths, model names, the names a person reads, the UI's address, where a sqlite
store's file is. Light: no MLflow import.

A sweep is one experiment. Its parent run (`kind=sweep`, named after the sweep) holds the spec
and the plan as artifacts and the progress counts; every grid point's run (`kind=trial`), the
`fit` runs and the report runs are its children.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote

KIND_SWEEP = "sweep"  # the sweep's parent run
KIND_TRIAL = "trial"  # a grid point's run
KIND_FIT = "fit"  # a `sweeps fit` run
KIND_REPORT = "report"  # a report run (`sweeps reproduce`)
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: what nests runs in the UI
TRIAL_TAG = "trial"  # a grid point's run: the name of the Tune trial that trains it
HEARTBEAT_TAG = "heartbeat"  # the parent run's: when its driver was last alive (`iso_time`)
SILENT_S = 600.0  # a driver not heard from for this long is gone (`silent`)
FIT_FILE = "fit.json"  # the fit run's SweepFit
SPEC_FILE = "spec.yaml"  # the parent run's spec, as the sweep was started
PLAN_FILE = "plan.json"  # the parent run's plan (`sweeps validate --format json`)
FEATURE_STEPS = "feature_steps.json"  # a synthetic run's features: when each was learned
FEATURE_COLUMNS = ("task", "feature", "utility", "step")  # its columns (MLflow's table JSON)
PLOTS = "plots"  # a parent or fit run's artifact folder for figures
LEARNING_CURVES = "learning-curves"  # the parent run's figure: rare loss against step
SEARCH_FILE = "search.json"  # a searched sweep's parent run: trained and inferred cells
SEARCH_TAG = "search"  # a searched sweep's parent run: which search (`sweeps.search`)
INFERRED = "INFERRED"  # a grid point's state when the search inferred it, never trained
MODEL_PATH = "model"  # artifact path of a run's model
AXES = ("width", "frequency", "task", "seed")  # grid axes: run params and model params
PART = "part"  # a trial's axes, when its pack is split: which part, "2/3" (`sweeps.packing`)
ML_EXPERIMENT = {"mlflow.experimentKind": "custom_model_development"}  # the UI's runs view


SIZE = re.compile(r"(\d+)([KMB])")  # a size name: 4M, 20M, 1B
SCALE = {"K": 10**3, "M": 10**6, "B": 10**9}
NOTE = "mlflow.note.content"  # MLflow's own: a run's description, atop its page


def iso_time(seconds: float) -> str:
    """A time as the parent run's tags hold it: ISO 8601 in UTC, to the second
    (`2026-12-07T17:08:07Z`), readable in the UI as epoch milliseconds are not."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tag_seconds(text: str) -> float:
    """Seconds since the epoch of a time tag: ISO 8601, or the epoch milliseconds of sweeps
    started before the tags were ISO."""
    if text.isdigit():
        return int(text) / 1000
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def silent(status: str | None, heard_at: float | None) -> bool:
    """A RUNNING sweep whose driver's last heartbeat (`tag_seconds` of `HEARTBEAT_TAG`) is over
    `SILENT_S` old: the driver was killed outright, so the sweep is gone, not running."""
    return status == "RUNNING" and heard_at is not None and time.time() - heard_at > SILENT_S


SQLITE = "sqlite:///"
PAGE = 1000  # results per search request (MLflow's largest page for runs)


def size(name: str) -> int:
    """The count a size name states: "20M" -> 20,000,000 (OLMo's `parse_size`)."""
    match = SIZE.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not a size name such as 20M or 1B")
    return int(match[1]) * SCALE[match[2]]


def sqlite_path(uri: str) -> Path:
    """The database file of a `sqlite:///` URI (relative to the working folder unless it
    starts with a fourth slash)."""
    return Path(unquote(uri[len(SQLITE):]))


def trials_name(sweep: str) -> str:
    """What `sweeps registry show` calls a sweep's trained grid-point models (MLflow logged
    models in the sweep's experiment, not a registered model); the dot cannot occur in a
    sweep name, so no sweep's fit shares it."""
    return f"{sweep}.trials"


def axis_label(axis: str, value) -> str:
    """One grid value as a person reads it: `w24` (a ladder size stays `20M`), `f=0.03`,
    `complex`, `s0`."""
    text = str(value)
    if axis == "width":
        return f"w{text}" if text.isdigit() else text
    if axis == "frequency":
        return f"f={float(value):.3g}"
    return f"s{text}" if axis == "seed" else text


def run_name(params: dict) -> str:
    """A grid point's run name: `w24 f=0.03 complex s0`."""
    return " ".join(axis_label(axis, params[axis]) for axis in AXES)


def trial_name(axes: dict) -> str:
    """A Tune trial's name from its axes: those it does not pack (packed ones are lists),
    e.g. `w24 complex` for a trial training three frequencies of one seed, and which part of a
    split pack it is: `w128 complex part 2/3`."""
    single = [axis_label(a, axes[a]) for a in AXES if not isinstance(axes[a], (list, tuple))]
    part = [f"part {axes[PART]}"] if PART in axes else []
    return " ".join(single + part) or "all points"


def model_name(params: dict) -> str:
    """A trained model's name: its run's name without the dots MLflow refuses in one
    (`w24 f=0p03 complex s0`); the grid axes themselves are the model's params."""
    return run_name(params).replace(".", "p")


def run_address(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """A run's page in MLflow's UI: on the tracking server, or (a file store) on the local
    `mlflow ui` that `ui_address` says how to start."""
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) \
        else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a file store


def ui_lines(tracking_uri: str, sweep: str, experiment_id: str | None) -> list[str]:
    """Where the sweep is in MLflow's UI, as lines printed one by one: the address (and the
    command serving a file store) each on a line of its own, so a terminal never wraps them
    into other words and they copy whole."""
    if tracking_uri.startswith(("http://", "https://")):
        return [f"MLflow, experiment {sweep}:", ui_address(tracking_uri, experiment_id)]
    return [f"MLflow, experiment {sweep}: serve the store with",
            f"  mlflow ui --backend-store-uri {quote(tracking_uri, safe=':/')}", "then open",
            ui_address(LOCAL_UI, experiment_id)]


def ui_address(tracking_uri: str, experiment_id: str | None) -> str:
    """How to open the sweep in MLflow's UI on its runs view (without `workflowType` MLflow 3
    opens the GenAI overview): the URL of a server, or the `mlflow ui` command for a file."""
    page = f"#/experiments/{experiment_id}/runs?workflowType=machine_learning" \
        if experiment_id else "#/experiments?workflowType=machine_learning"
    if tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri.rstrip('/')}/{page}"
    return (f"`mlflow ui --backend-store-uri {quote(tracking_uri, safe=':/')}`, then open "
            f"http://127.0.0.1:5000/{page}")
