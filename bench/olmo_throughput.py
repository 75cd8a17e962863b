"""OLMo trainable throughput: our per-worker step vs a bare loop on ai2-olmo's own model,
tokens/s and MFU; and the loss's peak memory, today's float32 logits vs the chunked loss.

    .venv/bin/python -m bench.olmo_throughput [--sizes 20M,300M,1B] [--device cuda|cpu]
        [--batch-size 8] [--seq-len 2048] [--steps 10] [--rounds 3] [--compile on|off|both]
        [--peak-tflops T] [--corpus DIR]
    .venv/bin/python -m bench.olmo_throughput --loss-memory [--sizes 20M] [--seq-len 2048]

Per ladder size and compile setting, on the same initial weights and data, in one run:
- ours: `trainables.olmo.model`'s step as the trial loop runs it: global batch b read from the
  corpus memmap with the injection schedule applied (at 1/seq_len, every row injected: the
  most work), the chunked loss, autocast (GPU), clipping, AdamW + warm-up/cosine, timed by the
  loop's `StepClock`; `--compile on` is `olmo.compile: true` (each block and the loss's chunk
  step compiled);
- bare: ai2-olmo's `OLMo` (whole model `torch.compile`d with `--compile on`) on one batch
  already on the device: forward, cross-entropy on `logits.float()`, backward, AdamW (fused on
  GPU, as ours), zero_grad.
Each round runs --steps steps of every variant in turn (ours and bare, eager and compiled with
`--compile both`), synchronising once at the end of each variant's steps, so contention hits
all variants alike; the median round counts. MFU uses
ai2-olmo's own FLOP count (num_fwd_flops + num_bck_flops per token) against --peak-tflops
(default: 989 for H100/H200 bf16 dense; none on CPU). Goal: ours >= 95% of the compiled bare
loop.

--loss-memory: the peak memory that the loss of one sequence of --seq-len tokens adds (forward
and backward; hidden states of the first size's width, OLMo's 50,304-row output layer), each
variant in a fresh process on CPU (peak RSS) or in this one on a GPU (peak allocated).
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from trainables.olmo.recipe import BETAS, CLIP, EPS, WEIGHT_DECAY

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # bf16 dense, per GPU
MODES = {"on": [True], "off": [False], "both": [False, True]}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


class Ours:
    """Our step as `loop.Trial` runs it, on a `LanguageModel` (compiled by block or not)."""

    def __init__(self, initial, compiled: bool, data, device):
        from trainables.olmo import model as olmo

        self.olmo, self.data, self.device = olmo, data, device
        self.model = copy.deepcopy(initial)
        if compiled:
            self.model.compile_step()
        self.parts = (self.model, *olmo.optimizer_for(self.model, constant_lr()))
        self.batch = 0

    def steps(self, n: int) -> None:
        from trainables.olmo.clock import StepClock

        clock = StepClock(self.device)
        for _ in range(n):
            clock.start()
            tokens = self.data.rows(self.batch, 0, self.data.batch_size).tokens
            self.olmo.train_step(*self.parts, tokens, self.data.batch_size, self.device, CLIP)
            clock.stop()
            self.batch += 1


class Bare:
    """The textbook loop on ai2-olmo's own `OLMo` with our model's initial weights."""

    def __init__(self, initial, compiled: bool, tokens, device):
        from olmo import OLMo

        self.model = OLMo(initial.config).to(device)
        self.model.load_state_dict(initial.state_dict())
        self.forward = torch.compile(self.model) if compiled else self.model
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, betas=BETAS,
                                           eps=EPS, weight_decay=WEIGHT_DECAY,
                                           fused=device.type == "cuda")
        self.tokens, self.device = tokens, device

    def steps(self, n: int) -> None:
        for _ in range(n):
            with autocast(self.device):
                logits = self.forward(self.tokens).logits[:, :-1]
            loss = F.cross_entropy(logits.flatten(0, 1).float(), self.tokens[:, 1:].flatten())
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)


def constant_lr():
    """A resolved OLMo section for the optimizer: a constant lr, no warm-up."""
    from trainables.olmo import OlmoSection

    return OlmoSection(steps=10**6, lr=1e-4, warmup_steps=0)


def timed(variant, steps: int, device) -> float:
    """Seconds per step over `steps` steps, one synchronisation at the end."""
    sync(device)
    began = time.perf_counter()
    variant.steps(steps)
    sync(device)
    return (time.perf_counter() - began) / steps


def peak_flops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((t * 1e12 for key, t in PEAK_TFLOPS.items() if key in name), None)


def throughput(args, device: torch.device) -> None:
    from injection import corpus as corpora
    from injection.schedule import Schedule
    from injection.tasks import load_task
    from trainables.olmo import model as olmo
    from trainables.olmo.data import GlobalBatches

    B, L = args.batch_size, args.seq_len
    corpus = corpora.Corpus(Path(args.corpus)) if args.corpus else corpora.embedded()
    task = load_task("cmp", seed=0)
    data = GlobalBatches(corpus, Schedule(1 / L, B, L, task.train_ids), task.tokens)
    peak = peak_flops(device, args.peak_tflops)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"batch {B} x {L} tokens on {where}, torch {torch.__version__}; median of "
          f"{args.rounds} rounds of {args.steps} steps (after {args.warmup} warm-up steps)")
    print(f"{'size':>5} {'compile':>7} {'ours ms':>9} {'bare ms':>9} {'ours/bare':>9} "
          f"{'ours tok/s':>10} {'bare tok/s':>10} {'ours MFU':>8} {'bare MFU':>8}", flush=True)
    for size in args.sizes.split(","):
        initial = olmo.build_model(size, corpus.tokenizer, L, device, world_size=1, seed=0)
        flops_per_token = initial.num_fwd_flops + initial.num_bck_flops
        tokens = data.rows(0, 0, B).tokens.to(device)
        variants = {(name, compiled): variant
                    for compiled in MODES[args.compile]
                    for name, variant in (("ours", Ours(initial, compiled, data, device)),
                                          ("bare", Bare(initial, compiled, tokens, device)))}
        for variant in variants.values():  # compilation, allocator, kernels, memmap pages
            variant.steps(args.warmup)
        seconds = {key: [] for key in variants}
        for _ in range(args.rounds):  # every variant in every round: the load hits all alike
            for key, variant in variants.items():
                seconds[key].append(timed(variant, args.steps, device))
        step = {key: statistics.median(s) for key, s in seconds.items()}
        for compiled in MODES[args.compile]:
            ours, bare = step["ours", compiled], step["bare", compiled]
            rate = {"ours": B * L / ours, "bare": B * L / bare}
            mfu = {name: f"{r * flops_per_token / peak:8.1%}" if peak else f"{'n/a':>8}"
                   for name, r in rate.items()}
            print(f"{size:>5} {'on' if compiled else 'off':>7} {ours * 1e3:9.1f} "
                  f"{bare * 1e3:9.1f} {bare / ours:9.1%} {rate['ours']:10.0f} "
                  f"{rate['bare']:10.0f} {mfu['ours']} {mfu['bare']}", flush=True)
        if len(MODES[args.compile]) == 2:
            print(f"{size:>5} compiled / eager step time: ours "
                  f"{step['ours', True] / step['ours', False]:.2f}, bare "
                  f"{step['bare', True] / step['bare', False]:.2f}", flush=True)
        del variants
        if device.type == "cuda":
            torch.cuda.empty_cache()


def loss_case(size: str, seq_len: int, device: torch.device):
    """One sequence's final hidden states, the output layer and the targets, as the loss
    sees them: (L - 1, d) states of a `size` model, OLMo's padded vocabulary."""
    from injection.tokenizer import load
    from trainables.olmo.ladder import LADDER

    vocabulary = load().embedding_size
    g = torch.Generator(device).manual_seed(0)
    hidden = torch.randn(1, seq_len - 1, LADDER[size].d_model, device=device, generator=g)
    weight = torch.randn(vocabulary, LADDER[size].d_model, device=device, generator=g) / 16
    targets = torch.randint(0, vocabulary, (1, seq_len - 1), device=device, generator=g)
    return hidden.requires_grad_(), weight.requires_grad_(), targets


