"""`sweeps fit` and `sweeps registry`: a sweep's scaling laws, and the models they registered."""

from __future__ import annotations

import argparse
import re
from argparse import Namespace

from rich.markup import escape
from rich.table import Table

from sweeps import api
from sweeps.commands import _fmt, console
from tracking.errors import UserError
from tracking.layout import AXES

AXIS_VALUE = re.compile(r"[A-Za-z0-9.+-]+")


def add_parsers(commands, common: argparse.ArgumentParser) -> None:
    """`sweeps fit NAME`, `sweeps registry list`, `sweeps registry show MODEL`."""
    help_ = "fit scaling laws and regimes, log the plots, register the fit"
    fit = commands.add_parser("fit", parents=[common], help=help_, description=help_)
    fit.add_argument("name", metavar="NAME", help="sweep name")
    fit.set_defaults(handler="sweeps.fit_commands:fit")
    help_ = "a sweep's models: its registered fit and its trained grid-point models"
    registry = commands.add_parser("registry", help=help_, description=help_)
    verbs = registry.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = verbs.add_parser("list", parents=[common], help="every registered model")
    listing.set_defaults(handler="sweeps.fit_commands:registry_list")
    help_ = ("a fit's versions and summary, or a sweep's trained grid-point models "
             "(SWEEP.trials), filtered by grid axes")
    show = verbs.add_parser("show", parents=[common], help=help_, description=help_)
    show.set_defaults(handler="sweeps.fit_commands:registry_show")
    show.add_argument("model", metavar="MODEL",
                      help="SWEEP (its registered fit) or SWEEP.trials (its trained models)")
    for axis, example in [("width", "20M"), ("frequency", "1e-5"), ("task", "add"),
                          ("seed", "0")]:
        show.add_argument(f"--{axis}", help=f"only models trained with this {axis}, e.g. "
                                            f"{example}")


def fit(args: Namespace) -> int:
    from sweeps.commands import ui_text
    from tracking.layout import trials_name

    result = api.fit(args.name, tracking_uri=args.tracking_uri)
    recorded = result.recorded
    print_fit(result.fit)
    console.print(f"fit run {recorded.run_id}: plots ({', '.join(recorded.plots)}) in "
                  f"{recorded.plots_uri}")
    console.print(f"model [bold]models:/{args.name}/{recorded.model_version}[/] "
                  f"(models:/{args.name}@latest); trained models: {result.trained_models}, "
                  f"one per finished grid point (`sweeps registry show "
                  f"{trials_name(args.name)} --width W ...`)")
    console.print(f"MLflow: {escape(ui_text(args.tracking_uri, args.name))}", soft_wrap=True)
    return 0


def print_fit(result) -> None:
    """The fit's summary: one line per curve, then N*(f) per task, then what is missing."""
    from tracking.fit.laws import MIN_FREQUENCIES, MIN_WIDTHS

    m = result.measure
    table = Table("task", "frequency", "points", "high", "low", "N_step [95%]", "steep.",
                  "rmse", "N*", "N* theory", "regime", box=None,
                  title=escape(f"Fit of {result.sweep}: {m.loss} = low + (high - low) / "
                               f"(1 + (N / N_step)^steep.); N* where {m.score} "
                               f"{'<=' if m.lower_is_better else '>='} {m.threshold:g}"),
                  caption=f"{result.finished} of {result.total} grid points finished; "
                          "N_step or N* as <=N or >N: censored, beyond the swept widths "
                          "(kept out of N*(f))")
    for c in result.curves:
        law = c.step
        n_step = law and _interval(law.n_step, law.n_step_interval)
        if law and law.censored:
            n_step = (">" if law.n_step > max(c.curve.sizes) else "<=") + \
                _fmt(max(c.curve.sizes) if law.n_step > max(c.curve.sizes)
                     else min(c.curve.sizes))
        table.add_row(c.curve.task, f"{c.curve.frequency:g}", str(sum(map(len, c.curve.losses))),
                      *((_fmt(law.high), _fmt(law.low), n_step, _fmt(law.steepness),
                         _fmt(law.rmse)) if law
                        else ("", "", f"needs {MIN_WIDTHS} widths", "", "")),
                      c.critical.bound, _fmt(c.curve.theory_critical), c.regime)
    console.print(table)
    laws = Table("task", "beta [95%]", "c", "frequencies", "rmse log N*", "theory beta",
                 box=None, title="Critical width against frequency: N*(f) = c f^-beta")
    for law in result.laws:
        measured, theory = law.measured, law.theory
        laws.add_row(law.task,
                     _interval(measured.beta, measured.beta_interval) if measured
                     else f"needs uncensored N* at {MIN_FREQUENCIES} frequencies",
                     _fmt(measured and measured.c), str(measured.frequencies) if measured else "",
                     _fmt(measured and measured.rmse_log), _fmt(theory and theory.beta))
    console.print(laws)
    if result.missing:
        console.print(f"missing: {len(result.missing)} grid points not finished, left out of "
                      f"the fit: {', '.join(result.missing[:5])}"
                      + (", ..." if len(result.missing) > 5 else "")
                      + f" (finish them with `sweeps resume {result.sweep}`)")


