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

KIND_TRIAL = "trial"
SEARCH_PAGE = 1000


class TrackingError(Exception):
    """The tracking store cannot be used: unreachable, or holding something unexpected."""


class TrackingAuthError(TrackingError):
    """The tracking server answered and refused these credentials (HTTP 401) or this user
    (403): a different fix from an unreachable one, so a different message."""


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
    starts."""
    try:
        with quick_requests():
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
    except Exception as err:  # MLflow raises many kinds (REST, SQLAlchemy, OS) for this
        status = err.get_http_status_code() if isinstance(err, MlflowException) else None
        if status in (401, 403):
            raise TrackingAuthError(refusal(uri, status)) from err
        raise TrackingError(f"MLflow tracking store {uri!r} cannot be reached: {err}") from err
    return client


def refusal(uri: str, status: int) -> str:
    """What a server with authentication on said, and the two variables that fix it."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if status == 403:
        what = f"refused MLflow user {user!r} access (HTTP 403): ask its admin for READ"
    elif user:
        what = f"refused MLflow user {user!r}: wrong password or no such user (HTTP 401)"
    else:
        what = "requires a login and none was given (HTTP 401)"
    return (f"MLflow tracking server {uri} {what}.\nSet MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD to your MLflow user and password (the cluster's are in "
            "~/.scaling-sweeps/mlflow.env: `set -a; . ~/.scaling-sweeps/mlflow.env; set +a`; "
            'README "Running on a cluster").')


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


def trial_runs(client: MlflowClient, experiment: str) -> list[Run]:
    """Every grid point's run in the experiment, oldest first."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment], filter_string=f"tags.kind = '{KIND_TRIAL}'",
            max_results=SEARCH_PAGE, page_token=token, order_by=["attributes.start_time ASC"])
        runs.extend(page)
        token = page.token
        if not token:
            return runs


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
