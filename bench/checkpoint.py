"""Checkpoint size and time per ladder size: sharded (torch.distributed.checkpoint, every rank
writing its part, `model.save_state`) against the gather it replaced (the full fp32 state
gathered to rank 0's CPU, `get_state_dict(full_state_dict=True, cpu_offload=True)`, and
`torch.save` there), in one run, on CPU with gloo.

    python -m bench.checkpoint                      # 4M and 20M, 2 ranks, DDP
    python -m bench.checkpoint --sizes 4M 20M 300M --parallel fsdp

Each size: the model and AdamW state after one step on every rank, then each way of saving
`REPEATS` times into a fresh folder (the median is printed; each rank writes its shards to a
folder of its own, as under Ray Train). Sizes are the bytes on disk, all ranks' together.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

REPEATS = 3
SEQ_LEN, ROWS = 64, 2


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def timed(action) -> float:
    dist.barrier()
    start = time.perf_counter()
    action()
    dist.barrier()
    return time.perf_counter() - start


def worker(rank: int, world: int, rendezvous: str, sizes: list[str], parallel: str,
           scratch: str, out: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    from injection.tokenizer import load
    from trainables.olmo import model
    from trainables.olmo.trainable import OlmoSection

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank,
                            world_size=world)
    cpu = torch.device("cpu")
    for size in sizes:
        net = model.build_model(size, load(), SEQ_LEN, cpu, world, seed=0, parallel=parallel)
        optimizer, scheduler = model.optimizer_for(net, OlmoSection(steps=10, lr=1e-3,
                                                                    warmup_steps=1))
        tokens = torch.randint(0, 50_000, (ROWS, SEQ_LEN))
        model.train_step(net, optimizer, scheduler, tokens, ROWS, cpu, clip=1.0)
        gathered, sharded = [], []
        for i in range(REPEATS):
            full = Path(scratch) / f"{size}-full-{i}"
            shards = Path(scratch) / f"{size}-sharded-{i}" / f"rank{rank}"  # a folder per rank

            def gather() -> None:
                # cpu_offload as the old checkpoint had it, which on a CPU-only FSDP model
                # crashes torch 2.13 (SIGSEGV) and moves nothing: off there
                weights, optim = get_state_dict(net, optimizer, options=StateDictOptions(
                    full_state_dict=True, cpu_offload=parallel == "ddp"))
                if rank == 0:
                    full.mkdir(parents=True)
                    torch.save({"model": weights, "optimizer": optim}, full / "state.pt")

            gathered.append(timed(gather))
            shards.mkdir(parents=True)
            sharded.append(timed(lambda: model.save_state(net, optimizer, shards)))
        if rank == 0:
            last = Path(scratch) / f"{size}-sharded-{REPEATS - 1}"
            out[size] = {
                "params": sum(p.numel() for p in net.parameters()) * (1 if parallel == "ddp"
                                                                      else world),
                "gathered_s": statistics.median(gathered),
                "gathered_bytes": folder_bytes(Path(scratch) / f"{size}-full-0"),
                "sharded_s": statistics.median(sharded),
                "sharded_bytes": folder_bytes(last),
                "rank_bytes": [folder_bytes(last / f"rank{r}") for r in range(world)],
            }
        del net, optimizer
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["4M", "20M"])
    parser.add_argument("--parallel", choices=["ddp", "fsdp"], default="ddp")
    parser.add_argument("--world", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as scratch, \
            mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(worker, args=(args.world, f"{scratch}/rendezvous", args.sizes, args.parallel,
                               scratch, out), nprocs=args.world)
        results = dict(out)
    print(f"checkpoint of model + AdamW state, {args.world} ranks, {args.parallel}, CPU/gloo, "
          f"median of {REPEATS}")
    print(f"{'size':>5} {'params':>12} {'gathered':>10} {'s':>7} {'sharded':>10} {'s':>7} "
          f"{'per rank':>22} {'time ratio':>10}")
    for size in args.sizes:
        r = results[size]
        per_rank = " / ".join(f"{b / 1e6:.0f}" for b in r["rank_bytes"])
        print(f"{size:>5} {r['params']:>12,} {r['gathered_bytes'] / 1e6:>8.0f}MB "
              f"{r['gathered_s']:>7.2f} {r['sharded_bytes'] / 1e6:>8.0f}MB "
              f"{r['sharded_s']:>7.2f} {per_rank + ' MB':>22} "
              f"{r['sharded_s'] / r['gathered_s']:>10.2f}")


if __name__ == "__main__":
    main()
