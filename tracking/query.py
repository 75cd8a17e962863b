"""Reading a tracking store without importing MLflow: the read-only commands' fast path.

`import mlflow` and opening a sqlite store through it take seconds (and create the file when it
is missing), while the queries behind
`sweeps status`, `curves` and `registry` take milliseconds. So these read the store directly:
- `sqlite:///PATH`: MLflow's own tables (experiments, runs, tags, params, latest_metrics,
  registered models and versions), opened read-only, so a missing file is an error naming
  the fix and never a new database;
- `http(s)://`: MLflow's REST API (the documented `/api/2.0/mlflow/...` endpoints), with the
  credential from MLflow's standard environment variables;
- anything else (postgresql://, databricks, ...): MLflow's own client.
Each answers the same questions the same way; `tests/tracking/test_query.py` holds each
against `MlflowClient` on the same store.
"""

from __future__ import annotations

import json
import os
import sqlite3
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from tracking.curves import Measure, Row, finished, late_gain
from tracking.errors import TrackingAuthError, TrackingError, UnknownSweep, refusal
from tracking.layout import (INFERRED, KIND_SWEEP, KIND_TRIAL, PAGE, PLAN_FILE, SEARCH_FILE,
                             SEARCH_TAG, SQLITE, sqlite_path)
from tracking.relocate import mapped, roots



@dataclass(frozen=True)
class RunRecord:
    run_id: str
    name: str
    status: str
    start_time: int | None  # ms since the epoch
    end_time: int | None
    artifact_uri: str
    tags: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # latest value per key


@dataclass(frozen=True)
class ModelRecord:
    name: str
    description: str
    tags: dict


@dataclass(frozen=True)
class VersionRecord:
    name: str
    version: int
    run_id: str
    source: str
    tags: dict


@dataclass(frozen=True)
class LoggedModelRecord:
    """An MLflow 3 logged model: a grid point's trained model, or a fit's."""

    model_id: str
    name: str
    run_id: str  # the run that logged it
    status: str  # READY once complete
    params: dict
    tags: dict


class Reader(ABC):
    """The read-only questions the CLI asks of a tracking store."""

    uri: str

    @abstractmethod
    def experiment_id(self, name: str) -> str | None:
        """The active experiment of that name, or None."""

    @abstractmethod
    def experiment_names(self) -> list[str]:
        """Every active experiment's name, by name (`sweeps list`, "did you mean")."""

    @abstractmethod
    def runs(self, experiment_id: str, kind: str | None = None) -> list[RunRecord]:
        """The experiment's active runs (tagged `kind=...` if given), oldest first."""

    @abstractmethod
    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of one metric, by step."""

    @abstractmethod
    def models(self) -> list[ModelRecord]:
        """Every registered model, by name."""

    @abstractmethod
    def versions(self, name: str) -> list[VersionRecord]:
        """A registered model's versions, oldest first."""

    @abstractmethod
    def artifact_text(self, run_id: str, path: str) -> str:
        """A run's artifact, as text."""

    @abstractmethod
    def logged_models(self, experiment_id: str) -> list[LoggedModelRecord]:
        """The experiment's logged models, oldest first."""


def open_reader(uri: str) -> Reader:
    """The reader for `uri`; raises TrackingError (exit 2) if the store is not there."""
    if uri.startswith(SQLITE):
        return SqliteReader(uri)
    if uri.startswith(("http://", "https://")):
        return RestReader(uri)
    return ClientReader(uri)


@dataclass(frozen=True)
class Sweep:
    """A sweep as its store holds it: the parent run, the grid points' runs, and the plan (key
    -> params of every grid point, also those whose training has not started: their runs
    are made as it starts)."""

    name: str
    experiment_id: str
    parent: RunRecord | None  # None for a sweep tracked before parent runs
    trials: list[RunRecord]
    trainable: str | None
    planned: dict[str, dict]
    inferred: dict[str, bool] = field(default_factory=dict)  # key -> the search's verdict
    undecided: dict[str, bool] = field(default_factory=dict)  # a search's cells without a
    # verdict: key -> whether its trial failed (else: not trained yet, the search interrupted)


