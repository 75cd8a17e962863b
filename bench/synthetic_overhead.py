"""Ray + MLflow overhead of a synthetic sweep: wall time vs the trials' own compute, one run.

    .venv/bin/python bench/synthetic_overhead.py [--tasks 16] [--features 16]

A 48-point grid (4 widths x 3 frequencies x 2 tasks x 2 seeds, population mode, defaults)
runs through `sweeps run` in a subprocess, start-up, Ray, MLflow on sqlite and all, as
  packed    the default: frequency x seed trained together, 8 Tune trials
  split     the same, a pack estimated costlier than the mean split (`pack_limit: 1`)
  unpacked  `pack: []`, one Tune trial per grid point, 48 trials
Each trial reports `compute_s`, the time spent inside the numerical core. With S trial slots
(CPUs / CPUs per trial) the ideal wall time is sum(compute_s) / S, and

    overhead = 1 - ideal / wall

is the share of the wall time not spent computing: process and Ray start-up, trial start,
MLflow, checkpoints, and slots left idle at the end. Goal: at most 10%.

Where the rest goes, from the grid points' MLflow runs (each made as its trial's training
starts, ended once its metrics are stored): in slot-seconds, wall x S =
  start-up   S x (the first run's start - launch): imports, Ray, the sweep's run, Tune, the
             first trials' actors;
  compute    sum(compute_s);
  in trials  each trial's span (its runs' first start to last end) less its compute: logging,
             checkpoints, trained models, the runs' ends;
  between    slots idle between and after trials: a trial's actor going and the next one's
             starting (process, imports, its runs made), and the last trials' imbalance;
  shut-down  S x (process end - the last run's end): Tune's last state, Ray's shut-down.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

GRID = {"width": [16, 32, 64, 128], "frequency": [0.1, 0.03, 0.01],
        "task": ["simple", "complex"], "seed": [0, 1]}
SECTION = {"tasks": 16, "features_per_task": 16}  # the default problem size: K=16, r=16


def run_variant(name: str, synthetic: dict, workdir: Path) -> dict:
    spec = {"name": name, "trainable": "synthetic", "grid": GRID, "synthetic": synthetic}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sweeps", "run", str(path),
                    "--storage", str(workdir / "runs"),
                    "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    ended = time.time()
    results = [json.loads(r.read_text().splitlines()[-1])
               for r in sorted((workdir / "runs" / name).glob("*/result.json"))]
    compute = [r["compute_s"] for r in results]
    return {"trials": len(results), "wall": wall, "compute": sum(compute),
            "balance": balance(path, results),
            "spans": trial_spans(f"sqlite:///{workdir / 'mlflow.db'}", name),
            "launched": ended - wall, "ended": ended}


def trial_spans(tracking_uri: str, sweep: str) -> list[tuple[float, float]]:
    """(start, end) of each trial, in seconds since the epoch, from its grid points' runs."""
    from mlflow import MlflowClient

    from tracking.layout import TRIAL_TAG
    from tracking.runs import experiment_id, trial_runs

    client = MlflowClient(tracking_uri)
    by_trial: dict[str, list] = {}
    for run in trial_runs(client, experiment_id(client, sweep)):
        by_trial.setdefault(run.data.tags[TRIAL_TAG], []).append(run.info)
    return [(min(r.start_time for r in infos) / 1e3, max(r.end_time for r in infos) / 1e3)
            for infos in by_trial.values()]


def balance(spec_path: Path, results: list[dict]) -> list[tuple[str, float, float]]:
    """(trial, estimated share, measured share) of the compute, costliest first: how well
    `Trainable.cost` foresaw each trial's compute, which splitting packs goes by."""
    from sweeps.plan import plan
    from sweeps.spec import load_spec
    from trainables.points import TRIAL_KEY, unpack
    from tracking.layout import trial_name

    spec = load_spec(spec_path)
    costs = {p.point.key: spec.runs_as.cost(p.params) for p in plan(spec)}
    total, measured = sum(costs.values()), sum(r["compute_s"] for r in results)
    rows = [(trial_name(r["config"][TRIAL_KEY]),
             sum(costs[p.key] for p in unpack(r["config"][TRIAL_KEY])) / total,
             r["compute_s"] / measured) for r in results]
    return sorted(rows, key=lambda row: row[1], reverse=True)


def breakdown(r: dict, slots: int) -> dict[str, float]:
    """The variant's slot-seconds by where they went (module docstring), as shares."""
    first = min(start for start, _ in r["spans"])
    last = max(end for _, end in r["spans"])
    spans = sum(end - start for start, end in r["spans"])
    parts = {"start-up": slots * (first - r["launched"]), "compute": r["compute"],
             "in trials": spans - r["compute"], "between": slots * (last - first) - spans,
             "shut-down": slots * (r["ended"] - last)}
    return {name: seconds / (slots * r["wall"]) for name, seconds in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=SECTION["tasks"])
    parser.add_argument("--features", type=int, default=SECTION["features_per_task"])
    parser.add_argument("--variants", default="packed,split,unpacked",
                        help="which of packed,split,unpacked to run (default all)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="a new folder to keep the sweeps' state and MLflow store in")
    args = parser.parse_args()
    variants = {"packed": {}, "split": {"pack_limit": 1.0}, "unpacked": {"pack": []}}
    if not set(args.variants.split(",")) <= set(variants):
        parser.error(f"--variants: choose from {','.join(variants)}")
    slots = os.cpu_count() or 1  # the embedded Ray's CPUs, one per local-mode trial
    section = {"tasks": args.tasks, "features_per_task": args.features}
    print(f"48 grid points, K={args.tasks} r={args.features}, population; {slots} trial slots")
    print(f"{'variant':<9} {'trials':>6} {'wall s':>8} {'compute s':>10} {'ideal s':>8} "
          f"{'overhead':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        if args.keep:
            workdir.mkdir(parents=True)  # a new folder: nothing of another run mixed in
        for name in args.variants.split(","):
            r = run_variant(name, {**section, **variants[name]}, workdir)
            ideal = r["compute"] / slots
            print(f"{name:<9} {r['trials']:>6} {r['wall']:>8.1f} {r['compute']:>10.1f} "
                  f"{ideal:>8.1f} {1 - ideal / r['wall']:>9.1%}", flush=True)
            print("  slot time: " + ", ".join(f"{part} {share:.1%}" for part, share in
                                              breakdown(r, slots).items()), flush=True)
            print("  compute by trial, estimated / measured: " + ", ".join(
                f"{trial} {estimated:.0%}/{measured:.0%}"
                for trial, estimated, measured in r["balance"]), flush=True)


if __name__ == "__main__":
    main()
