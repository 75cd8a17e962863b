"""The sweep's MLflow layout (CONTRACTS 4): experiment = sweep name, one parent run per
sweep, one child run per grid point.

The parent run (`kind=sweep`) is made by the sweep's driver when the sweep starts and found
again on every resume. A grid point's run is made when its training starts (by the trial
that trains it, `ensure_runs`), so its start time and duration are the training's, not the
queue's; MLflow cannot change a run's start time later. Every attempt looks for the run by
its `trial_key` tag before making one, and only one attempt of a trial runs at a time: that
is what keeps one run per grid point through retries and resumes.

MLflow is imported where a function talks to it: a sweep's driver on a new store starts Ray
while MLflow imports and makes the store (`sweeps.runner`), seconds of every such start.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from tracking.errors import TrackingAuthError, TrackingError, refusal
from tracking.layout import KIND_SWEEP, KIND_TRIAL, ML_EXPERIMENT, PAGE, PARENT_TAG, SQLITE
from tracking.layout import sqlite_path
from tracking.relocate import relocate

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

# Our commands say where a sweep is in the UI; MLflow's own "View run ... at" lines, one per
# run ended on a tracking server, would bury them.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


@dataclass(frozen=True)
class PlannedRun:
    """What a grid point's run is created with."""

    key: str
    params: dict
    tags: dict
    name: str | None = None  # what a person reads (`w24 f=0.03 complex s0`); default the key


@contextmanager
def environment(values: dict[str, str]):
    """These environment variables set while the block runs (how MLflow and Ray take most
    of their settings), the previous ones back after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def quiet_logger(name: str, level: int = logging.ERROR):
    """Logger `name` below `level` silenced while the block runs: for a library call that
    always logs the same notice about itself (never a whole library, never for long)."""
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)


def quick_requests(timeout_s: int = 10):
    """MLflow REST calls with one try and a short timeout. MLflow's own retries would keep a
    user waiting minutes to learn that a server is not there, and hold up training while it
    is away; callers that must not give up retry on their own terms."""
    return environment({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)})


def connect(uri: str) -> MlflowClient:
    """A client whose store answered one query, so a wrong URI or login fails before work
    starts. A sqlite store whose project folder was moved gets its artifact locations mended
    first."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if uri.startswith(SQLITE) and sqlite_path(uri).is_file():
        relocate(sqlite_path(uri))
    # A sqlite store is a file: no requests, and so no process-wide settings for them (this
    # runs beside `ray.init` for a new store, whose processes would inherit them).
    requests = nullcontext() if uri.startswith(SQLITE) else quick_requests()
    try:  # a new sqlite store: MLflow says at INFO that it creates its tables
        with requests, quiet_logger("mlflow.store.db.utils", logging.WARNING):
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
    except Exception as err:  # MLflow raises many kinds (REST, SQLAlchemy, OS) for this
        status = err.get_http_status_code() if isinstance(err, MlflowException) else None
        if status in (401, 403):  # the URI is right: the message says what to set
            raise TrackingAuthError(refusal(uri, status)) from None
        raise TrackingError(
            f"MLflow tracking store {uri!r} cannot be reached: {err}\nCheck --tracking-uri / "
            "$MLFLOW_TRACKING_URI (locally: sqlite:///mlflow.db; on a cluster: the tracking "
            "server's http:// URL).") from None
    return client


def creates_store(uri: str) -> bool:
    """A sqlite store MLflow would make now: no file yet, in a folder it can write. Nothing
    can be in it, so nothing in it needs checking before work starts, and making it (its
    migrations, ~3 s) can go on beside other work."""
    if not uri.startswith(SQLITE):
        return False
    path = sqlite_path(uri)
    return not path.exists() and path.parent.is_dir() and os.access(path.parent,
                                                                       os.W_OK | os.X_OK)


def experiment_id(client: MlflowClient, name: str, create: bool = False) -> str | None:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    if not create:
        return None
    return client.create_experiment(name, artifact_location=artifact_location(client, name))


def artifact_location(client: MlflowClient, name: str) -> str | None:
    """With a sqlite store, artifacts (models, plots) go beside the database, in
    `mlartifacts/<experiment>`, not into whichever folder the first process ran in; a server
    decides for itself (None)."""
    prefix = "sqlite:///"
    if not client.tracking_uri.startswith(prefix):
        return None
    return str(Path(client.tracking_uri[len(prefix):]).resolve().parent / "mlartifacts" / name)


