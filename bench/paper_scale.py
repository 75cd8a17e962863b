"""Expected time and cost of the paper-scale grids on cluster.yaml's GPU nodes, from throughput
measured here. README "Running on a cluster / Scale on paper" quotes its output.

    .venv/bin/python -m bench.paper_scale [--device cuda] [--steps 20]

Synthetic (sweeps/presets/paper-synthetic.yaml, 16 trials of 30 points): each trial's work is
the sum of its points' expected steps (the plan's `stopping.expected_steps`, the theory's time
to converge: a point stops once converged, `steps` is only its cap; a finished point stops
costing). The pack's point-steps/s is measured on this device per width. On a CPU, the GPU
rate is extrapolated from the step's FLOPs: 6 d^2 N + 4 d N^2 per point step (the K task
gradients, the re-orthonormalisation) at GPU_FLOPS effective, and never faster than
GPU_STEP_FLOOR_S per pack step (kernel launches of a small step). Run with --device cuda on a
GPU to replace the extrapolation by a measurement.

OLMo (sweeps/presets/olmo-paper.yaml: the ladder 4M..4B x 10 frequencies x 2 tasks, one
seed): 6 N + 6 L s d FLOPs per token (N non-embedding as OLMo counts it, the output
projection included; L s d attention), the tokens and sequence length of each size's run from
the preset's plan (the paper's 50,000 batches of 2^22 tokens, shared by every size; `--set
olmo.budget=ladder ...` style overrides through --olmo-set), on A100s at OLMO_MFU of 312
TFLOP/s bf16. The measured CPU rate of the 4M model (BENCHMARKS.md, Injection) checks the
FLOP model: printed as achieved GFLOP/s.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from sweeps.plan import plan
from sweeps.spec import load_spec
from trainables.olmo.footprint import flops_per_token
from trainables.olmo.ladder import LADDER
from trainables.synthetic.problem import Member, Setup
from trainables.synthetic.student import Pack

PRICE = {"g5.xlarge": 1.006, "p4d.24xlarge": 32.773, "m6i.2xlarge": 0.384}  # $/h, us-west-2
GPU_FLOPS = 5e12  # A10G: 31 TFLOP/s fp32 peak, small batched matmuls and QR at ~1/6 of it
GPU_STEP_FLOOR_S = 1e-3  # ~50 kernels of ~20 us each
OLMO_MFU, A100_BF16, VOCAB = 0.4, 312e12, 50304
PAPER = "sweeps/presets/olmo-paper.yaml"
CPU_4M_TOKENS_PER_S = 16 * 128 / 9.5318  # BENCHMARKS.md: 4M fwd+bwd, batch 16 x 128, 2 threads


def point_steps_per_s(setup: Setup, members: list[Member], steps: int, device) -> float:
    pack = Pack(setup, members, device=device)
    pack.train_step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        pack.train_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * len(members) / (time.perf_counter() - start)


def synthetic(device, steps: int) -> float:
    spec = load_spec("sweeps/presets/paper-synthetic.yaml")
    s, d = spec.synthetic, spec.synthetic.dim
    work: dict[int, list[int]] = defaultdict(list)  # width -> point steps of each trial
    trial_of = {}
    for planned in plan(spec):
        trial_of.setdefault((planned.point.width, planned.point.task), []).append(
            planned.derived["stopping.expected_steps"])
    for (width, _), point_steps in trial_of.items():
        work[int(width)].append(sum(point_steps))
    members = [Member(f, 0.5, seed) for seed in spec.grid.seed for f in spec.grid.frequency]
    print(f"synthetic paper grid on {device}: {len(trial_of)} trials x {len(members)} points")
    print(f"{'width':>6} {'point-steps':>12} {'measured /s':>12} {'GPU est /s':>11} "
          f"{'trial h (here)':>15} {'trial h (GPU)':>14}")
    gpu_hours = 0.0
    for width in sorted(work):
        setup = Setup(s.tasks, s.features_per_task, width, mode=s.mode)
        rate = point_steps_per_s(setup, members, steps, device)
        flops = 6 * d * d * width + 4 * d * width * width
        gpu = rate if device.type == "cuda" else len(members) / max(
            GPU_STEP_FLOOR_S, len(members) * flops / GPU_FLOPS)
        here_h, gpu_h = max(work[width]) / rate / 3600, max(work[width]) / gpu / 3600
        gpu_hours += sum(work[width]) / gpu / 3600
        print(f"{width:>6} {max(work[width]):>12} {rate:>12.1f} {gpu:>11.1f} "
              f"{here_h:>15.2f} {gpu_h:>14.3f}")
    print(f"GPU total: {gpu_hours:.2f} GPU-hours (g5.xlarge), "
          f"${gpu_hours * PRICE['g5.xlarge']:.2f}; wall with all {len(trial_of)} trials in "
          "parallel = the slowest trial")
    return gpu_hours


def olmo(overrides: list[str]) -> None:
    spec = load_spec(PAPER, ["olmo.corpus=null", *overrides])  # the embedded corpus's vocabulary
    runs: dict[str, list] = defaultdict(list)
    for planned in plan(spec):
        runs[planned.point.width].append(planned)
    print(f"\nOLMo paper grid ({PAPER}, budget {spec.olmo.budget}, "
          f"{' '.join(overrides) or 'as written'}): A100 at {OLMO_MFU:.0%} MFU")
    print(f"{'size':>5} {'runs':>5} {'tokens/run':>11} {'GFLOP/token':>12} {'GPU-h/run':>10} "
          f"{'GPU-h (all)':>12} {'$ (p4d)':>10}")
    total = 0.0
    for name, planned in runs.items():
        rung, section = LADDER[name], planned[0].section
        per_token = flops_per_token(rung.non_embedding_params(VOCAB), rung.depth,
                                    section.seq_len, rung.d_model)
        tokens = int(planned[0].params["training.tokens"])
        hours = per_token * tokens / (OLMO_MFU * A100_BF16) / 3600
        total += len(planned) * hours
        print(f"{name:>5} {len(planned):>5} {tokens:>11.2e} {per_token / 1e9:>12.3f} "
              f"{hours:>10.2f} {len(planned) * hours:>12.1f} "
              f"{len(planned) * hours * PRICE['p4d.24xlarge'] / 8:>10.0f}")
    print(f"total {total:.0f} A100-hours, "
          f"${total * PRICE['p4d.24xlarge'] / 8:,.0f} on p4d.24xlarge")
    four_m = LADDER["4M"]
    cpu_flops = (6 * four_m.non_embedding_params(VOCAB)
                 + 6 * four_m.depth * 128 * four_m.d_model) * CPU_4M_TOKENS_PER_S
    print(f"check: measured 4M on 2 CPU threads = {CPU_4M_TOKENS_PER_S:.0f} tokens/s = "
          f"{cpu_flops / 1e9:.1f} GFLOP/s achieved; one A100 at {OLMO_MFU:.0%} MFU is "
          f"{OLMO_MFU * A100_BF16 / cpu_flops:,.0f}x that")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20, help="pack steps timed per width")
    parser.add_argument("--part", choices=("all", "synthetic", "olmo"), default="all")
    parser.add_argument("--olmo-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override the OLMo preset (e.g. olmo.budget=ladder)")
    args = parser.parse_args()
    if args.part != "olmo":
        synthetic(torch.device(args.device), args.steps)
    if args.part != "synthetic":
        olmo(args.olmo_set)


if __name__ == "__main__":
    main()
