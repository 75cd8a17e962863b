"""The CLI's sweep commands: each calls the Python API and prints; returns an exit code."""

from __future__ import annotations

import csv
import json
import sys
import time
from argparse import Namespace

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sweeps import api, critical_width, packing, summary, tables
from sweeps.interrupt import Interrupted
from sweeps.plan import placement
from trainables import catalog
from tracking.curves import Row, typed, width_order
from tracking.layout import AXES, PART

console = Console(width=None if sys.stdout.isatty() else 160)


def validate(args: Namespace) -> int:
    plan = api.validate(args.spec, args.overrides, args.name)
    spec = plan.spec
    section = spec.runs_as.section  # each point's section typed again, as its worker reads it
    runs = [(p.point, section.model_validate(p.section)) for p in plan.points]
    warnings = spec.runs_as.warnings(runs)
    if args.format == "json":
        print(json.dumps(plan.as_json(), indent=1))
        for line in warnings:  # beside the JSON, not in it
            print(f"warning: {line}", file=sys.stderr)
        return 0
    place, packed = placement(spec), ", ".join(spec.pack) or "nothing"
    console.print(f"[bold]{spec.name}[/]: valid {spec.trainable} sweep")
    console.print(f"  grid      {len(plan.points)} points = " + " x ".join(
        f"{len(getattr(spec.grid, a))} {a}" for a in AXES))
    if spec.search == "critical_width":  # its trials: the points it trains, not the grid's
        console.print(f"  {critical_width.describe(spec, plan.points)}", highlight=False)
    else:
        trials = packing.trials(spec, plan.points)
        parts = [axes[PART] for axes in trials if PART in axes]
        split = sum(part.startswith("1/") for part in parts)
        console.print(f"  trials    {len(trials)} (packing {packed} into each trial" + (
            f"; {split} pack{'s' * (split > 1)} over pack_limit split into {len(parts)})"
            if split else ")"))
    for line in spec.runs_as.describe(runs):
        console.print(f"  {line}")
    mode = ("local mode, in the trial's process" if place.local else
            f"{place.workers} worker{'' if place.workers == 1 else 's'}")
    console.print(f"  resources per trial: {place.cpus_per_trial():g} CPU, "
                  f"{place.gpu * place.workers:g} GPU ({mode})")
    for line in spec.runs_as.cluster_size(runs):
        console.print(f"  {line}", markup=False, highlight=False)
    for line in warnings:
        console.print(f"[yellow]warning[/]: {escape(line)}", soft_wrap=True)
    return 0


def run(args: Namespace) -> int:
    try:
        result = api.run(args.spec, args.overrides, args.name, storage=args.storage,
                         tracking_uri=args.tracking_uri, restart=args.restart)
    except Interrupted as stop:
        return _interrupted(stop.sweep, args.tracking_uri)
    return _finished(result, args)


def resume(args: Namespace) -> int:
    try:
        result = api.resume(args.name, storage=args.storage, tracking_uri=args.tracking_uri)
    except Interrupted as stop:
        return _interrupted(stop.sweep, args.tracking_uri)
    return _finished(result, args)


def _finished(result: api.SweepResult, args: Namespace) -> int:
    name = result.name
    _print_curves(api.grid_rows(name, tracking_uri=result.tracking_uri), args)
    _print_where(result.tracking_uri, name)
    for line in ("Ray Tune's state:", f"  {result.storage.rstrip('/')}/{name}"):
        console.print(line, markup=False, highlight=False, soft_wrap=True)  # a path: whole
    if result.failed:
        from tracking.query import open_reader, read_sweep

        sweep = read_sweep(open_reader(result.tracking_uri), name)
        for line in summary.undecided(sweep):  # a search's open cells, and what they wait on
            console.print(line, markup=False, highlight=False)
        console.print(f"{len(result.failed)} grid points did not finish (failed, or "
                      f"interrupted{', or undecided by the search' * bool(sweep.undecided)}): "
                      f"see `sweeps status {name}`; `sweeps resume {name}` finishes them from "
                      "their checkpoints.", markup=False, highlight=False)
    return 0 if result.ok else 1


def _interrupted(name: str, tracking_uri: str) -> int:
    """After Ctrl-C: the sweep's state in a line, and exit 130 (128 + SIGINT), as a shell
    reports a command Ctrl-C stopped."""
    console.print(_summary(name, tracking_uri), markup=False, highlight=False)
    return 130


