"""`sweeps fit` and `sweeps registry`: a sweep's scaling laws, and the models they registered."""

from __future__ import annotations

import argparse
import re
from argparse import Namespace
from dataclasses import dataclass, replace

from sweeps import api, commands, tables
from sweeps.errors import did_you_mean
from tracking.errors import UserError
from tracking.layout import AXES

AXIS_VALUE = re.compile(r"[A-Za-z0-9.+-]+")


def add_parsers(parsers, common: argparse.ArgumentParser, table: argparse.ArgumentParser) -> None:
    """`sweeps fit NAME`, `sweeps registry list`, `sweeps registry show MODEL`; `table` adds
    `--wide` and `--columns`."""
    help_ = "fit scaling laws and regimes, log the plots, register the fit"
    fit = parsers.add_parser("fit", parents=[common, table], help=help_, description=help_)
    fit.add_argument("name", metavar="NAME", help="sweep name")
    fit.set_defaults(handler="sweeps.fit_commands:fit")
    help_ = "a sweep's models: its registered fit and its trained grid-point models"
    registry = parsers.add_parser("registry", help=help_, description=help_)
    verbs = registry.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = verbs.add_parser("list", parents=[common, table], help="every registered model")
    listing.set_defaults(handler="sweeps.fit_commands:registry_list")
    help_ = ("a fit's versions and summary, or a sweep's trained grid-point models "
             "(SWEEP.trials), filtered by grid axes")
    show = verbs.add_parser("show", parents=[common, table], help=help_, description=help_)
    show.set_defaults(handler="sweeps.fit_commands:registry_show")
    show.add_argument("model", metavar="MODEL",
                      help="SWEEP (its registered fit) or SWEEP.trials (its trained models)")
    for axis, example in [("width", "20M"), ("frequency", "1e-5"), ("task", "add"),
                          ("seed", "0")]:
        show.add_argument(f"--{axis}", help=f"only models trained with this {axis}, e.g. "
                                            f"{example}")


def fit(args: Namespace) -> int:
    from tracking.layout import trials_name

    result = api.fit(args.name, tracking_uri=args.tracking_uri)
    recorded = result.recorded
    _show(args, fit_tables(result.fit))
    _say(f"fit run {recorded.run_id}: plots ({', '.join(recorded.plots)}) in")
    _url(recorded.plots_uri)
    _say(f"model models:/{args.name}/{recorded.model_version} (models:/{args.name}@latest); "
         f"trained models: {result.trained_models}, one per finished grid point (`sweeps "
         f"registry show {trials_name(args.name)} --width W ...`)")
    commands._print_where(args.tracking_uri, args.name)
    return 0


@dataclass(frozen=True)
class Shown:
    """One table of a command's answer: the first `keep` columns always shown, the rest as
    they fit; a title above it and a note under it, both wrapped between words."""

    columns: list[tables.Column]
    keep: int
    title: str = ""
    note: str = ""


