"""`sweeps`: the command line (CONTRACTS 2).

Each command is a thin layer over the Python API (`sweeps.api`): it parses flags, calls it and
prints. `main` is the one place where the project's errors (`UserError`) become a message on
stderr and exit code 2. Heavy imports (Ray, torch, MLflow) happen inside the commands that need
them, so `validate`, `status`, `curves` and `registry` answer in about a second.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys

from sweeps import api, fit_commands, injection_commands, submit
from sweeps.api import DEFAULT_STORAGE, DEFAULT_TRACKING_URI, default_storage
from sweeps.api import default_tracking_uri
from sweeps.errors import did_you_mean
from tracking.errors import UnknownSweep, UserError


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--storage", default=default_storage(),
                        help="where sweep state lives: a folder or s3://... (default "
                             f"$SWEEPS_STORAGE, else {DEFAULT_STORAGE})")
    common.add_argument("--tracking-uri", default=default_tracking_uri(),
                        help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else "
                             f"{DEFAULT_TRACKING_URI})")
    table = argparse.ArgumentParser(add_help=False)
    table.add_argument("--wide", action="store_true",
                       help="every column, even past the terminal's width")
    table.add_argument("--columns", metavar="A,B,...",
                       help="the metric columns to show, by name (default: those that fit)")
    parser = argparse.ArgumentParser(
        prog="sweeps", description="Scaling sweeps on Ray Tune, tracked in MLflow.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_command(name: str, help_: str, parents=()) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common, *parents], help=help_,
                                  description=help_)
        sub.add_argument("spec", metavar="SPEC",
                         help="sweep spec YAML file, or a preset's name (demo, paper-synthetic, "
                              "...)")
        sub.add_argument("--name", help="sweep name (overrides the spec's)")
        sub.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE",
                         help="override a spec field, e.g. synthetic.steps=200")
        return sub

    validate = spec_command("validate", "check a spec; print the plan: grid, steps, resources")
    validate.add_argument("--format", choices=["table", "json"], default="table",
                          help="json: one object {name, trainable, trials, points: [{key, "
                               "params}]}, params exactly what each run records")
    run = spec_command("run", "run a sweep to the end", parents=[table])
    run.add_argument("--restart", action="store_true",
                     help="discard the sweep's earlier state and runs, and start over")
    for name, help_ in [("resume", "finish an interrupted sweep: same trials, same MLflow runs"),
                        ("status", "one line per grid point: key, state, last step, run"),
                        ("curves", "final metrics per grid point, from MLflow")]:
        parents = [common] if name == "curves" else [common, table]
        sub = commands.add_parser(name, parents=parents, help=help_, description=help_)
        sub.add_argument("name", metavar="NAME", help="sweep name")
        if name == "curves":
            sub.add_argument("--wide", action="store_true",
                             help="table: every column, even past the terminal's width")
            sub.add_argument("--columns", metavar="A,B,...",
                             help="table: the metric columns to show, by name")
            sub.add_argument("--format", choices=["table", "json", "csv"], default="table")
        if name == "status":
            sub.add_argument("--watch", action="store_true",
                             help="follow the sweep live (what `sweeps run` shows) until it "
                                  "ends; Ctrl-C stops watching, not the sweep")
    listing = commands.add_parser("list", parents=[common, table],
                                  help="every sweep in the tracking store: state and counts",
                                  description="every sweep in the tracking store: its state "
                                              "and counts of grid points")
    listing.set_defaults(handler="sweeps.commands:list_")
    injection_commands.add_parsers(commands, common)
    fit_commands.add_parsers(commands, common)
    submit.add_parser(commands)
    reproduce = commands.add_parser(
        "reproduce", parents=[common], help="the paper's figures and claims from its sweeps",
        description="Run (or reuse, or resume) the sweeps the paper's figures need, then write "
                    "DIR/index.html, DIR/claims.json and DIR/figures/, and log them as a "
                    "kind=report run. Exit 0 report written, 1 a sweep failed (run it again "
                    "to resume), 2 invalid input.")
    reproduce.add_argument("experiment", metavar="EXPERIMENT",
                           help="synthetic (the toy model) or olmo")
    reproduce.add_argument("--scale", default="quick",
                           help="synthetic: quick | full; olmo: quick | gpu | full "
                                "(default quick)")
    reproduce.add_argument("--out", metavar="DIR",
                           help="report folder (default ./reproduce-EXPERIMENT)")
    reproduce.add_argument("--set", dest="overrides", action="append", default=[],
                           metavar="KEY=VALUE",
                           help="override a field of every sweep of the study, e.g. "
                                "olmo.corpus=/data/dolma (sweeps already run keep theirs: a "
                                "changed spec is refused, not rerun)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A command is sweeps.commands.<name> unless its parser names another "module:function".
    handler = getattr(args, "handler", f"sweeps.commands:{args.command}")
    module, _, function = handler.partition(":")

    try:
        with api.cli_terms():  # its messages name this command line's flags
            return getattr(importlib.import_module(module), function)(args)
    except UnknownSweep as err:
        print(f"error: {err}{_nearest_sweep(args)}", file=sys.stderr)
        return 2
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the sweep started, or a read-only command
        print("interrupted", file=sys.stderr)
        return 130


def _nearest_sweep(args: argparse.Namespace) -> str:
    """`; did you mean 'demo'?` from the sweeps in the tracking store, if one is close."""
    name, uri = getattr(args, "name", None), getattr(args, "tracking_uri", None)
    if not name or not uri:
        return ""
    from tracking.query import open_reader

    try:
        return did_you_mean(name, open_reader(uri).experiment_names())
    except UserError:
        return ""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scaling-sweeps")
    except PackageNotFoundError:
        return "(not installed)"


def entry() -> int:
    """`main` as the `sweeps` command, which then exits without a last garbage collection
    over everything Ray, MLflow and torch made (seconds of a command's exit, for memory that
    goes back to the system as the process ends anyway), and shuts Ray down itself:
    Ray's own exit hook first sleeps 0.5 s for workers' last log lines, and a finished
    command has none left to wait for. Not in `main`: tests call it in one long process,
    where frozen objects would never be collected and Ray is shared."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`sweeps curves demo --format csv | head -1`): end quietly, as
        # Python's docs advise (signal module, "Note on SIGPIPE"): what is left unflushed
        # goes to /dev/null, and the exit code is 128 + SIGPIPE, a shell's for a closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    ray = sys.modules.get("ray")  # imported by the commands that use it, only
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    gc.freeze()
    return code
