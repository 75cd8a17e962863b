"""The CLI's commands: each takes parsed arguments and returns an exit code."""

from __future__ import annotations

import csv
import json
import sys
from argparse import Namespace

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sweeps import grid
from sweeps.errors import UserError
from sweeps.spec import load_spec

TABLE_METRICS = {
    "synthetic": ("loss", "rare/loss", "theory/rare/loss", "rare/alignment",
                  "interference/cos", "rare/learned"),
    "olmo": ("train/loss", "rare/test_acc", "rare/test_loss", "rare/train_loss", "ref/loss",
             "throughput/tokens_per_s"),
}
console = Console(width=None if sys.stdout.isatty() else 160)


def _target(args: Namespace):
    from sweeps.runner import Target

    return Target(storage=args.storage, tracking_uri=args.tracking_uri)


def validate(args: Namespace) -> int:
    spec = load_spec(args.spec, args.overrides, args.name)
    from sweeps.runner import placement, planned_runs

    points, place = grid.points(spec), placement(spec)
    steps = [int(p.params["steps"]) for p in planned_runs(spec)]
    packed = ", ".join(spec.pack) or "nothing"
    console.print(f"[bold]{spec.name}[/]: valid {spec.trainable} sweep")
    console.print(f"  grid      {len(points)} points = " + " x ".join(
        f"{len(getattr(spec.grid, a))} {a}" for a in ("width", "frequency", "task", "seed")))
    console.print(f"  trials    {grid.trial_count(spec)} (packing {packed} into each trial)")
    if spec.trainable == "olmo":
        _print_olmo(spec)
    else:
        console.print(f"  steps     {min(steps)}..{max(steps)} per point ({spec.synthetic.mode})")
    mode = "local mode, in the trial's process" if place.local else f"{place.workers} workers"
    console.print(f"  resources per trial: {place.cpus_per_trial():g} CPU, "
                  f"{place.gpu * place.workers:g} GPU ({mode})")
    return 0


def _print_olmo(spec) -> None:
    from trainables.ladder import LADDER
    from trainables.olmo import ladder_lr

    olmo = spec.olmo
    tokens = olmo.steps * olmo.batch_size * olmo.seq_len
    console.print(f"  steps     {olmo.steps} of {olmo.batch_size} x {olmo.seq_len} tokens "
                  f"({tokens:,} tokens per point); corpus {olmo.corpus or 'embedded'}")
    for width in spec.grid.width:
        lr = olmo.lr or ladder_lr(width)
        console.print(f"  {width:>5}     {LADDER[width].non_embedding_params:,} non-embedding "
                      f"parameters, depth {LADDER[width].depth}, peak lr {lr:.3g}")


def run(args: Namespace) -> int:
    spec = load_spec(args.spec, args.overrides, args.name)
    from sweeps import runner

    target = _target(args)
    return _finished(target, spec.name, runner.run(spec, target, restart=args.restart))


def resume(args: Namespace) -> int:
    from sweeps import runner

    target = _target(args)
    return _finished(target, args.name, runner.resume(args.name, target))


def _finished(target, name: str, code: int) -> int:
    _print_curves(_rows(target, name))
    console.print(f"MLflow: experiment [bold]{name}[/] at {target.tracking_uri} "
                  f"(`mlflow ui --backend-store-uri {target.tracking_uri}`); "
                  f"Ray state: {target.sweep_dir(name)}")
    if code:
        console.print(f"Some trials failed: see `sweeps status {name}`; "
                      f"`sweeps resume {name}` retries them from their checkpoints.")
    return code


def status(args: Namespace) -> int:
    table = Table("key", "state", "last step", "run id", box=None)
    for row in _rows(_target(args), args.name):
        table.add_row(row.key, row.state, str(row.step), row.run_id)
    console.print(table)
    return 0


def curves(args: Namespace) -> int:
    rows = _rows(_target(args), args.name)
    if args.format == "json":
        json.dump([{"key": r.key, "run_id": r.run_id, "state": r.state, "step": r.step,
                    "params": r.params, "metrics": r.metrics} for r in rows],
                  sys.stdout, indent=2)
        print()
    elif args.format == "csv":
        names = sorted({m for r in rows for m in r.metrics})
        writer = csv.writer(sys.stdout)
        writer.writerow(["key", "width", "frequency", "task", "seed", "state", "step", *names])
        for r in rows:
            writer.writerow([r.key, *(r.params[a] for a in ("width", "frequency", "task", "seed")),
                             r.state, r.step, *(r.metrics.get(m, "") for m in names)])
    else:
        _print_curves(rows)
    return 0


def _rows(target, name: str):
    from tracking.curves import UnknownSweep, read_rows
    from sweeps.runner import connect_tracking

    try:
        return read_rows(connect_tracking(target.tracking_uri), name)
    except UnknownSweep:
        raise UserError(f"no sweep named {name!r} in {target.tracking_uri} "
                        "(check the name and --tracking-uri)")


def _print_curves(rows) -> None:
    names = TABLE_METRICS[rows[0].trainable if rows else "synthetic"]
    table = Table("width", "frequency", "task", "seed", "state", "step",
                  *names, title="Final metrics per grid point", box=None)
    for r in rows:
        p = r.params
        table.add_row(p["width"], p["frequency"], p["task"], p["seed"], r.state, str(r.step),
                      *(_fmt(r.metrics.get(m)) for m in names))
    console.print(table)
    _print_learned(rows)


def _print_learned(rows) -> None:
    """Rare task learned, by width: measured (L), not (.), with the theory's optimum in
    brackets where it disagrees; one line per (task, frequency, seed)."""
    from tracking.curves import measure_for, width_order

    if not rows:
        return
    measure = measure_for(rows)
    widths = sorted({r.params["width"] for r in rows}, key=width_order)
    table = Table("task", "frequency", "seed", *widths,
                  title=escape("Rare task learned by width (L learned, . not; [theory] where it differs)"),
                  box=None)
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
            cell = "?" if measured is None else ("L" if measured else ".")
            if theory is not None and measured is not None and bool(theory) != bool(measured):
                cell += escape(f" [{'L' if theory else '.'}]")
            cells.append(cell)
        table.add_row(task, frequency, seed, *cells)
    console.print(table)


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4g}"
