"""What storing metrics every few seconds costs a trial, against storing them only at its end.

    .venv/bin/python -m bench.flush_overhead [--pack 30] [--width 32] [--steps 4000] [--rounds 3]

A trial's pack of synthetic grid points is trained by its own loop's pieces (`student.Pack`,
each point logging every `log_every` steps through an `MlflowTracker` on a fresh sqlite
store), twice per round, alternating:
  periodic  the default: the tracker stores what it holds every 5 s (or rarer: at most 5% of
            the time, `tracking.logger`), so `sweeps status --watch` sees training move
  at end    everything stored once, at the end (FLUSH_EVERY_S set to infinity)
Reported: the median wall time of each and their ratio; overhead = periodic / at end - 1.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from sweeps.spec import validate
from trainables.points import Point
from trainables.synthetic import SYNTHETIC
from trainables.synthetic.student import Pack
from trainables.synthetic.trainable import member_for, setup_for
from tracking import logger
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id
from tracking.tracker import MlflowTracker


def train(pack_size: int, width: int, steps: int, every_s: float) -> float:
    """Seconds to train and store one pack, with stores every `every_s`."""
    spec = validate({"name": "bench", "trainable": "synthetic",
                     "grid": {"width": [width], "frequency": [0.1], "task": ["complex"],
                              "seed": list(range(pack_size))},
                     "synthetic": {"tasks": 8, "features_per_task": 8, "steps": steps}})
    points = [Point(width, 0.1, "complex", seed) for seed in range(pack_size)]
    sections = [SYNTHETIC.resolve(spec.synthetic, p) for p in points]
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{folder}/mlflow.db"
        client = connect(uri)
        runs = ensure_runs(client, experiment_id(client, "bench", create=True), [
            PlannedRun(key=p.key, params={"width": str(width)}, tags={}) for p in points])
        run_ids = [runs[p.key] for p in points]
        pack = Pack(setup_for(sections[0], width),
                    [member_for(s, p) for s, p in zip(sections, points)], dtype=torch.float32)
        logger.FLUSH_EVERY_S = every_s
        start = time.perf_counter()
        tracker = MlflowTracker(uri, run_ids)
        for metrics, due in pack.train([s.steps for s in sections],
                                       [s.log_every for s in sections]):
            for j, run_id in enumerate(run_ids):
                if due[j]:
                    tracker.log(run_id, pack.step, {k: v[j].item() for k, v in metrics.items()})
        tracker.finish()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=int, default=30)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    default = logger.FLUSH_EVERY_S
    times: dict[str, list[float]] = {"periodic": [], "at end": []}
    for _ in range(args.rounds):
        times["periodic"].append(train(args.pack, args.width, args.steps, default))
        times["at end"].append(train(args.pack, args.width, args.steps, float("inf")))
    periodic, at_end = (statistics.median(times[k]) for k in ("periodic", "at end"))
    print(f"pack of {args.pack} points, width {args.width}, {args.steps} steps, K=8 r=8, "
          f"population; median of {args.rounds} rounds")
    print(f"{'variant':10} {'wall s':>8}")
    for name, value in (("periodic", periodic), ("at end", at_end)):
        print(f"{name:10} {value:8.1f}")
    print(f"overhead of storing every {default:g} s: {periodic / at_end - 1:+.1%}")


if __name__ == "__main__":
    main()
