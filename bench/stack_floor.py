"""The overhead bench's sweep against the least its stack costs, one run of each.

    PYTHONPATH=$PWD .venv/bin/python -m bench.stack_floor

The floor: what any sweep of the same trials on Ray Tune with MLflow on sqlite does before
and besides its training, with nothing of ours in between. One process (as `sweeps run` is)
imports Ray, Tune and MLflow, makes the new store and the sweep's experiment while it starts
the embedded Ray as `start_ray` does (no dashboard, no idle workers), and has Tune run the same
number of trials, as many at once as there are slots, reusing their processes; each trial
imports torch and Ray Train, opens the store and makes and ends one run per grid point. No
training, metrics, checkpoints, models, progress view, fit or Tune result files. Then the
bench's default sweep (`bench/synthetic_overhead.py`, packed) runs through `sweeps run`.

The floor's wall time is CPU-bound work on saturated cores (BENCHMARKS.md), which in a real
sweep comes on top of its compute, so floor wall / sweep wall is the share of the sweep's slot
time that no code of ours can give back on this machine; the overhead above it is ours.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from bench.synthetic_overhead import GRID, SECTION, run_variant


def floor_trial(tune_config: dict) -> None:
    """A trial's share of the floor: its imports, the store opened, its points' runs."""
    import ray.train  # noqa: F401  (a trial's loop runs under Ray Train)
    import torch  # noqa: F401  (and computes with torch)
    from mlflow import MlflowClient
    from ray import tune

    config = tune_config["config"]
    client = MlflowClient(config["uri"])
    for i in range(config["points"]):
        run = client.create_run(config["experiment"], run_name=f"{config['trial']}-{i}")
        client.set_terminated(run.info.run_id)
    tune.report({"points": config["points"]})


def floor(spec_path: Path, folder: Path, trials: int, points: int) -> None:
    """The floor's sweep, in this process (the bench runs it as a command)."""
    from mlflow import MlflowClient
    from ray import tune

    from sweeps.runner import max_concurrent, start_ray
    from sweeps.spec import load_spec

    spec = load_spec(spec_path)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with ThreadPoolExecutor(max_workers=1) as pool:  # as `sweeps run`: the store as Ray starts
        made = pool.submit(lambda: MlflowClient(uri).create_experiment(spec.name))
        start_ray(spec)
        experiment = made.result()
    configs = [{"uri": uri, "experiment": experiment, "trial": t,
                "points": points // trials + (t < points % trials)} for t in range(trials)]
    tune.Tuner(floor_trial, param_space={"config": tune.grid_search(configs)},
               tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent(spec),
                                           reuse_actors=True),
               run_config=tune.RunConfig(storage_path=str(folder / "runs"), verbose=0)).fit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor-only", nargs=4, metavar=("SPEC", "FOLDER", "TRIALS", "POINTS"),
                        help=argparse.SUPPRESS)  # the floor's own process
    args = parser.parse_args()
    if args.floor_only:
        spec, folder, trials, points = args.floor_only
        floor(Path(spec), Path(folder), int(trials), int(points))
        import ray

        ray.shutdown()  # as the sweeps command ends
        return
    from sweeps.packing import trials as packed_trials
    from sweeps.plan import plan
    from sweeps.spec import load_spec

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec_path = tmp / "floor.yaml"
        spec_path.write_text(yaml.safe_dump({"name": "floor", "trainable": "synthetic",
                                             "grid": GRID, "synthetic": SECTION}))
        spec = load_spec(spec_path)
        planned = plan(spec)
        trials, points = len(packed_trials(spec, planned)), len(planned)
        (tmp / "floor").mkdir()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "bench.stack_floor", "--floor-only",
                               str(spec_path), str(tmp / "floor"), str(trials), str(points)],
                              capture_output=True, text=True,
                              env={**os.environ, "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"})
        floor_wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"the floor's sweep failed:\n{done.stderr[-3000:]}")
        (tmp / "sweep").mkdir()
        sweep = run_variant("packed", SECTION, tmp / "sweep")
    slots = os.cpu_count() or 1  # as the overhead bench counts them
    overhead = 1 - sweep["compute"] / (slots * sweep["wall"])
    floor_share = floor_wall / sweep["wall"]
    print(f"{points} grid points in {trials} trials, K={SECTION['tasks']} "
          f"r={SECTION['features_per_task']}; the floor and `sweeps run`, once each")
    print(f"{'':<12} {'wall s':>7} {'compute s':>10} {'share of the sweep slot time':>29}")
    print(f"{'floor':<12} {floor_wall:>7.1f} {'':>10} {floor_share:>29.1%}")
    print(f"{'sweep':<12} {sweep['wall']:>7.1f} {sweep['compute']:>10.1f} "
          f"{overhead:>20.1%} overhead")
    print(f"ours above the floor: {overhead - floor_share:.1%} of the slot time; "
          f"floor wall / sweep wall = {floor_share:.1%}")


if __name__ == "__main__":
    main()