def _print_where(tracking_uri: str, sweep: str) -> None:
    from tracking.layout import ui_lines
    from tracking.query import open_reader

    for line in ui_lines(tracking_uri, sweep, open_reader(tracking_uri).experiment_id(sweep)):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def ui_text(tracking_uri: str, sweep: str) -> str:
    """Where the sweep's runs are in MLflow's UI (its runs view, not the GenAI overview)."""
    from tracking.layout import ui_address
    from tracking.query import open_reader

    return ui_address(tracking_uri, open_reader(tracking_uri).experiment_id(sweep))


def _summary(name: str, tracking_uri: str) -> str:
    from tracking.query import open_reader, read_sweep, sweep_rows

    sweep = read_sweep(open_reader(tracking_uri), name)
    return summary.line(sweep, sweep_rows(sweep))


def status(args: Namespace) -> int:
    if args.watch:
        return _watch(args)
    from tracking.query import open_reader, read_sweep, sweep_rows

    sweep = read_sweep(open_reader(args.tracking_uri), args.name)
    rows = sweep_rows(sweep)
    console.print(summary.line(sweep, rows), markup=False, highlight=False)
    columns = [tables.Column("key", [r.key for r in rows]),
               tables.Column("state", [_state(r) for r in rows]),
               tables.Column("last step", [str(r.step) if r.step >= 0 else "" for r in rows],
                             numeric=True),
               tables.Column("run id", [r.run_id for r in rows])]
    _print_table(columns, 3, args)
    for line in summary.undecided(sweep):  # a search's open cells, and what they wait on
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    _print_where(args.tracking_uri, args.name)
    return 0


def list_(args: Namespace) -> int:
    """Every sweep in the tracking store: its state and counts of grid points."""
    from tracking.query import open_reader, read_sweep, sweep_rows

    reader = open_reader(args.tracking_uri)
    found = []
    for name in reader.experiment_names():
        sweep = read_sweep(reader, name)
        if sweep.parent is None and not sweep.trials:
            continue  # not a sweep's experiment (MLflow's Default, a notebook's)
        rows = sweep_rows(sweep)
        counts = summary.Counts.of(rows)
        found.append([name, summary.state(sweep, counts), sweep.trainable or "",
                      f"{counts.finished}/{counts.total}", str(counts.running),
                      str(counts.interrupted), str(counts.failed), str(counts.waiting)])
    if not found:
        console.print(f"no sweeps in {args.tracking_uri} (start one with `sweeps run demo`)",
                      markup=False, highlight=False, soft_wrap=True)
        return 0
    heads = ["sweep", "state", "trainable", "finished", "running", "interrupted", "failed",
             "not started"]
    columns = [tables.Column(h, [row[i] for row in found], numeric=i >= 3)
               for i, h in enumerate(heads)]
    _print_table(columns, 4, args)
    return 0


def _watch(args: Namespace) -> int:
    """What `sweeps run` shows, from the tracking store, until the sweep's driver ends it
    (Ctrl-C stops watching, never the sweep); then its final metrics."""
    from sweeps import progress
    from tracking.query import open_reader

    api.grid_rows(args.name, tracking_uri=args.tracking_uri)  # an unknown sweep: exit 2 now
    show = progress.console()
    show.print(f"MLflow: {ui_text(args.tracking_uri, args.name)}", markup=False,
               highlight=False, soft_wrap=True)
    watcher = progress.Watcher(lambda: open_reader(args.tracking_uri), args.name, show,
                               every_s=1.0 if show.is_terminal else 2.0)
    try:
        last = watcher.run(until_ended=True)
    except KeyboardInterrupt:  # stops watching; the sweep goes on
        return 0
    _print_curves(api.grid_rows(args.name, tracking_uri=args.tracking_uri), args)
    if last is not None and last.silent:
        console.print(f"The sweep's driver has not been heard from since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last.heard_at))}: "
                      f"it was stopped without ending the sweep (killed, or its machine "
                      f"lost). `sweeps resume {args.name}` finishes its grid points.")
    elif last is not None and last.status not in (None, "FINISHED"):
        console.print(f"The sweep ended {last.status}: `sweeps resume {args.name}` finishes "
                      "its grid points.")
    return 0


def curves(args: Namespace) -> int:
    # From the rows, not `api.curves`' DataFrame: importing pandas would double the answer time.
    rows = api.grid_rows(args.name, tracking_uri=args.tracking_uri)
    if args.format == "json":
        json.dump([{"key": r.key, "run_id": r.run_id, "state": r.state, "step": r.step,
                    "params": typed(r.params), "metrics": r.metrics} for r in rows],
                  sys.stdout, indent=2)
        print()
    elif args.format == "csv":
        names = sorted({m for r in rows for m in r.metrics})
        writer = csv.writer(sys.stdout)
        writer.writerow(["key", *AXES, "state", "step", "run_id", *names])
        for r in rows:
            writer.writerow([r.key, *(r.params[a] for a in AXES), r.state, r.step,
                             r.run_id, *(r.metrics.get(m, "") for m in names)])
    else:
        _print_curves(rows, args)
    return 0


