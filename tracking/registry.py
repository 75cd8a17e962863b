"""A sweep's models in MLflow.

- Trained grid-point models are MLflow 3 logged models in the sweep's experiment, one per
  finished grid point, each linked to the run that trained it (its source run and one of the
  run's outputs), named like it (`w24 f=0p03 complex s0`: a model's name cannot hold a dot)
  and carrying the run's params, grid axes included. So "the 20M model trained with add at
  1e-5" is one `search_logged_models` (`trained_models(client, experiment, width="20M",
  ...)`), the UI's Models tab lists them with their axes as columns, and each loads as
  `models:/<model_id>`. They are not versions of one registered model: sixty different
  students are not sixty versions of anything.
- The fit (tracking/fit/model.py) is a logged model of its `fit` run, registered as the
  newest version of the model named after the sweep, one version per `sweeps fit`. The newest
  is `models:/<sweep>@latest`: MLflow reserves the alias `latest` for the newest version and
  refuses to set it, so registering a fit is what moves it.

Models are saved locally (`tracking.model_files`: MLflow's `save_model`, once per layout) and
uploaded into their logged model: that works from any process that can reach the store, trial
workers included, without an active fluent run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModel as MlflowLoggedModel
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.entities.model_registry import ModelVersion

from tracking.layout import AXES, KIND_FIT, KIND_TRIAL, PAGE, model_name
from tracking.logged_model import LoggedModel
from tracking.model_files import save_pyfunc

TRACKING = Path(__file__).resolve().parent
RUN_TAGS = ("sweep", "trial_key", "trainable")  # a run's tags its model carries too
# The artifacts read here are a few small files (save_model reads back the one it wrote to
# check the example): MLflow's progress bars would only clutter tables and trial logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def log_model(client: MlflowClient, run_id: str, model: LoggedModel, name: str,
              params: dict[str, str], tags: dict[str, str]) -> str:
    """The run's model as a logged model linked to the run; its model id. Idempotent, for
    retries and for a trial restarted after its last checkpoint: a run's READY model of this
    kind is returned as it is, a PENDING one (an attempt that died uploading) is completed."""
    run = client.get_run(run_id)
    found = search_logged(client, [run.info.experiment_id],
                    f"source_run_id = '{run_id}' AND tags.kind = '{tags['kind']}'")
    if found and found[0].status == LoggedModelStatus.READY:
        return found[0].model_id
    logged = found[0] if found else client.create_logged_model(
        run.info.experiment_id, name=name, source_run_id=run_id, tags=tags, params=params,
        model_type=tags.get("trainable", tags["kind"]))
    with tempfile.TemporaryDirectory() as tmp:
        save_pyfunc(model, Path(tmp))
        client.log_model_artifacts(logged.model_id, str(Path(tmp, "model")))
    if logged.model_id not in {o.model_id for o in run.outputs.model_outputs}:
        step = int(run.data.tags.get("last_step", 0))
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, max(step, 0))])
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return logged.model_id


def log_trained_model(client: MlflowClient, run_id: str, model: LoggedModel) -> str:
    """A grid point's trained model, named like its run and carrying the run's params (grid
    axes included) and tags; its model id (`models:/<id>` loads it)."""
    run = client.get_run(run_id)
    tags = {k: run.data.tags[k] for k in RUN_TAGS if k in run.data.tags} | {"kind": KIND_TRIAL}
    params = dict(run.data.params)
    return log_model(client, run_id, model, model_name(params) if set(AXES) <= set(params)
                     else "model", params, tags)


def register_fit(client: MlflowClient, sweep: str, run_id: str, fit_json: Path,
                 example: pd.DataFrame, tags: dict[str, str]) -> ModelVersion:
    """Log the fit's pyfunc as the fit run's model and register it as the newest version of
    `sweep`."""
    from tracking.fit.model import FIT_ARTIFACT, SIGNATURE

    model_id = log_model(client, run_id, LoggedModel(
        code=TRACKING / "fit" / "model.py", artifacts={FIT_ARTIFACT: fit_json}, signature=SIGNATURE,
        example=example, code_paths=[TRACKING]), name="fit", params={},
        tags={"kind": KIND_FIT, "sweep": sweep})
    if not client.search_registered_models(f"name = '{sweep}'"):
        client.create_registered_model(
            sweep, tags={"kind": KIND_FIT, "sweep": sweep},
            description=f"Fit of sweep {sweep}: predict(width, frequency, task) -> rare_loss, "
                        "learned, critical_width")
    # The logged model's own location as the source: MLflow resolves a `models:/<id>` source
    # through the process's global tracking URI, which need not be this store's.
    return client.create_model_version(sweep, client.get_logged_model(model_id).artifact_location,
                                       run_id=run_id, tags=tags, model_id=model_id)


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


def trained_models(client: MlflowClient, experiment: str,
                   **params: str) -> list[MlflowLoggedModel]:
    """The sweep's trained grid-point models with these params (grid axes as the runs spell
    them: width="20M", frequency="1e-05"), oldest first."""
    query = " AND ".join([f"tags.kind = '{KIND_TRIAL}'"] +
                         [f"params.{k} = '{v}'" for k, v in params.items()])
    return search_logged(client, [experiment], query)


def delete_trained_models(client: MlflowClient, experiment: str) -> None:
    """`--restart`: the old runs' trained models go with them."""
    for model in trained_models(client, experiment):
        client.delete_logged_model(model.model_id)


def search_logged(client: MlflowClient, experiments: list[str],
                  query: str) -> list[MlflowLoggedModel]:
    """Logged models matching `query` (MLflow's filter syntax), oldest first."""
    found, token = [], None
    while True:
        page = client.search_logged_models(experiments, filter_string=query,
                                           max_results=PAGE, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return sorted(found, key=lambda m: m.creation_timestamp)
