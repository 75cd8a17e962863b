"""The Python API: everything the command line does, for a notebook or a script.

    import sweeps

    plan = sweeps.validate("sweeps/presets/demo.yaml")        # checks, writes nothing
    sweeps.run("sweeps/presets/demo.yaml", name="demo-api")   # a new sweep, beside `demo`
    table = sweeps.curves("demo-api")      # a pandas DataFrame, one row per grid point
    result = sweeps.fit("demo-api", log=False)   # the fit, computed; nothing written

Functions (each documented with its arguments, what it returns and an example):
- `load(spec, overrides, name)`: a validated spec;
- `validate(spec, overrides, name)`: the plan, every grid point with its params;
- `run(spec, overrides, name, storage=, tracking_uri=, restart=)`: runs a sweep to the end;
- `resume(name, storage=, tracking_uri=)`: finishes an interrupted sweep;
- `status(name, tracking_uri=)`: one row per grid point, params typed;
- `curves(name, tracking_uri=)`: the final metrics as a DataFrame;
- `fit(name, tracking_uri=, log=)`: scaling laws, critical widths and regimes;
- `reproduce(experiment, scale, out, overrides, ...)`: the paper's figures and claims.

The CLI (`sweeps.cli`) is a thin layer over these functions: it parses flags, calls them and
prints. Bad input raises a `UserError` (the CLI's exit code 2) whose message says what is
wrong and how to fix it, in this API's terms (`overrides`, `storage`, `sweeps.resume(...)`).
Storage and tracking store default as on the command line: `$SWEEPS_STORAGE` else `./runs`,
`$MLFLOW_TRACKING_URI` else `sqlite:///mlflow.db`. Only `run`, `resume` (Ray, torch) and
`fit` (MLflow, when it logs) import anything heavy.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence, Union

from sweeps import plan as planning
from sweeps.spec import SweepSpec, apply_set, load_spec, validate as validate_spec
from tracking.curves import Row, typed
from tracking.errors import UserError
from tracking.layout import AXES

if TYPE_CHECKING:
    import pandas as pd

    from tracking.fit.run import Recorded
    from sweeps.reproduction import Outcome
    from tracking.fit.sweep_fit import SweepFit

DEFAULT_STORAGE = "./runs"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
SpecLike = Union[str, Path, dict, SweepSpec]

# The command line's words in a message, and this API's for the same thing.
_IN_API_TERMS = [
    (re.compile(r"`sweeps run SPEC --restart`"), "`sweeps.run(spec, restart=True)`"),
    (re.compile(r"`sweeps run SPEC`"), "`sweeps.run(spec)`"),
    (re.compile(r"`sweeps resume ([a-z0-9-]+)`"), r'`sweeps.resume("\1")`'),
    (re.compile(r"--set (\S)"), r"overrides \1"),
    (re.compile(r"--tracking-uri\b"), "`tracking_uri`"),
    (re.compile(r"--storage\b"), "`storage`"),
    (re.compile(r"--restart\b"), "`restart=True`"),
    (re.compile(r"--name\b"), "`name`"),
]


_CLI = ContextVar("cli", default=False)  # called by the command line: its words stay


@contextmanager
def cli_terms() -> Iterator[None]:
    """The command line calling: messages keep naming its flags."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


@contextmanager
def _api_terms() -> Iterator[None]:
    """A `UserError` raised inside, reworded to name this API's arguments, not the CLI's
    flags (the messages are shared with the command line)."""
    try:
        yield
    except UserError as err:
        if _CLI.get():
            raise
        message = str(err)
        for pattern, words in _IN_API_TERMS:
            message = pattern.sub(words, message)
        raise type(err)(message) from None


def default_storage() -> str:
    return os.environ.get("SWEEPS_STORAGE") or DEFAULT_STORAGE


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def load(spec: SpecLike, overrides: Sequence[str] = (), name: str | None = None) -> SweepSpec:
    """A validated sweep spec.

    Args:
        spec: a YAML file's path, a dict shaped like one, or a `SweepSpec`.
        overrides: dotted `key=value` settings applied first, as `--set` on the command
            line: `["synthetic.steps=200", "grid.width=[4,8]"]`.
        name: a new name for the sweep (its MLflow experiment).

    Returns:
        The `SweepSpec`, every default filled in.

    Raises:
        UserError: the spec or an override is invalid (the message names the field).

    Example:
        >>> spec = sweeps.load("sweeps/presets/demo.yaml", ["synthetic.steps=200"], "demo-2")
        >>> spec.name, spec.synthetic.steps
        ('demo-2', 200)
    """
    with _api_terms():
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
    points: list[planning.PointPlan]

    def as_json(self) -> dict:
        return planning.as_json(self.spec, self.points)