def search_runs(client: MlflowClient, experiment: str, kind: str | None = None,
                **tags: str) -> list[Run]:
    """The experiment's active runs (tagged `kind=...` if given, and with these tags), oldest
    first."""
    wanted = ({"kind": kind} if kind else {}) | tags
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment], filter_string=" AND ".join(f"tags.{k} = '{v}'"
                                                     for k, v in wanted.items()),
            max_results=PAGE, page_token=token, order_by=["attributes.start_time ASC"])
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def trial_runs(client: MlflowClient, experiment: str) -> list[Run]:
    """Every grid point's run in the experiment, oldest first."""
    return search_runs(client, experiment, KIND_TRIAL)


def runs_by_key(client: MlflowClient, experiment: str, keys: list[str]) -> dict[str, Run]:
    """The runs of these grid points that exist, by `trial_key` (the newest, should there be
    two): a query each, as reading every run of the sweep (each with its hundreds of metrics)
    grows with the sweep. A key that a filter string
    cannot quote is looked up among them all."""
    if any("'" in key for key in keys):
        return {run.data.tags["trial_key"]: run for run in trial_runs(client, experiment)}
    found = {}
    for key in keys:
        runs = search_runs(client, experiment, KIND_TRIAL, trial_key=key)
        if runs:
            found[key] = runs[-1]
    return found


def ensure_runs(client: MlflowClient, experiment: str, planned: list[PlannedRun],
                parent: str | None = None) -> dict:
    """The runs of these grid points, made now where they do not exist yet (a child of
    `parent`, the sweep's run, if given); key -> run id. Called when their training starts,
    so a new run starts then; a retry or resume finds the run it made before."""
    from mlflow.entities import Param

    existing = runs_by_key(client, experiment, [plan.key for plan in planned])
    for plan in planned:
        run = existing.get(plan.key)
        if run is None:
            tags = {**plan.tags, "trial_key": plan.key, "kind": KIND_TRIAL}
            if parent:
                tags[PARENT_TAG] = parent
            run = existing[plan.key] = client.create_run(
                experiment, run_name=plan.name or plan.key, tags=tags)
        if not run.data.params:  # new, or made by an attempt that died before its params
            client.log_batch(run.info.run_id,
                             params=[Param(k, str(v)) for k, v in plan.params.items()])
    return {plan.key: existing[plan.key].info.run_id for plan in planned}


def sweep_run(client: MlflowClient, experiment: str) -> Run | None:
    """The sweep's parent run, or None (a sweep tracked before there were parent runs)."""
    found = search_runs(client, experiment, KIND_SWEEP)
    return found[0] if found else None


def start_sweep_run(client: MlflowClient, experiment: str, name: str, tags: dict,
                    files: dict[str, str], params: dict[str, str]) -> str:
    """The sweep's parent run, made on its first start and RUNNING again on every resume,
    with `files` (artifact name -> text: the spec, the plan) written into it and `params`
    (the grid's axes) recorded from the start."""
    from mlflow.entities import Param, RunStatus, RunTag

    found = sweep_run(client, experiment)
    if found is None:
        run_id = client.create_run(experiment, run_name=name,
                                   tags={**tags, "kind": KIND_SWEEP}).info.run_id
        client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    else:
        run_id = found.info.run_id
        client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()],
                         params=[Param(k, v) for k, v in params.items()
                                 if k not in found.data.params])  # a run older than them
        client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
    for artifact, text in files.items():
        client.log_text(run_id, text, artifact)
    return run_id


def child_run(client: MlflowClient, experiment: str, kind: str, name: str,
              tags: dict | None = None) -> Run:
    """A new run under the sweep's parent run (a fit, a report), tagged `kind`; at the top
    of the experiment for a sweep without one."""
    parent = sweep_run(client, experiment)
    tags = {**(tags or {}), "kind": kind}
    if parent is not None:
        tags[PARENT_TAG] = parent.info.run_id
    return client.create_run(experiment, run_name=name, tags=tags)


def describe_experiment(client: MlflowClient, experiment: str, description: str) -> None:
    """The experiment's description (MLflow's note, shown above its runs), and the kind
    that makes MLflow 3's UI open it on its runs, not its GenAI overview."""
    client.set_experiment_tag(experiment, "mlflow.note.content", description)
    for key, value in ML_EXPERIMENT.items():
        client.set_experiment_tag(experiment, key, value)


def set_status(client: MlflowClient, run_ids_: Iterable[str], status: str) -> None:
    for run_id in run_ids_:
        client.update_run(run_id, status=status)


def settle_trial_runs(client: MlflowClient, experiment: str, errored: set[str]) -> set[str]:
    """After Tune's fit: the runs of grid points whose trial errored, and did not finish,
    FAILED; the keys of the grid points that finished."""
    runs = trial_runs(client, experiment)
    set_status(client, [r.info.run_id for r in runs if r.data.tags["trial_key"] in errored
                        and r.info.status != "FINISHED"], "FAILED")
    return {r.data.tags["trial_key"] for r in runs if r.info.status == "FINISHED"}
