"""OLMo trainable throughput: our per-worker step vs a bare training loop, tokens/s and MFU.

    .venv/bin/python -m bench.olmo_throughput [--sizes 20M,300M,1B] [--device cuda|cpu]
        [--batch-size 8] [--seq-len 2048] [--steps 10] [--rounds 3] [--peak-tflops T]

Per ladder size, both on the same model (same initial weights) and the same data, in one run:
- ours: `trainables.olmo.model`'s step as a worker runs it: global batch b read from the embedded
  corpus memmap, the injection schedule applied (at 1/seq_len, every row injected: the most
  work), micro-batches, autocast (GPU), clipping, AdamW + warm-up/cosine, the per-step sync
  that times it;
- bare: the textbook loop on one batch already on the device: forward, cross-entropy,
  backward, AdamW step, zero_grad.
Rounds alternate the two so contention on a shared machine hits both alike; the median step
counts. MFU uses ai2-olmo's own FLOP count (num_fwd_flops + num_bck_flops per token) against
--peak-tflops (default: 989 for H100/H200 bf16 dense, none on CPU). Goal: ours >= 95% of bare.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from injection.corpus import embedded
from injection.schedule import Schedule
from injection.tasks import load_task
from trainables.olmo import OlmoSection
from trainables.olmo import model as olmo
from trainables.olmo.data import GlobalBatches
from trainables.olmo.recipe import BETAS, CLIP, EPS, WEIGHT_DECAY

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # bf16 dense, per GPU


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def ours(parts, data: GlobalBatches, device, start: int, steps: int) -> list[float]:
    times = []
    for b in range(start, start + steps):
        began = time.perf_counter()
        placed = data.rows(b, 0, data.batch_size)
        olmo.train_step(*parts, placed.tokens, data.batch_size, device, CLIP)
        sync(device)
        times.append(time.perf_counter() - began)
    return times


def bare(model, optimizer, tokens: torch.Tensor, device, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        began = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(tokens).logits[:, :-1]
            loss = F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - began)
    return times


def peak_flops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((t * 1e12 for key, t in PEAK_TFLOPS.items() if key in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20M,300M,1B")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10, help="measured steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=None)
    args = parser.parse_args()
    device, B, L = torch.device(args.device), args.batch_size, args.seq_len

    corpus = embedded()
    task = load_task("cmp", seed=0)
    data = GlobalBatches(corpus, Schedule(1 / L, B, L, task.train_ids), task.tokens)
    peak = peak_flops(device, args.peak_tflops)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"batch {B} x {L} tokens on {where}; median step of {args.rounds} x {args.steps}")
    print(f"{'size':>5} {'ours ms':>9} {'bare ms':>9} {'ours/bare':>9} {'tokens/s':>10} "
          f"{'MFU':>6}")
    for size in args.sizes.split(","):
        initial = olmo.build_model(size, corpus.tokenizer, L, device, world_size=1, seed=0)
        flops_per_token = initial.num_fwd_flops + initial.num_bck_flops
        model = copy.deepcopy(initial)
        section = OlmoSection(steps=10**6, lr=1e-4, warmup_steps=0)
        parts = (model, *olmo.optimizer_for(model, section))
        plain = copy.deepcopy(initial)
        plain_optimizer = torch.optim.AdamW(plain.parameters(), lr=1e-4, betas=BETAS, eps=EPS,
                                            weight_decay=WEIGHT_DECAY)
        del initial
        tokens = data.rows(0, 0, B).tokens.to(device)
        ours(parts, data, device, 0, 1)  # warm-up: allocator, kernels, memmap pages
        bare(plain, plain_optimizer, tokens, device, 1)
        ours_s, bare_s = [], []
        for r in range(args.rounds):
            ours_s += ours(parts, data, device, 1 + r * args.steps, args.steps)
            bare_s += bare(plain, plain_optimizer, tokens, device, args.steps)
        step_ours, step_bare = statistics.median(ours_s), statistics.median(bare_s)
        tokens_per_s = B * L / step_ours
        mfu = f"{tokens_per_s * flops_per_token / peak:6.1%}" if peak else f"{'n/a':>6}"
        print(f"{size:>5} {step_ours * 1e3:9.1f} {step_bare * 1e3:9.1f} "
              f"{step_bare / step_ours:9.1%} {tokens_per_s:10.0f} {mfu}")
        del model, parts, plain, plain_optimizer
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