def read_sweep(reader: Reader, sweep: str) -> Sweep:
    experiment = reader.experiment_id(sweep)
    if experiment is None:
        raise UnknownSweep(f"no sweep named {sweep!r} in {reader.uri} (check the name and "
                           "--tracking-uri)")
    parents = reader.runs(experiment, KIND_SWEEP)
    parent = parents[0] if parents else None
    plan = json.loads(reader.artifact_text(parent.run_id, PLAN_FILE)) if parent else {}
    searched = parent is not None and SEARCH_TAG in parent.tags
    search = json.loads(reader.artifact_text(parent.run_id, SEARCH_FILE)) if searched else {}
    return Sweep(sweep, experiment, parent, reader.runs(experiment, KIND_TRIAL),
                 plan.get("trainable"), {p["key"]: p["params"] for p in plan.get("points", [])},
                 {c["key"]: c["learned"] for c in search.get("cells", [])
                  if c["source"] == "inferred"},
                 {c["key"]: c["failed"] for c in search.get("undecided", [])})


def sweep_rows(sweep: Sweep) -> list[Row]:
    """One row per grid point, task by task and frequent to rare, narrow first; a point
    whose training has not started is SCHEDULED, or INFERRED where a search decided it from
    the others (`Row.inferred`: its verdict), without a run."""
    rows = [Row(key=run.tags["trial_key"], run_id=run.run_id, state=run.status,
                step=int(run.tags.get("last_step", -1)), params=run.params,
                trainable=run.tags["trainable"], metrics=dict(run.metrics))
            for run in sweep.trials]
    started = {row.key for row in rows}
    rows += [Row(key=key, run_id="", state=INFERRED if key in sweep.inferred else "SCHEDULED",
                 step=-1, params=params, trainable=sweep.trainable or "", metrics={},
                 inferred=sweep.inferred.get(key))
             for key, params in sweep.planned.items() if key not in started]
    return sorted(rows, key=lambda row: row.sort_key)


def read_rows(reader: Reader, sweep: str) -> list[Row]:
    """One row per grid point of the sweep (`sweep_rows`)."""
    return sweep_rows(read_sweep(reader, sweep))


def with_table(reader: Reader, rows: list[Row], path: str) -> list[Row]:
    """The rows with their run's table artifact `path` read into `row.tables` (finished
    runs that logged it; the others as they were): one artifact read per run."""
    out = []
    for row in rows:
        try:
            table = json.loads(reader.artifact_text(row.run_id, path)) \
                if row.state == "FINISHED" else None
        except Exception:  # not logged (an older run); the store's errors vary by backend
            table = None
        out.append(replace(row, tables={**row.tables, path: table}) if table else row)
    return out


def late_gains(reader: Reader, rows: list[Row], measure: Measure) -> dict[str, float]:
    """run id -> how much the score improved over the last fifth of training, per finished
    run: one history query per run."""
    gains = {}
    for row in finished(rows):
        history = reader.history(row.run_id, measure.score)
        if len(history) > 1:
            steps, values = zip(*history)
            gains[row.run_id] = late_gain(steps, values, lower_is_better=measure.lower_is_better)
    return gains


