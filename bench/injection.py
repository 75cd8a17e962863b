"""Injection cost per batch (schedule + placement) vs one forward+backward of the 4M model.

    .venv/bin/python -m bench.injection [--batch-size 16] [--seq-len 128]

Both are measured in this run on the same (B, L) batch of embedded-corpus tokens: injection as
the mean over 2,000 consecutive global batches (far into a run, b >= 10^9) at frequencies from
the paper's largest (1/seq_len) to its smallest (2.4e-8), forward+backward as the median of a
few steps of the real ai2-olmo 4M model. Goal: injection under 1% of the step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from injection.corpus import embedded
from injection.place import place
from injection.schedule import Schedule
from injection.tasks import load_task
from injection.tokenizer import load
from trainables.olmo.ladder import model_config

BATCHES = 2000
START = 10**9


def injection_seconds(schedule: Schedule, tokens: torch.Tensor, table) -> tuple[float, float]:
    """Mean seconds and instances per batch of plan + place."""
    count, start = 0, time.perf_counter()
    for b in range(START, START + BATCHES):
        placed = place(tokens, schedule.plan(b), table)
        count += int(placed.injected.sum())
    return (time.perf_counter() - start) / BATCHES, count / BATCHES


def step_seconds(model, tokens: torch.Tensor, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        logits = model(tokens).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1),
                                                 tokens[:, 1:].flatten())
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    B, L = args.batch_size, args.seq_len

    from olmo import OLMo

    data = embedded().dataset(L)
    tokens = torch.stack([data[i]["input_ids"] for i in range(B)])
    task = load_task("cmp", seed=0)
    torch.manual_seed(0)
    model = OLMo(model_config("4M", load(), seq_len=L, init_device="cpu")).train()
    step = step_seconds(model, tokens, args.repeats)
    print(f"4M OLMo forward+backward, batch {B} x {L}, {torch.get_num_threads()} threads: "
          f"{step * 1e3:.1f} ms (median of {args.repeats})")
    print(f"{'frequency':>12} {'block':>5} {'inst/batch':>10} {'injection us':>12} {'ratio':>9}")
    for frequency, block in [(1 / L, 0), (1e-3, 0), (1e-4, 0), (2.4e-8, 0), (1e-3, 4)]:
        schedule = Schedule(frequency, B, L, task.train_ids, seed=0, block=block)
        seconds, per_batch = injection_seconds(schedule, tokens, task.tokens)
        print(f"{frequency:12.3g} {block:5d} {per_batch:10.3f} {seconds * 1e6:12.1f} "
              f"{seconds / step:9.4%}")


if __name__ == "__main__":
    main()