def _print_curves(rows: list[Row], args: Namespace) -> None:
    """Final metrics per grid point: the axes that vary, state, step, then the metrics that
    fit (an axis with one value goes to the title)."""
    names = catalog.get(rows[0].trainable).columns if rows else ()
    varying = [a for a in api.AXES if len({r.params[a] for r in rows}) > 1]
    fixed = [f"{a} {rows[0].params[a]}" for a in api.AXES if a not in varying and rows]
    title = "Final metrics per grid point" + (f" ({', '.join(fixed)})" if fixed else "")
    columns = [tables.Column(a, [r.params[a] for r in rows], numeric=a != "task")
               for a in varying]
    columns += [tables.Column("state", [_state(r) for r in rows]),
                tables.Column("step", [str(r.step) if r.step >= 0 else "" for r in rows],
                              numeric=True)]
    for name in names:
        values = [r.metrics.get(name) for r in rows]
        fmt = tables.number_format(values)
        columns.append(tables.Column(name, [fmt(v) for v in values], numeric=True))
    _print_table(columns, len(varying) + 2, args, title)
    _print_learned(rows)


def _print_table(columns: list, keep: int, args: Namespace, title: str | None = None) -> None:
    named = getattr(args, "columns", None)
    shown, left_out = tables.choose(columns, console.width, keep, getattr(args, "wide", False),
                                    named.split(",") if named else None)
    tables.render(console, shown, title, left_out)


def _state(row: Row) -> str:
    """KILLED is how MLflow says a Ctrl-C cut the point off."""
    return "INTERRUPTED" if row.state == "KILLED" else row.state


def _print_learned(rows: list[Row]) -> None:
    """Rare task learned, by width: measured (L), not (.), with the theory's optimum in
    brackets where it disagrees; one line per (task, frequency, seed)."""
    if not rows:
        return
    measure = catalog.get(rows[0].trainable).measure(rows[0].params)
    widths = sorted({r.params["width"] for r in rows}, key=width_order)
    title = ["Rare task learned by width (L learned, . not; [theory] where it differs)"]
    if any(r.inferred is not None for r in rows):
        title.append("(L) (.): inferred by the critical-width search, not trained")
    for line in title:  # each under 80 columns
        console.print(line, markup=False, highlight=False, soft_wrap=True, style="italic")
    table = Table("task", "frequency", "seed", *widths, box=None)
    lines: dict[tuple, dict] = {}
    for r in rows:
        p = r.params
        lines.setdefault((p["task"], p["frequency"], p["seed"]), {})[p["width"]] = r
    for (task, frequency, seed), by_width in lines.items():
        cells = []
        for w in widths:
            r = by_width.get(w)
            score = r and r.metrics.get(measure.score)
            measured = None if score is None else measure.learned(score)
            theory = r and r.metrics.get("theory/rare/learned")
            if measured is None and r and r.inferred is not None:  # a search's, untrained
                cells.append("(L)" if r.inferred else "(.)")
                continue
            cell = "?" if measured is None else ("L" if measured else ".")
            if theory is not None and measured is not None and bool(theory) != bool(measured):
                cell += escape(f" [{'L' if theory else '.'}]")
            cells.append(cell)
        table.add_row(task, frequency, seed, *cells)
    console.print(table)


def reproduce(args: Namespace) -> int:
    outcome = api.reproduce(args.experiment, args.scale, args.out, args.overrides,
                            storage=args.storage, tracking_uri=args.tracking_uri,
                            say=lambda line: console.print(line, markup=False, highlight=False,
                                                           soft_wrap=True))
    if not outcome.ok:
        console.print(f"{len(outcome.failed)} sweeps did not finish ({', '.join(outcome.failed)})"
                      f": no report written; run the same command again to resume them.")
        return 1
    verdicts = {True: "supported", False: "NOT supported", None: "not judged"}
    for claim in outcome.claims:
        console.print(f"  {claim.id} {verdicts[claim.holds]:>13}  {claim.claim}", markup=False,
                      highlight=False, soft_wrap=True)
    console.print(f"Report: {outcome.out / 'index.html'} (claims.json, figures/ beside it); "
                  f"MLflow report run {outcome.report_run}", markup=False, highlight=False,
                  soft_wrap=True)
    return 0