def loss_run(variant: str, size: str, seq_len: int, device: torch.device) -> float:
    """MB the loss's forward and backward add at their peak to what the inputs hold."""
    from trainables.olmo.loss import lm_loss

    hidden, weight, targets = loss_case(size, seq_len, device)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = resident_bytes()
    with autocast(device):
        if variant == "plain":  # the step before the chunked loss: the whole float32 logits
            logits = F.linear(hidden, weight).float()
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
        else:
            loss = lm_loss(hidden, weight, targets)
    loss.backward()
    sync(device)
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return (peak - before) / 2**20


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def loss_memory(args, device: torch.device) -> None:
    size = args.sizes.split(",")[0]
    print(f"loss of one {args.seq_len}-token sequence, d_model {size}'s, OLMo's vocabulary; "
          f"forward + backward on {device.type}; peak memory added to its inputs")
    results = {}
    for variant in ("plain", "chunked"):
        if device.type == "cuda":
            results[variant] = loss_run(variant, size, args.seq_len, device)
        else:  # a fresh process each, so one's peak RSS is not the other's
            out = subprocess.run([sys.executable, "-m", "bench.olmo_throughput",
                                  "--loss-memory-of", variant, "--sizes", size,
                                  "--seq-len", str(args.seq_len), "--device", "cpu"],
                                 check=True, capture_output=True, text=True).stdout
            results[variant] = float(out.split()[-1])
        print(f"{variant:>8} {results[variant]:9.0f} MB", flush=True)
    print(f"chunked / plain: {results['chunked'] / results['plain']:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20M,300M,1B")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing")
    parser.add_argument("--compile", choices=list(MODES), default="on")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--corpus", default=None,
                        help="an OLMo corpus folder; default the embedded corpus")
    parser.add_argument("--loss-memory", action="store_true")
    parser.add_argument("--loss-memory-of", choices=["plain", "chunked"],
                        help=argparse.SUPPRESS)  # one variant, in the child process
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.loss_memory_of:
        print(loss_run(args.loss_memory_of, args.sizes.split(",")[0], args.seq_len, device))
    elif args.loss_memory:
        loss_memory(args, device)
    else:
        throughput(args, device)


if __name__ == "__main__":
    main()
