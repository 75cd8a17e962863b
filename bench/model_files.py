"""Logging a pack's trained students: a layout saved once vs MLflow's save_model each, one run.

    .venv/bin/python -m bench.model_files [--models 6] [--rounds 3]

For the synthetic student at d = K r of 64, 256 and 512 (K=4, 16, 32 tasks of r=16; the
signature has d + 1 columns), `--models` students of one pack are logged as a trial logs
them (`tracking.registry.log_trained_model`: the logged model, its files, the run's output)
into a fresh sqlite store, twice per round, alternating which goes first:
  layout    `tracking.model_files` as it is: MLflow saves the layout once (before the timing,
            as a process's first model has), the rest are written from its files;
  mlflow    MLflow's `save_model` for every model (the saved layouts forgotten before each).
Printed per d: seconds per model each way and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from trainables.synthetic import SYNTHETIC, SyntheticSection
from tracking import model_files
from tracking.registry import log_trained_model
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id

R = 16


def log_pack(client, experiment: str, dim: int, models: int, forget: bool) -> float:
    """Seconds per model to log `models` students of width 32 at this d."""
    runs = ensure_runs(client, experiment, [PlannedRun(
        key=f"d{dim}-{time.monotonic_ns()}-{i}", tags={"sweep": "bench", "trainable": "synthetic"},
        params={"width": "32", "frequency": "0.01", "task": "complex", "seed": str(i)})
        for i in range(models)])
    rng = np.random.default_rng(dim)
    section = SyntheticSection(tasks=dim // R, features_per_task=R)
    start = time.perf_counter()
    for run_id in runs.values():
        if forget:
            model_files._saved.clear()
        state = np.linalg.qr(rng.normal(size=(dim, 32)))[0], rng.normal(size=(dim, 32))
        with tempfile.TemporaryDirectory() as folder:
            log_trained_model(client, run_id, SYNTHETIC.trained_model(section, state,
                                                                      Path(folder)))
    return (time.perf_counter() - start) / models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'d':>4} {'layout s/model':>15} {'mlflow s/model':>15} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"sqlite:///{Path(tmp, 'mlflow.db')}")
        experiment = experiment_id(client, "bench", create=True)
        for dim in (64, 256, 512):
            log_pack(client, experiment, dim, 1, forget=False)  # the layout, saved by MLflow
            ours, theirs = [], []
            for round_ in range(args.rounds):
                for forget in ((False, True) if round_ % 2 == 0 else (True, False)):
                    (theirs if forget else ours).append(
                        log_pack(client, experiment, dim, args.models, forget))
            print(f"{dim:>4} {np.median(ours):>15.3f} {np.median(theirs):>15.3f} "
                  f"{np.median(theirs) / np.median(ours):>5.1f}x", flush=True)


if __name__ == "__main__":
    main()