class SqliteReader(Reader):
    def __init__(self, uri: str):
        self.uri, path = uri, sqlite_path(uri)
        if not path.is_file():
            raise TrackingError(
                f"no MLflow database at {path.resolve()} ({uri}): run from the folder of the "
                "sweep (where its mlflow.db is), or pass --tracking-uri (or set "
                "$MLFLOW_TRACKING_URI) to the store the sweep was run with")
        try:
            self.db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
            self.moved = roots(self.db, path)  # a moved project folder, mapped on reading
        except sqlite3.Error as err:
            raise TrackingError(f"{path} is not an MLflow database ({err}): pass the "
                                "--tracking-uri of the sweep's store") from None

    def _all(self, query: str, *args) -> list[tuple]:
        return self.db.execute(query, args).fetchall()

    def experiment_id(self, name: str) -> str | None:
        found = self._all("SELECT experiment_id FROM experiments WHERE name = ? AND "
                          "lifecycle_stage = 'active'", name)
        return str(found[0][0]) if found else None

    def experiment_names(self) -> list[str]:
        return [name for name, in self._all("SELECT name FROM experiments WHERE "
                                            "lifecycle_stage = 'active' ORDER BY name")]

    def runs(self, experiment_id: str, kind: str | None = None) -> list[RunRecord]:
        query = ("SELECT run_uuid, name, status, start_time, end_time, artifact_uri FROM runs "
                 "WHERE experiment_id = ? AND lifecycle_stage = 'active'")
        args: tuple = (int(experiment_id),)
        if kind is not None:
            query += (" AND run_uuid IN (SELECT run_uuid FROM tags WHERE key = 'kind' AND "
                      "value = ?)")
            args += (kind,)
        found = self._all(query + " ORDER BY start_time, run_uuid", *args)
        ids = [r[0] for r in found]
        per_run = {name: self._by_run(table, ids) for name, table in
                   [("tags", "tags"), ("params", "params"), ("metrics", "latest_metrics")]}
        return [RunRecord(run_id=r[0], name=r[1] or "", status=r[2], start_time=r[3],
                          end_time=r[4], artifact_uri=r[5] or "",
                          **{name: values.get(r[0], {}) for name, values in per_run.items()})
                for r in found]

    def _by_run(self, table: str, ids: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        value = "CASE WHEN is_nan THEN 'NaN' ELSE value END" if table == "latest_metrics" \
            else "value"
        for start in range(0, len(ids), 500):  # sqlite's bound on host parameters
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for run_id, key, v in self._all(f"SELECT run_uuid, key, {value} FROM {table} "
                                            f"WHERE run_uuid IN ({marks})", *chunk):
                out.setdefault(run_id, {})[key] = float(v) if table == "latest_metrics" else v
        return out

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(int(s), float(v)) for s, v in self._all(
            "SELECT step, CASE WHEN is_nan THEN 'NaN' ELSE value END FROM metrics WHERE "
            "run_uuid = ? AND key = ? ORDER BY step, timestamp", run_id, key)]

    def models(self) -> list[ModelRecord]:
        tags: dict[str, dict] = {}
        for name, key, value in self._all("SELECT name, key, value FROM registered_model_tags"):
            tags.setdefault(name, {})[key] = value
        return [ModelRecord(name, description or "", tags.get(name, {})) for name, description
                in self._all("SELECT name, description FROM registered_models ORDER BY name")]

    def versions(self, name: str) -> list[VersionRecord]:
        tags: dict[int, dict] = {}
        for version, key, value in self._all(
                "SELECT version, key, value FROM model_version_tags WHERE name = ?", name):
            tags.setdefault(int(version), {})[key] = value
        return [VersionRecord(name, int(v), run_id or "", source or "", tags.get(int(v), {}))
                for v, run_id, source in self._all(
                    "SELECT version, run_id, source FROM model_versions WHERE name = ? AND "
                    "current_stage != 'Deleted_Internal' ORDER BY version", name)]

    def artifact_text(self, run_id: str, path: str) -> str:
        (uri,), = self._all("SELECT artifact_uri FROM runs WHERE run_uuid = ?", run_id)
        root = urlparse(mapped(uri, self.moved))
        if root.scheme not in ("", "file"):  # artifacts elsewhere (S3, a server): MLflow's way
            return ClientReader(self.uri).artifact_text(run_id, path)
        return (Path(unquote(root.path)) / path).read_text()

    def logged_models(self, experiment_id: str) -> list[LoggedModelRecord]:
        found = self._all("SELECT model_id, name, source_run_id, status FROM logged_models "
                          "WHERE experiment_id = ? AND lifecycle_stage = 'active' "
                          "ORDER BY creation_timestamp_ms, model_id", int(experiment_id))
        values: dict[str, dict[str, dict]] = {"params": {}, "tags": {}}
        for kind, table in (("params", "logged_model_params"), ("tags", "logged_model_tags")):
            prefix = kind[:-1]
            for model_id, key, value in self._all(
                    f"SELECT model_id, {prefix}_key, {prefix}_value FROM {table} WHERE "
                    "experiment_id = ?", int(experiment_id)):
                values[kind].setdefault(model_id, {})[key] = value
        return [LoggedModelRecord(model_id, name, run_id or "", _model_status(status),
                                  values["params"].get(model_id, {}),
                                  values["tags"].get(model_id, {}))
                for model_id, name, run_id, status in found]