def fit_tables(result) -> list[Shown]:
    """The fit's summary: one row per curve, then N*(f) per task, then what is missing. The
    grid axes and N* first; long cells (intervals, the laws' reasons) last."""
    from tracking.fit.laws import MIN_FREQUENCIES, MIN_WIDTHS

    m = result.measure
    curves = result.curves
    laws = [c.step for c in curves]
    fitted = [law for law in laws if law]
    step_fmt = tables.number_format([v for law in fitted for v in
                                     (law.n_step, *(law.n_step_interval or ()))])
    n_steps = []
    for c, law in zip(curves, laws):
        if law is None:
            n_steps.append(f"needs {MIN_WIDTHS} widths")
        elif law.censored:
            top, bottom = max(c.curve.sizes), min(c.curve.sizes)
            n_steps.append(f">{top:g}" if law.n_step > top else f"<={bottom:g}")
        else:
            n_steps.append(_interval(step_fmt, law.n_step, law.n_step_interval))
    critical = tables.number_format([c.critical.width for c in curves])
    columns = [
        tables.Column("task", [c.curve.task for c in curves]),
        tables.Column("frequency", [f"{c.curve.frequency:g}" for c in curves], numeric=True),
        tables.Column("N*", [critical(c.critical.width) if c.critical.width is not None
                             else c.critical.bound for c in curves], numeric=True),
        _numbers("N* theory", [c.curve.theory_critical for c in curves]),
        tables.Column("regime", [c.regime for c in curves]),
        tables.Column("points", [str(sum(map(len, c.curve.losses))) for c in curves],
                      numeric=True),
        tables.Column("N_step [95%]", n_steps, numeric=True),
        *(_numbers(name, [getattr(law, field) if law else None for law in laws])
          for name, field in [("steep.", "steepness"), ("high", "high"), ("low", "low"),
                              ("rmse", "rmse")]),
    ]
    curve_table = Shown(
        columns, 2,
        title=f"Fit of {result.sweep}: {m.loss} = low + (high - low) / (1 + (N / N_step)^steep.)"
              f"; N* where {m.score} {'<=' if m.lower_is_better else '>='} {m.threshold:g}",
        note=f"{result.finished} of {result.total} grid points finished; N_step or N* as <=N "
             "or >N: censored, beyond the swept widths (kept out of N*(f))")
    measured = [law.measured for law in result.laws]
    beta = tables.number_format([v for law in measured if law
                                 for v in (law.beta, *(law.beta_interval or ()))])
    law_table = Shown([
        tables.Column("task", [law.task for law in result.laws]),
        tables.Column("beta [95%]", [_interval(beta, law.beta, law.beta_interval) if law
                                     else f"needs uncensored N* at {MIN_FREQUENCIES} frequencies"
                                     for law in measured], numeric=True),
        _numbers("theory beta", [law.theory and law.theory.beta for law in result.laws]),
        _numbers("c", [law and law.c for law in measured]),
        _numbers("frequencies", [law and law.frequencies for law in measured]),
        _numbers("rmse log N*", [law and law.rmse_log for law in measured]),
    ], 2, title="Critical width against frequency: N*(f) = c f^-beta")
    if result.missing:
        law_table = replace(law_table, note=(
            f"missing: {len(result.missing)} grid points not finished, left out of the fit: "
            f"{', '.join(result.missing[:5])}" + (", ..." if len(result.missing) > 5 else "")
            + f" (finish them with `sweeps resume {result.sweep}`)"))
    return [curve_table, law_table]


def registry_list(args: Namespace) -> int:
    """Registered models (the fits), each with its sweep's trained grid-point models."""
    from tracking.layout import trials_name
    from tracking.query import open_reader

    reader = open_reader(args.tracking_uri)
    rows = []
    for model in reader.models():
        versions = reader.versions(model.name)
        sweep = model.tags.get("sweep", "")
        experiment = sweep and reader.experiment_id(sweep)
        trained = _trained(reader, experiment) if experiment else []
        rows.append([model.name, model.tags.get("kind", ""), str(len(versions)),
                     f"v{versions[-1].version} (@latest)" if versions else "",
                     f"{len(trained)} ({trials_name(sweep)})" if trained else "", sweep,
                     model.description or ""])
    heads = ["model", "kind", "versions", "newest", "trained models", "sweep", "description"]
    _show(args, [Shown([tables.Column(h, [r[i] for r in rows], numeric=h == "versions")
                        for i, h in enumerate(heads)], 1)])
    return 0


def registry_show(args: Namespace) -> int:
    """A fit's versions and summary, or (`SWEEP.trials`) a sweep's trained models, filtered
    by grid axes."""
    from tracking.query import open_reader

    reader = open_reader(args.tracking_uri)
    if args.model.endswith(".trials"):
        return _show_trained(reader, args.model.removesuffix(".trials"), _axes(args), args)
    if args.model not in {m.name for m in reader.models()}:
        raise UserError(f"no registered model named {args.model!r} in {args.tracking_uri} "
                        "(`sweeps registry list` shows them; a sweep's trained models are "
                        "SWEEP.trials)")
    return _show_versions(reader, args.model, _axes(args), args)


def _trained(reader, experiment: str) -> list:
    from tracking.layout import KIND_TRIAL

    return [m for m in reader.logged_models(experiment)
            if m.tags.get("kind") == KIND_TRIAL and m.status == "READY"]


