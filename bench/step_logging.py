"""What logging every step costs a synthetic trial, against logging every 100, in one run.

    .venv/bin/python -m bench.step_logging [--spec sweeps/presets/mechanism.yaml] [--steps 3000]

The spec's first width is trained for `--steps` steps (interference measured at each logged
step, as the loop does) and its metrics go through the real tracker (`MlflowTracker`: batched
`log_batch` calls, a flush at every checkpoint) into a fresh MLflow sqlite store, checkpointing
every `checkpoint_every_s` as a trial does; then `finish` (every metric stored). Once with the
spec's `log_every` (1 in the mechanism preset) and once with 100. Printed per variant: metric
values stored, wall seconds, of which training and logging; then the ratios.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from mlflow import MlflowClient

from sweeps.spec import load_spec
from trainables.points import Point
from trainables.synthetic import SYNTHETIC
from trainables.synthetic.student import Pack
from trainables.synthetic.trainable import member_for, setup_for
from tracking.runs import experiment_id
from tracking.tracker import MlflowTracker


def run(section, point: Point, steps: int, log_every: int, folder: Path) -> dict:
    uri = f"sqlite:///{folder / f'every-{log_every}.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(experiment_id(client, "bench", create=True)).info.run_id
    tracker = MlflowTracker(uri, [run_id])
    pack = Pack(setup_for(section, point.width), [member_for(section, point)])
    start, logging, saved_at, values = time.perf_counter(), 0.0, time.monotonic(), 0
    for metrics, due in pack.train([steps], [log_every]):
        began = time.perf_counter()
        row = {k: x for k, v in metrics.items() if not math.isnan(x := v[0].item())}
        tracker.log(run_id, pack.step, row)
        values += len(row)
        if time.monotonic() - saved_at >= section.checkpoint_every_s:
            with tempfile.TemporaryDirectory() as checkpoint:
                tracker.save(Path(checkpoint))
            saved_at = time.monotonic()
        logging += time.perf_counter() - began
    began = time.perf_counter()
    tracker.finish()
    logging += time.perf_counter() - began
    stored = len(client.get_metric_history(run_id, "rare/loss"))
    return {"values": values, "wall": time.perf_counter() - start, "logging": logging,
            "stored_steps": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="sweeps/presets/mechanism.yaml")
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = load_spec(args.spec)
    point = Point(spec.grid.width[0], spec.grid.frequency[0], spec.grid.task[0], 0)
    section = SYNTHETIC.resolve(spec.synthetic, point)
    print(f"{spec.name}: width {point.width}, {args.steps} steps, "
          f"{section.mode}, checkpoint every {section.checkpoint_every_s:g} s")
    print(f"{'log_every':>9} {'values':>8} {'steps stored':>12} {'wall s':>8} {'logging s':>10} "
          f"{'logging share':>13}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for every in (section.log_every, 100):
            r = results[every] = run(section, point, args.steps, every, Path(tmp))
            print(f"{every:>9} {r['values']:>8} {r['stored_steps']:>12} {r['wall']:>8.1f} "
                  f"{r['logging']:>10.1f} {r['logging'] / r['wall']:>13.1%}")
    dense, sparse = results[section.log_every], results[100]
    print(f"every {section.log_every} / every 100: wall {dense['wall'] / sparse['wall']:.2f}, "
          f"{dense['logging'] / dense['values'] * 1e6:.0f} us per stored value")


if __name__ == "__main__":
    main()