def registry_list(args: Namespace) -> int:
    """Registered models (the fits), each with its sweep's trained grid-point models."""
    from tracking.layout import trials_name
    from tracking.query import open_reader

    reader = open_reader(args.tracking_uri)
    table = Table("model", "kind", "sweep", "versions", "newest", "trained models",
                  "description", box=None)
    for model in reader.models():
        versions = reader.versions(model.name)
        sweep = model.tags.get("sweep", "")
        experiment = sweep and reader.experiment_id(sweep)
        trained = _trained(reader, experiment) if experiment else []
        table.add_row(model.name, model.tags.get("kind", ""), sweep, str(len(versions)),
                      f"v{versions[-1].version} (@latest)" if versions else "",
                      f"{len(trained)} ({trials_name(sweep)})" if trained else "",
                      model.description)
    console.print(table)
    return 0


def registry_show(args: Namespace) -> int:
    """A fit's versions and summary, or (`SWEEP.trials`) a sweep's trained models, filtered
    by grid axes."""
    from tracking.query import open_reader

    reader = open_reader(args.tracking_uri)
    if args.model.endswith(".trials"):
        return _show_trained(reader, args.model.removesuffix(".trials"), _axes(args))
    if args.model not in {m.name for m in reader.models()}:
        raise UserError(f"no registered model named {args.model!r} in {args.tracking_uri} "
                        "(`sweeps registry list` shows them; a sweep's trained models are "
                        "SWEEP.trials)")
    return _show_versions(reader, args.model, _axes(args))


def _trained(reader, experiment: str) -> list:
    from tracking.layout import KIND_TRIAL

    return [m for m in reader.logged_models(experiment)
            if m.tags.get("kind") == KIND_TRIAL and m.status == "READY"]


def _show_trained(reader, sweep: str, wanted: dict[str, str]) -> int:
    experiment = reader.experiment_id(sweep)
    if experiment is None:
        raise UserError(f"no sweep named {sweep!r} in {reader.uri} (`sweeps registry list` "
                        "shows the fitted ones)")
    models = [m for m in _trained(reader, experiment)
              if all(m.params.get(k) == v for k, v in wanted.items())]
    n = len(models)
    table = Table("name", *AXES, "model (load with mlflow.pyfunc.load_model)", "run id",
                  box=None, title=f"{sweep}: {n} trained model{'' if n == 1 else 's'}" + (
                      " matching " + ", ".join(f"{k}={v}" for k, v in wanted.items())
                      if wanted else ""))
    for m in models:
        table.add_row(m.name, *(m.params.get(a, "") for a in AXES), f"models:/{m.model_id}",
                      m.run_id)
    console.print(table)
    return 0


def _show_versions(reader, name: str, wanted: dict[str, str]) -> int:
    from tracking.layout import FIT_FILE, KIND_FIT
    from tracking.fit.sweep_fit import SweepFit

    versions = [v for v in reader.versions(name)
                if all(v.tags.get(k) == value for k, value in wanted.items())]
    tags = {k for v in versions for k in v.tags}
    tag_names = [a for a in AXES if a in tags] + sorted(tags - set(AXES))
    table = Table("version", *tag_names, "run id", "source", box=None,
                  title=f"{name}: {len(versions)} version{'' if len(versions) == 1 else 's'}"
                        + (" matching " + ", ".join(f"{k}={v}" for k, v in wanted.items())
                           if wanted else ""))
    for v in versions:
        table.add_row(f"v{v.version}", *(v.tags.get(k, "") for k in tag_names), v.run_id,
                      f"models:/{name}/{v.version}")
    console.print(table)
    newest = versions[-1] if versions else None
    if newest is not None and newest.tags.get("kind") == KIND_FIT:
        print_fit(SweepFit.model_validate_json(reader.artifact_text(newest.run_id, FIT_FILE)))
    return 0


def _axes(args: Namespace) -> dict[str, str]:
    """The grid-axis filters, spelled as the runs' params: `--frequency 1e-5` is '1e-05'."""
    axes = {}
    for axis in AXES:
        value = getattr(args, axis)
        if value is None:
            continue
        if not AXIS_VALUE.fullmatch(value):
            raise UserError(f"--{axis} {value!r}: expected a grid value such as 20M, 1e-5, "
                            "add or 0")
        try:
            axes[axis] = {"frequency": lambda v: str(float(v)),
                          "seed": lambda v: str(int(v))}.get(axis, str)(value)
        except ValueError:
            raise UserError(f"--{axis} {value!r}: not a number")
    return axes


def _interval(value: float, interval) -> str:
    return _fmt(value) + (f" [{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else "")
