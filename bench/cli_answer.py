"""Import and answer times of the read-only commands, this checkout against an earlier one.

Each command runs as a user runs it (`python -m sweeps ...`, a fresh process) on the same small
sqlite store, in both checkouts, rounds alternated so that load hits both alike; the median of
`--rounds`. "import s" is what `python -X importtime` counts for the modules the command
loads; "total s" the process's wall time.

    python -m bench.cli_answer --before eaedcce    # the commit before the fast CLI
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.checkout import REPO, checkout

COMMANDS = [("validate", ["validate", str(REPO / "sweeps/presets/demo.yaml")]),
            ("status", ["status", "tiny"]), ("curves", ["curves", "tiny"]),
            ("registry list", ["registry", "list"])]
TOP_LEVEL = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$")  # not indented


def make_store(folder: Path) -> str:
    """A 12-point sweep's runs with final metrics, and a registered model."""
    from mlflow import MlflowClient

    sys.path.insert(0, str(REPO))
    from tracking.runs import PlannedRun, ensure_runs, experiment_id

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = experiment_id(client, "tiny", create=True)
    keys = [(w, f) for w in (2, 4, 8, 12) for f in (0.2, 0.05, 0.02)]
    runs = ensure_runs(client, experiment, [PlannedRun(
        key=f"width={w},frequency={f},task=complex,seed=0",
        params={"width": str(w), "frequency": str(f), "task": "complex", "seed": "0",
                "learned_threshold": "0.5"},
        tags={"sweep": "tiny", "trainable": "synthetic"}) for w, f in keys])
    for run_id in runs.values():
        client.log_metric(run_id, "rare/loss", 0.4, step=10)
        client.set_terminated(run_id)
    client.create_registered_model("tiny.trials", tags={"kind": "trials", "sweep": "tiny"})
    return uri


def timed(tree: Path, args: list[str], uri: str, cwd: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "MLFLOW_TRACKING_URI": uri}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "sweeps", *args],
                          cwd=cwd, env=env, capture_output=True, text=True)
    total = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{args} in {tree}: {done.stderr[-2000:]}")
    imported = sum(int(m[1]) for line in done.stderr.splitlines()
                   if (m := TOP_LEVEL.match(line)))
    return imported / 1e6, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="eaedcce", help="the earlier commit (default: "
                                                            "the one before the fast CLI)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = checkout(args.before, tmp)
        uri = make_store(tmp)
        results = {name: {"before": [], "after": []} for name, _ in COMMANDS}
        for _ in range(args.rounds):
            for name, command in COMMANDS:
                for label, tree in (("before", before), ("after", REPO)):
                    results[name][label].append(timed(tree, command, uri, tmp))
    print(f"read-only commands, median of {args.rounds}; before = {args.before}, after = "
          "this checkout")
    print(f"{'command':<14} {'import s before':>15} {'after':>7} {'total s before':>15} "
          f"{'after':>7} {'after/before':>13}")
    for name, timing in results.items():
        imp = {k: statistics.median(t[0] for t in v) for k, v in timing.items()}
        tot = {k: statistics.median(t[1] for t in v) for k, v in timing.items()}
        print(f"{name:<14} {imp['before']:>15.2f} {imp['after']:>7.2f} {tot['before']:>15.2f} "
              f"{tot['after']:>7.2f} {tot['after'] / tot['before']:>13.0%}")


if __name__ == "__main__":
    main()