def _show_trained(reader, sweep: str, wanted: dict[str, str], args: Namespace) -> int:
    experiment = reader.experiment_id(sweep)
    if experiment is None:
        raise UserError(f"no sweep named {sweep!r} in {reader.uri} (`sweeps registry list` "
                        "shows the fitted ones)")
    models = [m for m in _trained(reader, experiment)
              if all(m.params.get(k) == v for k, v in wanted.items())]
    n = len(models)
    # The grid axes, then the URI that loads the model; its name (the axes again) and run last.
    columns = [*(tables.Column(a, [m.params.get(a, "") for m in models], numeric=a != "task")
                 for a in AXES),
               tables.Column("model", [f"models:/{m.model_id}" for m in models]),
               tables.Column("name", [m.name for m in models]),
               tables.Column("run id", [m.run_id for m in models])]
    _show(args, [Shown(columns, len(AXES), title=f"{sweep}: {n} trained model{'' if n == 1 else 's'}"
                       + _matching(wanted),
                       note="load one with mlflow.pyfunc.load_model(MODEL)" if n else "")])
    return 0


def _show_versions(reader, name: str, wanted: dict[str, str], args: Namespace) -> int:
    from tracking.layout import FIT_FILE, KIND_FIT
    from tracking.fit.sweep_fit import SweepFit

    versions = [v for v in reader.versions(name)
                if all(v.tags.get(k) == value for k, value in wanted.items())]
    tags = {k for v in versions for k in v.tags}
    tag_names = [a for a in AXES if a in tags] + sorted(tags - set(AXES))
    columns = [tables.Column("version", [f"v{v.version}" for v in versions]),
               *(tables.Column(k, [v.tags.get(k, "") for v in versions]) for k in tag_names),
               tables.Column("source", [f"models:/{name}/{v.version}" for v in versions]),
               tables.Column("run id", [v.run_id for v in versions])]
    shown = [Shown(columns, 1, title=f"{name}: {len(versions)} "
                                     f"version{'' if len(versions) == 1 else 's'}"
                                     + _matching(wanted))]
    newest = versions[-1] if versions else None
    if newest is not None and newest.tags.get("kind") == KIND_FIT:
        shown += fit_tables(SweepFit.model_validate_json(
            reader.artifact_text(newest.run_id, FIT_FILE)))
    _show(args, shown)
    return 0


def _show(args: Namespace, shown: list[Shown]) -> None:
    """Print a command's tables: `--columns` names columns of any of them (one no table has:
    exit 2, the nearest names), each table shows those it has; `--wide` every column."""
    named = args.columns.split(",") if getattr(args, "columns", None) else None
    if named is not None:
        known = list(dict.fromkeys(c.name for s in shown for c in s.columns[s.keep:]))
        for name in named:
            if name not in known:
                raise UserError(f"--columns: no column {name!r}{did_you_mean(name, known)}; "
                                f"the columns are: {', '.join(known)}")
    out = commands.console
    for s in shown:
        if s.title:
            _say(s.title, style="italic")
        mine = None if named is None else [n for n in named
                                           if n in {c.name for c in s.columns[s.keep:]}]
        columns, left_out = tables.choose(s.columns, out.width, s.keep,
                                          getattr(args, "wide", False), mine)
        tables.render(out, columns, left_out=left_out)
        if s.note:
            _say(s.note, style="dim")


def _say(text: str, style: str | None = None) -> None:
    """Prose, wrapped between words."""
    commands.console.print(text, markup=False, highlight=False, style=style)


def _url(text: str) -> None:
    """A URL on a line of its own, never wrapped: copied whole."""
    commands.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _matching(wanted: dict[str, str]) -> str:
    return " matching " + ", ".join(f"{k}={v}" for k, v in wanted.items()) if wanted else ""


def _numbers(name: str, values: list) -> tables.Column:
    fmt = tables.number_format(values)
    return tables.Column(name, [fmt(v) for v in values], numeric=True)


def _interval(fmt, value: float, interval) -> str:
    return fmt(value) + (f" [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else "")


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
