"""The sweep's MLflow layout (CONTRACTS 4): experiment = sweep name, one run per grid point.

Runs are created by the sweep driver before any trial starts, found again by their
`trial_key` tag, and never created anywhere else: that is what keeps one run per grid point
through retries and resumes.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mlflow import MlflowClient
from mlflow.entities import Param, Run, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from tracking.errors import TrackingAuthError, TrackingError, refusal
from tracking.layout import KIND_TRIAL, PAGE, SQLITE, sqlite_path
from tracking.relocate import relocate


@dataclass(frozen=True)
class PlannedRun:
    """What a grid point's run is created with."""

    key: str
    params: dict
    tags: dict


@contextmanager
def quick_requests(timeout_s: int = 10):
    """MLflow REST calls with one try and a short timeout. MLflow's own retries would keep a
    user waiting minutes to learn that a server is not there, and hold up training while it
    is away; callers that must not give up retry on their own terms."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    saved = {k: os.environ.get(k) for k in quick}
    os.environ.update(quick)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def connect(uri: str) -> MlflowClient:
    """A client whose store answered one query, so a wrong URI or login fails before work
    starts. A sqlite store whose project folder was moved gets its artifact locations mended
    first."""
    if uri.startswith(SQLITE) and sqlite_path(uri).is_file():
        relocate(sqlite_path(uri))
    try:
        with quick_requests():
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


def search_runs(client: MlflowClient, experiment: str, kind: str | None = None) -> list[Run]:
    """The experiment's active runs (tagged `kind=...` if given), oldest first."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment], filter_string=f"tags.kind = '{kind}'" if kind else "",
            max_results=PAGE, page_token=token, order_by=["attributes.start_time ASC"])
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def trial_runs(client: MlflowClient, experiment: str) -> list[Run]:
    """Every grid point's run in the experiment, oldest first."""
    return search_runs(client, experiment, KIND_TRIAL)


def ensure_runs(client: MlflowClient, experiment: str, planned: list[PlannedRun]) -> dict:
    """Create the runs that do not exist yet (status SCHEDULED); return key -> run id."""
    existing = {run.data.tags["trial_key"]: run.info.run_id
                for run in trial_runs(client, experiment)}
    for plan in planned:
        if plan.key in existing:
            continue
        run = client.create_run(experiment, run_name=plan.key,
                                tags={**plan.tags, "trial_key": plan.key, "kind": KIND_TRIAL})
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in plan.params.items()],
                         tags=[RunTag("last_step", "-1")])
        client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.SCHEDULED))
        existing[plan.key] = run.info.run_id
    return {plan.key: existing[plan.key] for plan in planned}


def set_status(client: MlflowClient, run_ids_: Iterable[str], status: str) -> None:
    for run_id in run_ids_:
        client.update_run(run_id, status=status)