class RestReader(Reader):
    """MLflow's REST API with `requests`; MLFLOW_TRACKING_USERNAME/PASSWORD (basic) or
    MLFLOW_TRACKING_TOKEN (bearer), and MLflow's TLS variables, as MLflow's client reads them."""

    def __init__(self, uri: str, timeout_s: float = 10.0):
        import requests

        self.uri, self.timeout_s = uri.rstrip("/"), timeout_s
        self.http = requests.Session()
        env = os.environ
        if env.get("MLFLOW_TRACKING_USERNAME") and env.get("MLFLOW_TRACKING_PASSWORD"):
            self.http.auth = (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
        elif env.get("MLFLOW_TRACKING_TOKEN"):
            self.http.headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
        if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            self.http.verify = False
        elif env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            self.http.verify = env["MLFLOW_TRACKING_SERVER_CERT_PATH"]
        if env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
            self.http.cert = env["MLFLOW_TRACKING_CLIENT_CERT_PATH"]

    def _call(self, method: str, endpoint: str, missing_ok: bool = False, **kwargs) -> dict:
        import requests

        url = f"{self.uri}/{endpoint}"
        try:
            answer = self.http.request(method, url, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as err:
            raise TrackingError(f"MLflow tracking store {self.uri!r} cannot be reached: "
                                f"{err}") from None
        if answer.status_code in (401, 403):
            raise TrackingAuthError(refusal(self.uri, answer.status_code))
        if answer.status_code == 404 and missing_ok:
            return {}
        if not answer.ok:
            raise TrackingError(f"MLflow tracking store {self.uri!r} answered HTTP "
                                f"{answer.status_code} to {endpoint}: {answer.text[:200]}")
        return answer.json() if endpoint.startswith("api/") else {"text": answer.text}

    def _pages(self, method: str, endpoint: str, items: str, body: dict) -> list[dict]:
        out, token = [], None
        while True:
            page_body = {**body, **({"page_token": token} if token else {})}
            if method == "GET":
                page = self._call(method, endpoint, params=page_body)
            else:
                page = self._call(method, endpoint, json=page_body)
            out.extend(page.get(items, []))
            token = page.get("next_page_token")
            if not token:
                return out

    def experiment_id(self, name: str) -> str | None:
        found = self._call("GET", "api/2.0/mlflow/experiments/get-by-name", missing_ok=True,
                           params={"experiment_name": name}).get("experiment")
        return found["experiment_id"] if found and found.get("lifecycle_stage") == "active" \
            else None

    def experiment_names(self) -> list[str]:
        found = self._pages("POST", "api/2.0/mlflow/experiments/search", "experiments",
                            {"max_results": PAGE, "view_type": "ACTIVE_ONLY"})
        return sorted(e["name"] for e in found)

    def runs(self, experiment_id: str, kind: str | None = None) -> list[RunRecord]:
        body = {"experiment_ids": [experiment_id], "max_results": PAGE,
                "run_view_type": "ACTIVE_ONLY", "order_by": ["attributes.start_time ASC"]}
        if kind is not None:
            body["filter"] = f"tags.kind = '{kind}'"
        return [_run_record(r) for r in
                self._pages("POST", "api/2.0/mlflow/runs/search", "runs", body)]

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        found = self._pages("GET", "api/2.0/mlflow/metrics/get-history", "metrics",
                            {"run_id": run_id, "metric_key": key, "max_results": 25000})
        return sorted((int(m.get("step", 0)), float(m["value"])) for m in found)

    def models(self) -> list[ModelRecord]:
        found = self._pages("GET", "api/2.0/mlflow/registered-models/search",
                            "registered_models", {"max_results": PAGE})
        return sorted((ModelRecord(m["name"], m.get("description", ""), _pairs(m.get("tags")))
                       for m in found), key=lambda m: m.name)

    def versions(self, name: str) -> list[VersionRecord]:
        found = self._pages("GET", "api/2.0/mlflow/model-versions/search", "model_versions",
                            {"filter": f"name = '{name}'", "max_results": PAGE})
        return sorted((VersionRecord(v["name"], int(v["version"]), v.get("run_id", ""),
                                     v.get("source", ""), _pairs(v.get("tags")))
                       for v in found), key=lambda v: v.version)

    def artifact_text(self, run_id: str, path: str) -> str:
        return self._call("GET", "get-artifact", params={"run_id": run_id, "path": path})["text"]

    def logged_models(self, experiment_id: str) -> list[LoggedModelRecord]:
        found = self._pages("POST", "api/2.0/mlflow/logged-models/search", "models",
                            {"experiment_ids": [experiment_id], "max_results": 100})
        models = sorted(found, key=lambda m: int(m["info"].get("creation_timestamp_ms", 0)))
        return [LoggedModelRecord(m["info"]["model_id"], m["info"].get("name", ""),
                                  m["info"].get("source_run_id", ""),
                                  _model_status(m["info"].get("status")),
                                  _pairs(m.get("data", {}).get("params")),
                                  _pairs(m["info"].get("tags")))
                for m in models]


def _model_status(status) -> str:
    """READY, PENDING or FAILED, however the store spells it (sqlite keeps the enum's number;
    the REST API its name)."""
    names = {1: "PENDING", 2: "READY", 3: "FAILED"}
    return names.get(int(status), "UNSPECIFIED") if str(status).isdigit() else \
        str(status or "UNSPECIFIED").removeprefix("LOGGED_MODEL_")


def _pairs(items) -> dict:
    return {item["key"]: item.get("value", "") for item in items or []}


def _run_record(run: dict) -> RunRecord:
    info, data = run["info"], run.get("data", {})
    start, end = info.get("start_time"), info.get("end_time")
    return RunRecord(run_id=info["run_id"], name=info.get("run_name", ""),
                     status=info["status"], start_time=int(start) if start else None,
                     end_time=int(end) if end else None,
                     artifact_uri=info.get("artifact_uri", ""), tags=_pairs(data.get("tags")),
                     params=_pairs(data.get("params")),
                     metrics={m["key"]: float(m["value"]) for m in data.get("metrics", [])})


class ClientReader(Reader):
    """MLflow's own client, for stores the fast readers do not speak (slow to import)."""

    def __init__(self, uri: str):
        from tracking.runs import connect

        self.uri, self.client = uri, connect(uri)

    def experiment_id(self, name: str) -> str | None:
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found and found.lifecycle_stage == "active" else None

    def experiment_names(self) -> list[str]:
        return sorted(e.name for e in self.client.search_experiments())

    def runs(self, experiment_id: str, kind: str | None = None) -> list[RunRecord]:
        from tracking.runs import search_runs

        return [RunRecord(run_id=r.info.run_id, name=r.info.run_name or "",
                          status=r.info.status, start_time=r.info.start_time,
                          end_time=r.info.end_time, artifact_uri=r.info.artifact_uri,
                          tags=dict(r.data.tags), params=dict(r.data.params),
                          metrics=dict(r.data.metrics))
                for r in search_runs(self.client, experiment_id, kind)]

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return sorted((m.step, m.value) for m in self.client.get_metric_history(run_id, key))

    def models(self) -> list[ModelRecord]:
        return sorted((ModelRecord(m.name, m.description or "", dict(m.tags))
                       for m in self.client.search_registered_models()), key=lambda m: m.name)

    def versions(self, name: str) -> list[VersionRecord]:
        from tracking.registry import versions

        return [VersionRecord(v.name, int(v.version), v.run_id or "", v.source or "",
                              dict(v.tags)) for v in versions(self.client, name)]

    def artifact_text(self, run_id: str, path: str) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return Path(self.client.download_artifacts(run_id, path, tmp)).read_text()

    def logged_models(self, experiment_id: str) -> list[LoggedModelRecord]:
        from tracking.registry import search_logged

        return [LoggedModelRecord(m.model_id, m.name, m.source_run_id or "", str(m.status),
                                  dict(m.params), dict(m.tags))
                for m in search_logged(self.client, [experiment_id], "")]
