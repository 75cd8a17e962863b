"""What the mechanism measurements cost an OLMo run: step time with them off and on.

    .venv/bin/python -m bench.olmo_measure [--size 4M] [--device cpu|cuda] [--batch-size 16]
        [--seq-len 64] [--steps 20] [--rounds 2] [--reference 10000] [--neurons 100]

In one run, on the same model and data (the embedded corpus, cmp injected in a block of 10
every 10 batches), rounds alternated so contention hits all alike:
- bare: the textbook step loop (`data.rows` + `train_step`), the baseline;
- off: the trial's own loop (`loop.Trial.train`) with `measure_every: 0`, its training steps
  timed as `throughput/tokens_per_s` times them (the per-step logging of `rare/injected`
  included). Goal: the same as bare;
- measured step: interference at one step (g_r from `--reference` task instances and g_task
  in one extra pass, then the step under the neuron hooks) vs the plain step;
- run: the trial's loop end to end with `measure_every: 10` (interference every 10 steps and
  at every injection, retention next to every injection) vs `measure_every: 0`, wall time
  per step (both include the same two evaluations).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch

from sweeps.plan import point_plan
from trainables.contract import PointRun
from trainables.olmo import OLMO, OlmoSection, model
from trainables.olmo.loop import Trial
from trainables.points import Point
from tracking.tracker import Tracker

BLOCK = 10  # instances arrive BLOCK at a time, every BLOCK batches


class Throughput(Tracker):
    """Keeps the last `throughput/tokens_per_s` the loop logs (the bench's only reader)."""

    tokens_per_s: float = 0.0

    def log(self, run_id, step, metrics) -> None:
        self.tokens_per_s = metrics.get("throughput/tokens_per_s", self.tokens_per_s)


def trial(args, measure_every: int) -> Trial:
    point = Point(args.size, 1 / (args.batch_size * args.seq_len), "cmp", 0)
    section = OlmoSection(steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size,
                          eval_every=args.steps, eval_instances=100,
                          checkpoint_every=args.steps, schedule={"block": BLOCK},
                          measure_every=measure_every, interference_instances=args.reference,
                          interference_neurons=args.neurons)
    resolved = OLMO.resolve(section, point)
    return Trial(PointRun(plan=point_plan(point, resolved, {}), run_id="bench"), 0, 1,
                 torch.device(args.device))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_step_s(t: Trial, steps: int) -> float:
    """Mean step, as the loop's throughput averages its steps."""
    s, seconds = t.section, 0.0
    for b in range(steps):
        began = time.perf_counter()
        tokens = t.data.rows(b, 0, s.batch_size).tokens
        model.train_step(t.model, t.optimizer, t.scheduler, tokens, s.batch_size, t.device,
                         s.grad_clip)
        sync(t.device)
        seconds += time.perf_counter() - began
    return seconds / steps


def loop_step_s(t: Trial) -> tuple[float, float]:
    """(training step from the loop's own timing, wall time per step of the whole loop)."""
    tracker = Throughput()
    began = time.perf_counter()
    t.train(0, resumed=False, tracker=tracker, report=lambda step, progress: None)
    wall = time.perf_counter() - began
    tokens = t.section.batch_size * t.section.seq_len
    return tokens / tracker.tokens_per_s, wall / t.section.steps


def measured_step_s(t: Trial, batch: int) -> tuple[float, float]:
    """(a plain step, the same step measured) on global batch `batch`, which injects."""
    s, mech = t.section, t.mechanism
    tokens = t.data.rows(batch, 0, s.batch_size).tokens
    timed = []
    for measured in (False, True):
        began = time.perf_counter()
        with mech.probe(t.model, t.bare, batch) if measured else nullcontext() as probe:
            model.train_step(t.model, t.optimizer, t.scheduler, tokens, s.batch_size, t.device,
                             s.grad_clip)
        if probe is not None:
            probe.metrics()
        sync(t.device)
        timed.append(time.perf_counter() - began)
    return timed[0], timed[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4M")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reference", type=int, default=10_000,
                        help="interference_instances (the paper: all 10,000)")
    parser.add_argument("--neurons", type=int, default=100)
    args = parser.parse_args()
    if args.steps < BLOCK:
        parser.error(f"--steps must be at least {BLOCK}: the first block arrives in batch "
                     f"{BLOCK - 1}")
    where = torch.cuda.get_device_name() if args.device == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.size}, batch {args.batch_size} x {args.seq_len} tokens on {where}; "
          f"{args.steps} steps a round, {args.rounds} rounds; g_r from {args.reference:,} "
          f"instances, {args.neurons} neurons; {BLOCK} instances every {BLOCK} batches")
    off, on = trial(args, 0), trial(args, BLOCK)
    injecting = next(b for b in range(args.steps) if off.mechanism.injects(b))
    results: dict[str, list[float]] = {k: [] for k in (
        "bare", "off", "plain", "measured", "run off", "run on")}
    for _ in range(args.rounds):
        results["bare"].append(bare_step_s(off, args.steps))
        results["off"].append(loop_step_s(trial(args, 0))[0])
        plain, measured = measured_step_s(on, injecting)
        results["plain"].append(plain)
        results["measured"].append(measured)
        results["run off"].append(loop_step_s(trial(args, 0))[1])
        results["run on"].append(loop_step_s(trial(args, BLOCK))[1])
    ms = {k: statistics.median(v) * 1e3 for k, v in results.items()}
    print(f"{'':28}{'ms':>10}{'ratio':>10}")
    print(f"{'step, bare loop':28}{ms['bare']:10.1f}")
    print(f"{'step, trial loop, off':28}{ms['off']:10.1f}{ms['off'] / ms['bare']:10.1%}"
          "  (of bare)")
    print(f"{'one step, plain':28}{ms['plain']:10.1f}")
    print(f"{'one step, measured':28}{ms['measured']:10.1f}"
          f"{ms['measured'] / ms['plain']:9.1f}x  (of plain)")
    print(f"{'run per step, off':28}{ms['run off']:10.1f}")
    print(f"{'run per step, every 10':28}{ms['run on']:10.1f}"
          f"{ms['run on'] / ms['run off']:9.2f}x  (of off)")


if __name__ == "__main__":
    main()
