"""A sweep's start-up and end, this checkout against an earlier one.

The overhead bench's 48-point grid (`bench/synthetic_overhead.py`) with every point capped at
`--steps`, so that starting and ending are most of the sweep: each round runs `sweeps run` in
both checkouts (a fresh process as a user runs it, a new store and storage each), alternated so
that load hits both alike. "first run" is when the first grid point's run started (a trial's
training starting, `trial_spans`) after launch, "wall" the whole command; medians of `--rounds`.

    python -m bench.sweep_start --before 029b47a
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.checkout import REPO, checkout
from bench.synthetic_overhead import GRID, trial_spans


def timed(tree: Path, spec: Path, folder: Path) -> tuple[float, float]:
    """(first run's start, wall) in seconds after launch, of one `sweeps run` from `tree`."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    launched, start = time.time(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sweeps", "run", str(spec), "--storage",
                           str(folder / "runs"), "--tracking-uri", uri],
                          cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"sweeps run in {tree}: {done.stderr[-2000:]}")
    return min(s for s, _ in trial_spans(uri, "start")) - launched, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300, help="each grid point's step cap")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = checkout(args.before, tmp)
        spec = tmp / "start.yaml"
        spec.write_text(yaml.safe_dump({"name": "start", "trainable": "synthetic", "grid": GRID,
                                        "synthetic": {"steps": args.steps}}))
        results: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
        for i in range(args.rounds):
            for label, tree in (("before", before), ("after", REPO)):
                folder = tmp / f"{label}-{i}"
                folder.mkdir()
                results[label].append(timed(tree, spec, folder))
                print(f"round {i + 1} {label}: first run {results[label][-1][0]:.1f} s, "
                      f"wall {results[label][-1][1]:.1f} s", flush=True)
    first = {k: statistics.median(t[0] for t in v) for k, v in results.items()}
    wall = {k: statistics.median(t[1] for t in v) for k, v in results.items()}
    points = math.prod(len(values) for values in GRID.values())
    print(f"{points} points x {args.steps} steps, median of {args.rounds}; before = "
          f"{args.before}, after = this checkout")
    print(f"{'':<10} {'before s':>9} {'after s':>8} {'after/before':>13}")
    for name, values in (("first run", first), ("wall", wall)):
        print(f"{name:<10} {values['before']:>9.1f} {values['after']:>8.1f} "
              f"{values['after'] / values['before']:>13.0%}")


if __name__ == "__main__":
    main()
