"""`sweeps`: the command line (CONTRACTS 2).

Each command is a small function over validated inputs; `main` maps a `UserError` to its
message on stderr and exit code 2. Heavy imports (Ray, MLflow) happen inside the commands
that need them, so `sweeps validate` answers quickly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from sweeps import fit_commands, injection_commands, submit
from sweeps.errors import UserError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--storage", default=os.environ.get("SWEEPS_STORAGE", "./runs"),
                        help="where sweep state lives: a folder or s3://... (default "
                             "$SWEEPS_STORAGE, else ./runs)")
    common.add_argument("--tracking-uri",
                        default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
                        help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else "
                             f"{DEFAULT_TRACKING_URI})")
    parser = argparse.ArgumentParser(
        prog="sweeps", description="Scaling sweeps on Ray Tune, tracked in MLflow.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_command(name: str, help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_, description=help_)
        sub.add_argument("spec", metavar="SPEC", help="sweep spec YAML file")
        sub.add_argument("--name", help="sweep name (overrides the spec's)")
        sub.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="override a spec field, e.g. synthetic.steps=200")
        return sub

    spec_command("validate", "check a spec; print grid size and resources")
    run = spec_command("run", "run a sweep to the end")
    run.add_argument("--restart", action="store_true",
                     help="discard the sweep's earlier state and runs, and start over")
    for name, help_ in [("resume", "finish an interrupted sweep: same trials, same MLflow runs"),
                        ("status", "one line per grid point: key, state, last step, run"),
                        ("curves", "final metrics per grid point, from MLflow")]:
        sub = commands.add_parser(name, parents=[common], help=help_, description=help_)
        sub.add_argument("name", metavar="NAME", help="sweep name")
        if name == "curves":
            sub.add_argument("--format", choices=["table", "json", "csv"], default="table")
    injection_commands.add_parsers(commands, common)
    fit_commands.add_parsers(commands, common)
    submit.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A command is sweeps.commands.<name> unless its parser names another "module:function".
    handler = getattr(args, "handler", f"sweeps.commands:{args.command}")
    module, _, function = handler.partition(":")

    try:
        return getattr(importlib.import_module(module), function)(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
