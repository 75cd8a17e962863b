"""The `fit` run: one per `sweeps fit`, a child of the sweep's run, tagged kind=fit (so it is
never taken for a grid point: `runs.trial_runs` reads kind=trial only), named after what it
fitted (`fit 58/60`: grid points finished of the sweep's).

It holds the fit's settings as params, its numbers as metrics (`fit/<task>/<frequency>/n_step`,
`.../rmse`, `.../critical_width`, `fit/<task>/beta`, ...), the fit as `fit.json`, the plots under
`plots/`, and the pyfunc model registered under the sweep's name.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus

from tracking import registry
from tracking.fit import laws, plots, sweep_fit
from tracking.fit.sweep_fit import SweepFit
from tracking.layout import FIT_FILE, KIND_FIT, PLOTS
from tracking.runs import child_run, experiment_id



@dataclass(frozen=True)
class Recorded:
    run_id: str
    plots_uri: str
    model_version: str
    plots: list[str]


def record_fit(client: MlflowClient, fit: SweepFit) -> Recorded:
    """Create the fit run, log everything into it and register the model."""
    run = child_run(client, experiment_id(client, fit.sweep), KIND_FIT,
                    f"fit {fit.finished}/{fit.total}",
                    tags={"sweep": fit.sweep, "trainable": fit.trainable})
    run_id = run.info.run_id
    try:
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in _params(fit).items()],
                         metrics=[Metric(k, v, 0, 0) for k, v in _metrics(fit).items()])
        with tempfile.TemporaryDirectory() as tmp:
            fit_json = Path(tmp, FIT_FILE)
            fit_json.write_text(fit.model_dump_json(indent=1))
            client.log_artifact(run_id, str(fit_json))
            drawn = plots.write_plots(fit, Path(tmp, PLOTS))
            client.log_artifacts(run_id, str(Path(tmp, PLOTS)), PLOTS)
            model = registry.register_fit(
                client, fit.sweep, run_id, fit_json, _example(fit),
                tags={"kind": KIND_FIT, "finished": str(fit.finished), "total": str(fit.total)})
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id)
    return Recorded(run_id=run_id, plots_uri=f"{run.info.artifact_uri}/{PLOTS}",
                    model_version=str(model.version), plots=[p.name for p in drawn])


def read_fit(client: MlflowClient, run_id: str) -> SweepFit:
    """The fit a `fit` run recorded."""
    with tempfile.TemporaryDirectory() as tmp:
        return SweepFit.model_validate_json(
            Path(client.download_artifacts(run_id, FIT_FILE, tmp)).read_text())


def _params(fit: SweepFit) -> dict:
    return {**{f"measure.{k}": v for k, v in fit.measure.model_dump().items()},
            "bootstrap": laws.BOOTSTRAP, "law": "step in log N",
            "plateau": sweep_fit.PLATEAU, "finished": fit.finished, "total": fit.total}


def _metrics(fit: SweepFit) -> dict[str, float]:
    values = {}
    for c in fit.curves:
        prefix = f"fit/{c.curve.task}/{c.curve.frequency:g}"
        if c.step is not None:
            values.update({f"{prefix}/{k}": float(getattr(c.step, k))
                           for k in ("high", "low", "n_step", "steepness", "rmse", "points")})
        if c.critical.width is not None:
            values[f"{prefix}/critical_width"] = c.critical.width
        if c.curve.theory_critical is not None:
            values[f"{prefix}/theory/critical_width"] = c.curve.theory_critical
    for law in fit.laws:
        for source in ("measured", "theory"):
            if getattr(law, source) is not None:
                suffix = "" if source == "measured" else "/theory"
                values[f"fit/{law.task}{suffix}/beta"] = getattr(law, source).beta
                values[f"fit/{law.task}{suffix}/beta_rmse_log"] = getattr(law, source).rmse_log
    return values


def _example(fit: SweepFit) -> pd.DataFrame:
    """One input row for the model's signature: a grid point of the sweep. Numeric widths
    go in as floats, so that any width (not only an integer) may be asked about."""
    c = fit.curves[0].curve
    width = c.widths[0]
    return pd.DataFrame({"width": [float(width) if width.isdigit() else width],
                         "frequency": [c.frequency], "task": [c.task]})
