"""A sweep's models in the MLflow model registry.

- `<sweep>`: the fit (tracking/fit_model.py), one version per `sweeps fit`. The newest is
  `models:/<sweep>@latest`: MLflow reserves the alias `latest` for the newest version and
  refuses to set it, so registering a fit is what moves it.
- `<sweep>.trials`: the trained model of every finished grid point (each trainable's format),
  one version per grid point's run, tagged width, frequency, task, seed and trial_key as the
  run's params spell them; "the 20M model trained with add at 1e-5" is one
  `search_model_versions` (`versions(client, "<sweep>.trials", width="20M", ...)`). The dot
  cannot occur in a sweep name, so no sweep's fit shares this name.

Models are saved locally with `mlflow.pyfunc.save_model` and logged as run artifacts, then
registered from `runs:/<run>/model`: that works from any process that can reach the store,
trial workers included, without an active fluent run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from tracking.curves import Row
from tracking.layout import AXES, MODEL_PATH, PAGE, trials_name
from tracking.tracker import LoggedModel

TRACKING = Path(__file__).resolve().parent
REQUIREMENTS = ("mlflow", "numpy", "pandas", "pydantic", "scipy")
# The artifacts read here are a few small files (save_model reads back the one it wrote to
# check the example): MLflow's progress bars would only clutter tables and trial logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def log_model(client: MlflowClient, run_id: str, model: LoggedModel) -> str:
    """Save the pyfunc whose code is the file `model.code` and log it to the run; its runs:/
    URI. Requirements are pinned to what runs here, as inferring them would import the world."""
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory() as tmp:
        staged = [Path(tmp, "code", p.name) for p in model.code_paths]  # sources, no caches
        for source, copy in zip(model.code_paths, staged):
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
        mlflow.pyfunc.save_model(
            Path(tmp, MODEL_PATH), python_model=str(model.code),
            artifacts={name: str(path) for name, path in model.artifacts.items()},
            code_paths=[str(p) for p in staged], signature=model.signature,
            input_example=model.example,
            pip_requirements=[f"{p}=={version(p)}" for p in REQUIREMENTS])
        client.log_artifacts(run_id, str(Path(tmp, MODEL_PATH)), MODEL_PATH)
    return f"runs:/{run_id}/{MODEL_PATH}"


def register_fit(client: MlflowClient, sweep: str, run_id: str, fit_json: Path,
                 example: pd.DataFrame, tags: dict[str, str]) -> ModelVersion:
    """Log the fit's pyfunc to its run and register it as the newest version of `sweep`."""
    from tracking.fit_model import FIT_ARTIFACT, SIGNATURE

    source = log_model(client, run_id, LoggedModel(
        code=TRACKING / "fit_model.py", artifacts={FIT_ARTIFACT: fit_json}, signature=SIGNATURE,
        example=example, code_paths=[TRACKING]))
    _ensure_model(client, sweep, {"kind": "fit", "sweep": sweep},
                  f"Fit of sweep {sweep}: predict(width, frequency, task) -> rare_loss, "
                  "learned, critical_width")
    return client.create_model_version(sweep, source, run_id=run_id, tags=tags)


def register_trial_models(client: MlflowClient, sweep: str, rows: list[Row]) -> int:
    """One version of `<sweep>.trials` per finished grid point whose run holds a model.
    Versions of runs the sweep no longer has (a `--restart` deleted them) are dropped, so a
    query finds the current model of a grid point only. Returns how many versions it holds."""
    name = trials_name(sweep)
    _ensure_model(client, name, {"kind": "trials", "sweep": sweep},
                  f"Trained models of sweep {sweep}'s grid points, tagged width, frequency, "
                  "task, seed")
    live = {row.run_id for row in rows}
    kept = set()
    for version_ in versions(client, name):
        if version_.run_id in live:
            kept.add(version_.run_id)
        else:
            client.delete_model_version(name, version_.version)
    for row in rows:
        if row.state != "FINISHED" or row.run_id in kept:
            continue
        if not client.list_artifacts(row.run_id, MODEL_PATH):
            continue  # trained before trials logged their models
        tags = {axis: row.params[axis] for axis in AXES} | {"trial_key": row.key}
        client.create_model_version(name, f"runs:/{row.run_id}/{MODEL_PATH}",
                                    run_id=row.run_id, tags=tags)
        kept.add(row.run_id)
    return len(kept)


def versions(client: MlflowClient, name: str, **tags: str) -> list[ModelVersion]:
    """A registered model's versions with the given tags, oldest first."""
    query = " and ".join([f"name = '{name}'"] + [f"tags.{k} = '{v}'" for k, v in tags.items()])
    found, token = [], None
    while True:
        page = client.search_model_versions(query, max_results=PAGE, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return sorted(found, key=lambda v: int(v.version))


def _ensure_model(client: MlflowClient, name: str, tags: dict, description: str) -> None:
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name, tags=tags, description=description)
