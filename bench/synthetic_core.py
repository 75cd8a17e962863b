"""Throughput of the synthetic student's core vs straightforward PyTorch loops, in one run.

    .venv/bin/python bench/synthetic_core.py [--device cuda] [--pack 30] [--width 64]

Ours: `student.Pack`, a pack of P grid points trained in batched tensor ops with analytic
gradients. Baselines, each training the same points one after another with autograd:
  per-sample  the loop one writes first: for each sample, loss of D_k U^T x; backward; step.
  per-point   batched over samples but one grid point at a time.
Reported as grid-point steps per second (one step = one batch of B samples for one point, or
one exact expected-gradient step in population mode) and as ratios ours / baseline.
"""

from __future__ import annotations

import argparse
import time

import torch

from trainables.synthetic.gradients import orthonormalise
from trainables.synthetic.problem import Member, Setup
from trainables.synthetic.student import Pack


def problem(setup: Setup, member: Member, device):
    """Q, W (K, r, d), pi and lr of one point, exactly as the pack builds them."""
    pack = Pack(setup, [member], device=device)
    K, r, d = setup.tasks, setup.features_per_task, setup.dim
    W = (pack.sqrt_lam[0] * pack.Q[0].mT).view(K, r, d)
    return W, pack.pi[0], pack.lr[0].item(), pack.U[0].clone()


def autograd_steps(setup: Setup, member: Member, steps: int, device, per_sample: bool):
    W, pi, lr, U0 = problem(setup, member, device)
    K, r, N, B, d = setup.tasks, setup.features_per_task, setup.width, setup.batch_size, setup.dim
    U = U0.requires_grad_()
    D = torch.zeros(K, r, N, device=device, requires_grad=True)
    g = torch.Generator(device).manual_seed(member.seed)
    for _ in range(steps):
        if setup.mode == "population":
            loss = sum(pi[k] * (D[k] @ U.T - W[k]).square().sum() for k in range(K))
        else:
            tasks = torch.multinomial(pi, B, replacement=True, generator=g)
            X = torch.randn(B, d, generator=g, device=device)
            if per_sample:
                loss = sum((D[k] @ (U.T @ x) - W[k] @ x).square().sum()
                           for k, x in zip(tasks.tolist(), X)) / B
            else:
                pred = torch.einsum("brn,bn->br", D[tasks], X @ U)
                loss = (pred - torch.einsum("brd,bd->br", W[tasks], X)).square().sum() / B
        loss.backward()
        with torch.no_grad():
            D -= lr * D.grad
            U.copy_(orthonormalise(U - lr * U.grad))
            U.grad = D.grad = None


def timed(fn, device) -> float:
    fn()  # warm-up (allocations, kernels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--pack", type=int, default=30, help="points per trial (paper: 30)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    members = [Member(f, 0.5, s) for s in range(3) for f in torch.logspace(-2, -7, 10).tolist()]
    members = (members * (args.pack // len(members) + 1))[: args.pack]
    print(f"device={device} K={args.tasks} r={args.features} N={args.width} "
          f"B={args.batch} pack={args.pack} threads={torch.get_num_threads()}")
    print(f"{'mode':<11} {'implementation':<24} {'point-steps/s':>14} {'ours / it':>10}")
    for mode in ("population", "sampled"):
        setup = Setup(args.tasks, args.features, args.width, mode=mode, batch_size=args.batch)
        pack = Pack(setup, members, device=device)

        def ours(pack=pack):
            for _ in range(args.steps):
                pack.train_step()

        ours_rate = args.steps * len(members) / timed(ours, device)
        print(f"{mode:<11} {'ours (packed, analytic)':<24} {ours_rate:>14.1f} {'1.0':>10}")
        baselines = [("per-point autograd", False, args.steps)]
        if mode == "sampled":
            baselines.append(("per-sample autograd", True, 2))
        for name, per_sample, steps in baselines:
            seconds = timed(lambda: autograd_steps(setup, members[0], steps, device, per_sample),
                            device)
            rate = steps / seconds
            print(f"{mode:<11} {name:<24} {rate:>14.1f} {ours_rate / rate:>10.1f}")


if __name__ == "__main__":
    main()