def validate(spec: SpecLike, overrides: Sequence[str] = (), name: str | None = None) -> Plan:
    """The sweep's plan, without starting or writing anything (`sweeps validate`).

    Args:
        spec: as for `load`.
        overrides: as for `load`.
        name: as for `load`.

    Returns:
        A `Plan`: `.spec`, `.points` (each grid point's key and params), `.as_json()` (the
        `sweeps validate --format json` object).

    Example:
        >>> plan = sweeps.validate("sweeps/presets/demo.yaml", ["grid.width=[4,8]"])
        >>> len(plan.points), plan.points[0].point.key
        (8, 'width=4,frequency=0.1,task=simple,seed=0')
    """
    checked = load(spec, overrides, name)
    with _api_terms():
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
    embedded one, logging to MLflow.

    Args:
        spec: as for `load`.
        overrides: as for `load`.
        name: as for `load`; a `name` that already has state is refused (finish it with
            `resume`), so pass a new one to run a spec twice.
        storage: where checkpoints and Tune's state go (a folder or `s3://...`).
        tracking_uri: the MLflow tracking store.
        restart: start over, deleting the sweep's earlier runs and state (never needed for
            a new `name`).

    Returns:
        A `SweepResult`: `.ok`, `.failed` (keys of grid points that did not finish),
        `.name`, `.storage`, `.tracking_uri`.

    Example:
        >>> result = sweeps.run("sweeps/presets/demo.yaml", name="demo-api")
        >>> result.ok, result.failed
        (True, [])
    """
    checked = load(spec, overrides, name)
    from sweeps import runner

    target = runner.Target(storage or default_storage(), tracking_uri or default_tracking_uri())
    with _api_terms():
        failed = runner.run(checked, target, restart=restart)
    return SweepResult(checked.name, failed, target.storage, target.tracking_uri)


def resume(name: str, *, storage: str | None = None,
           tracking_uri: str | None = None) -> SweepResult:
    """Finish an interrupted sweep: same trials, same MLflow runs.

    Args:
        name: the sweep's name.
        storage: as the sweep was run with.
        tracking_uri: as the sweep was run with.

    Returns:
        A `SweepResult`, as `run`'s.

    Example:
        >>> sweeps.resume("demo-api").ok
        True
    """
    from sweeps import runner

    target = runner.Target(storage or default_storage(), tracking_uri or default_tracking_uri())
    with _api_terms():
        return SweepResult(name, runner.resume(name, target), target.storage,
                           target.tracking_uri)


def status(name: str, *, tracking_uri: str | None = None) -> list[Row]:
    """One row per grid point, read from the tracking store.

    Args:
        name: the sweep's name.
        tracking_uri: the MLflow tracking store.

    Returns:
        A list of `Row`s (task by task, frequent to rare, narrow first): `.key`, `.state`
        (FINISHED, RUNNING, SCHEDULED, ...), `.step` (the last stored), `.run_id`,
        `.params` typed (numbers as numbers: `width` 12, `frequency` 0.01; a ladder width
        such as "20M" stays text) and `.metrics` (the final value of each).

    Example:
        >>> rows = sweeps.status("demo-api")
        >>> rows[0].params["width"], rows[0].state
        (4, 'FINISHED')
    """
    return [replace(row, params=typed(row.params)) for row in grid_rows(name, tracking_uri)]


def grid_rows(name: str, tracking_uri: str | None = None) -> list[Row]:
    """`status`'s rows with the params as MLflow stores them (text): the CLI's tables."""
    from tracking.query import open_reader, read_rows

    with _api_terms():
        return read_rows(open_reader(tracking_uri or default_tracking_uri()), name)


def curves(name: str, *, tracking_uri: str | None = None) -> "pd.DataFrame":
    """Final metrics per grid point, as a pandas DataFrame.

    Args:
        name: the sweep's name.
        tracking_uri: the MLflow tracking store.

    Returns:
        One row per grid point: `key`, the grid axes typed (`width` an integer, or a ladder
        name such as "20M"; `frequency` a float; `task`; `seed` an integer), `state`,
        `step`, `run_id`, then every final metric (NaN where a run has not logged it).

    Example:
        >>> table = sweeps.curves("demo-api")
        >>> table.pivot_table(index=["task", "frequency"], columns="width",
        ...                   values="rare/learned")
    """
    import pandas as pd

    rows = status(name, tracking_uri=tracking_uri)
    metrics = sorted({m for r in rows for m in r.metrics})
    return pd.DataFrame(
        [{"key": r.key, **{a: r.params[a] for a in AXES}, "state": r.state, "step": r.step,
          "run_id": r.run_id, **{m: r.metrics.get(m) for m in metrics}} for r in rows],
        columns=["key", *AXES, "state", "step", "run_id", *metrics])


@dataclass(frozen=True)
class FitResult:
    """A sweep's fit: `fit` (the `SweepFit`: per curve its law, critical width and regime;
    N*(f) per task), `recorded` (its `fit` run, plots and model version; None when not
    logged) and `trained_models` (the sweep's trained grid-point models)."""

    fit: "SweepFit"
    recorded: "Recorded | None"
    trained_models: int


def fit(name: str, *, tracking_uri: str | None = None, log: bool = True) -> FitResult:
    """Fit the sweep's scaling laws, critical widths and regimes from what has finished.

    Args:
        name: the sweep's name.
        tracking_uri: the MLflow tracking store.
        log: record the fit (a `fit` run with its plots, a new version of the registered
            model `name`, the learning curves and headline on the sweep's run), as
            `sweeps fit` does; False computes it and writes nothing.

    Returns:
        A `FitResult`.

    Raises:
        UserError: no grid point of the sweep has finished.

    Example:
        >>> result = sweeps.fit("demo-api", log=False)
        >>> [(c.curve.task, c.curve.frequency, c.critical.width) for c in result.fit.curves]
    """
    from trainables import catalog
    from tracking.curves import finished, scaling_curves
    from tracking.fit.sweep_fit import fit_sweep
    from tracking.layout import INFERRED
    from tracking.query import late_gains, open_reader, read_rows

    uri = tracking_uri or default_tracking_uri()
    with _api_terms():
        reader = open_reader(uri)
        rows = read_rows(reader, name)
        if not finished(rows):
            raise UserError(f"sweep {name!r} has no finished grid point yet (0 of "
                            f"{len(rows)}): nothing to fit; finish it with "
                            f"`sweeps resume {name}`")
    measure = catalog.get(rows[0].trainable).measure(rows[0].params)
    curves_ = scaling_curves(rows, measure, late_gains(reader, rows, measure))
    result = fit_sweep(name, rows[0].trainable, measure, curves_, total=len(rows),
                       missing=[r.key for r in rows if r.state not in ("FINISHED", INFERRED)])
    trained = [m for m in reader.logged_models(reader.experiment_id(name))
               if m.tags.get("kind") == "trial" and m.status == "READY"]
    if not log:
        return FitResult(result, None, len(trained))
    from sweeps.sweep_run import summarise
    from tracking.fit import run as fit_run
    from tracking.runs import connect

    client = connect(uri)
    recorded = fit_run.record_fit(client, result)
    summarise(uri, name, result)
    return FitResult(result, recorded, len(trained))


def reproduce(experiment: str, scale: str = "quick", out: str | Path | None = None,
              overrides: Sequence[str] = (), *, storage: str | None = None,
              tracking_uri: str | None = None, say=print) -> "Outcome":
    """The paper's figures and claims from the study's sweeps (`sweeps reproduce`).

    Runs the sweeps that are missing (reusing finished ones, resuming interrupted ones),
    then writes the report and logs it as a `kind=report` run.

    Args:
        experiment: the study, "synthetic" or "olmo".
        scale: "quick" (2 CPU cores) or "full" (a GPU cluster).
        out: the report's folder (default `reproduce-<experiment>`): `index.html`,
            `claims.json`, `figures/`, `data/`.
        overrides: dotted `key=value` settings applied to every sweep of the study
            (`["olmo.corpus=/data/dolma"]`).
        storage: as for `run`.
        tracking_uri: as for `run`.
        say: where progress lines go (default `print`).

    Returns:
        An `Outcome`: `.ok`, `.failed` (sweeps that did not finish: then no report is
        written, and calling again resumes them), `.claims`, `.out`, `.report_run`.

    Example:
        >>> done = sweeps.reproduce("synthetic", "quick", "reproduce-synthetic")
        >>> [(c.id, c.holds) for c in done.claims]
    """
    from sweeps import reproduction as reproducing

    with _api_terms():
        return reproducing.reproduce(experiment, scale, Path(out or f"reproduce-{experiment}"),
                                     list(overrides), storage or default_storage(),
                                     tracking_uri or default_tracking_uri(), say=say)
