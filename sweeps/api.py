"""The Python API: everything the command line does, for a notebook or a script.

    import sweeps

    sweeps.run("sweeps/presets/demo.yaml", overrides=["grid.width=[4,8]"])
    table = sweeps.curves("demo")          # a pandas DataFrame, one row per grid point
    result = sweeps.fit("demo")            # the fit, its run and its registered model

The CLI (`sweeps.cli`) is a thin layer over these functions: it parses flags, calls them and
prints. Bad input raises a `UserError` (the CLI's exit code 2) whose message says what is
wrong and how to fix it. Storage and tracking store default as on the command line:
`$SWEEPS_STORAGE` else `./runs`, `$MLFLOW_TRACKING_URI` else `sqlite:///mlflow.db`.
Only `run`, `resume` (Ray, torch) and `fit` (MLflow) import anything heavy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

from sweeps import plan as planning
from sweeps.spec import SweepSpec, apply_set, load_spec, validate as validate_spec
from tracking.curves import Row
from tracking.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from tracking.fit_run import Recorded
    from sweeps.reproduction import Outcome
    from tracking.sweep_fit import SweepFit

DEFAULT_STORAGE = "./runs"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
AXES = ("width", "frequency", "task", "seed")
SpecLike = Union[str, Path, dict, SweepSpec]


def default_storage() -> str:
    return os.environ.get("SWEEPS_STORAGE") or DEFAULT_STORAGE


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def load(spec: SpecLike, overrides: Sequence[str] = (), name: str | None = None) -> SweepSpec:
    """A validated spec from a YAML path, a dict or a spec, with `--set`-style overrides
    (`"synthetic.steps=200"`) and a new name applied."""
    if isinstance(spec, (str, Path)):
        return load_spec(spec, list(overrides), name)
    raw = spec.model_dump(mode="json") if isinstance(spec, SweepSpec) else dict(spec)
    raw = apply_set(raw, list(overrides))
    if name is not None:
        raw["name"] = name
    return validate_spec(raw)


@dataclass(frozen=True)
class Plan:
    """What a sweep would run: every grid point with its section as it will run."""

    spec: SweepSpec
    points: list[planning.PlannedPoint]

    def as_json(self) -> dict:
        return planning.as_json(self.spec, self.points)


def validate(spec: SpecLike, overrides: Sequence[str] = (), name: str | None = None) -> Plan:
    """The sweep's plan, without starting or writing anything (`sweeps validate`)."""
    checked = load(spec, overrides, name)
    return Plan(checked, planning.plan(checked))


@dataclass(frozen=True)
class SweepResult:
    """How a `run` or `resume` ended: `failed` holds the keys of the grid points that did not
    finish, their trial failed or the sweep interrupted (resume finishes them)."""

    name: str
    failed: list[str]
    storage: str
    tracking_uri: str

    @property
    def ok(self) -> bool:
        return not self.failed


def run(spec: SpecLike, overrides: Sequence[str] = (), name: str | None = None, *,
        storage: str | None = None, tracking_uri: str | None = None,
        restart: bool = False) -> SweepResult:
    """Run a sweep to the end on the Ray this process joins ($RAY_ADDRESS, a job) or an
    embedded one. A name that already has state is refused unless `restart`."""
    checked = load(spec, overrides, name)
    from sweeps import runner

    target = runner.Target(storage or default_storage(), tracking_uri or default_tracking_uri())
    failed = runner.run(checked, target, restart=restart)
    return SweepResult(checked.name, failed, target.storage, target.tracking_uri)


def resume(name: str, *, storage: str | None = None,
           tracking_uri: str | None = None) -> SweepResult:
    """Finish an interrupted sweep: same trials, same MLflow runs."""
    from sweeps import runner

    target = runner.Target(storage or default_storage(), tracking_uri or default_tracking_uri())
    return SweepResult(name, runner.resume(name, target), target.storage, target.tracking_uri)


def status(name: str, *, tracking_uri: str | None = None) -> list[Row]:
    """One row per grid point: key, state, last stored step, final metrics."""
    from tracking.query import open_reader, read_rows

    return read_rows(open_reader(tracking_uri or default_tracking_uri()), name)


def curves(name: str, *, tracking_uri: str | None = None) -> "pd.DataFrame":
    """Final metrics per grid point: one row each, its key, the grid axes typed (width an
    integer, or a ladder name such as "20M"), state, last step, run id and every final
    metric (NaN where a run has not logged it)."""
    import pandas as pd

    rows = status(name, tracking_uri=tracking_uri)
    metrics = sorted({m for r in rows for m in r.metrics})
    return pd.DataFrame(
        [{"key": r.key, **_axes(r.params), "state": r.state, "step": r.step,
          "run_id": r.run_id, **{m: r.metrics.get(m) for m in metrics}} for r in rows],
        columns=["key", *AXES, "state", "step", "run_id", *metrics])


@dataclass(frozen=True)
class FitResult:
    fit: "SweepFit"
    recorded: "Recorded"
    trained_models: int  # the sweep's trained grid-point models (logged models)


def fit(name: str, *, tracking_uri: str | None = None) -> FitResult:
    """Fit the sweep's scaling laws, critical widths and regimes from what has finished, log
    a `fit` run with the plots, and register the fit."""
    from trainables import catalog
    from tracking import fit_run, registry
    from tracking.curves import finished, scaling_curves
    from tracking.layout import INFERRED
    from tracking.query import late_gains, open_reader, read_rows
    from tracking.runs import connect
    from tracking.sweep_fit import fit_sweep

    uri = tracking_uri or default_tracking_uri()
    reader = open_reader(uri)
    rows = read_rows(reader, name)
    if not finished(rows):
        raise UserError(f"sweep {name!r} has no finished grid point yet (0 of {len(rows)}): "
                        f"nothing to fit; finish it with `sweeps resume {name}`")
    measure = catalog.get(rows[0].trainable).measure(rows[0].params)
    curves_ = scaling_curves(rows, measure, late_gains(reader, rows, measure))
    result = fit_sweep(name, rows[0].trainable, measure, curves_, total=len(rows),
                       missing=[r.key for r in rows if r.state not in ("FINISHED", INFERRED)])
    client = connect(uri)
    recorded = fit_run.record_fit(client, result)
    return FitResult(result, recorded,
                     len(registry.trained_models(client, reader.experiment_id(name))))


def _axes(params: dict) -> dict:
    width = params["width"]
    return {"width": int(width) if width.isdigit() else width,
            "frequency": float(params["frequency"]), "task": params["task"],
            "seed": int(params["seed"])}


def reproduce(experiment: str, scale: str = "quick", out: str | Path | None = None,
              overrides: Sequence[str] = (), *, storage: str | None = None,
              tracking_uri: str | None = None, say=print) -> "Outcome":
    """The paper's figures and claims for `experiment` ("synthetic", "olmo") at `scale`: runs
    the sweeps that are missing (reusing finished ones, resuming interrupted ones), writes
    `out/index.html`, `out/claims.json`, `out/figures/` (default `reproduce-<experiment>`)
    and logs them as a `kind=report` run. `overrides` (`"olmo.corpus=/data/dolma"`) apply to
    every sweep of the study. `Outcome.failed` names sweeps that did not finish
    (then no report is written; calling again resumes them)."""
    from sweeps import reproduction as reproducing

    return reproducing.reproduce(experiment, scale, Path(out or f"reproduce-{experiment}"),
                                 list(overrides), storage or default_storage(),
                                 tracking_uri or default_tracking_uri(), say=say)
