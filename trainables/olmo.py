"""The OLMo pretraining trainable (CONTRACTS 6): one grid point per Tune trial.

`train_fn_per_worker` is plain PyTorch run by Ray Train on `resources.workers` workers: the
ai2-olmo `OLMo` model of a ladder size, DDP across workers (gloo on CPU, NCCL on GPU; FSDP
for 1B and up on GPUs), bf16 autocast on GPU, AdamW with linear warm-up and cosine decay
after OLMo's configs. Each worker trains its rows of every global batch (`olmo_data`), so the
data position is the step and a resume continues exactly. Rank 0 evaluates (`olmo_eval`),
logs to MLflow and writes the checkpoints; every rank calls `report`.
"""

from __future__ import annotations

import math
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from injection import corpus as corpora
from injection import reference, tasks
from injection.schedule import Schedule
from trainables import session
from trainables.ladder import LADDER, model_config
from trainables.olmo_data import GlobalBatches, checksum, share
from trainables.olmo_eval import eval_sets, evaluate
from trainables.points import Point, unpack

EVALS_PER_RUN = 10  # default eval_every: about this many metric points per run
CHECKPOINTS_PER_RUN = 4  # default checkpoint_every
WARMUP_SHARE = 0.05  # default warm-up: this share of the steps (OLMo's ladder: ~1 token/param)
FINAL_LR = 0.1  # cosine decays to this share of the peak (OLMo's configs: alpha_f = 0.1)
SHARD_FROM = "1B"  # FSDP from this ladder size up, on GPUs
ADAMW = dict(betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)  # OLMo's configs
CLIP = 1.0  # OLMo's max_grad_norm


def ladder_lr(width: str) -> float:
    """Peak lr of a size: 0.0047 (N / 108M)^(-1/3), OLMo-core's model ladder (after Porian et
    al. 2024), N the non-embedding parameters."""
    return 0.0047 * (LADDER[width].non_embedding_params / 108e6) ** (-1 / 3)


def resolve(section: dict, point: Point) -> dict:
    """The section as this grid point runs it: `lr`, `warmup_steps`, `eval_every`,
    `checkpoint_every` filled in."""
    steps = section["steps"]
    return {
        **section,
        "lr": section["lr"] or ladder_lr(point.width),
        "warmup_steps": (section["warmup_steps"] if section["warmup_steps"] is not None
                         else round(WARMUP_SHARE * steps)),
        "eval_every": section["eval_every"] or max(1, steps // EVALS_PER_RUN),
        "checkpoint_every": section["checkpoint_every"] or max(1, steps // CHECKPOINTS_PER_RUN),
    }


def lr_factor(step: int, warmup: int, steps: int) -> float:
    """Linear warm-up to the peak, then cosine down to FINAL_LR of it at `steps`."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return FINAL_LR + (1 - FINAL_LR) * 0.5 * (1 + math.cos(math.pi * progress))


def build_model(width: str, tokenizer, seq_len: int, device: torch.device, world_size: int,
                seed: int) -> torch.nn.Module:
    """The ladder model on `device`, wrapped for the world: FSDP (by block, parameters
    materialised on the GPU shard by shard) from SHARD_FROM up on GPUs, else DDP if
    several workers. Same seed on every rank: DDP starts from rank 0's weights anyway."""
    from olmo import OLMo

    torch.manual_seed(seed)
    shard = (device.type == "cuda" and world_size > 1
             and LADDER[width].non_embedding_params >= LADDER[SHARD_FROM].non_embedding_params)
    model = OLMo(model_config(width, tokenizer, seq_len,
                              init_device="meta" if shard else device.type))
    if shard:  # not run here: no GPU was lent to this project (see README)
        from olmo.config import FSDPWrapStrategy
        from torch.distributed.fsdp import FullyShardedDataParallel, MixedPrecision

        model = FullyShardedDataParallel(
            model, auto_wrap_policy=model.get_fsdp_wrap_policy(FSDPWrapStrategy.by_block),
            mixed_precision=MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.float32),
            device_id=device, use_orig_params=True,
            param_init_fn=lambda m: m.to_empty(device=device, recurse=False))
        model.reset_parameters()  # ai2-olmo's train.py: initialise after sharding from meta
        return model
    model = model.to(device)
    if world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None)
    return model


def optimizer_for(model: torch.nn.Module, lr: float, warmup: int, steps: int):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, **ADAMW)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, steps))
    return optimizer, scheduler


def train_step(model, optimizer, scheduler, tokens: torch.Tensor, micro_batch: int,
               device: torch.device) -> torch.Tensor:
    """One optimizer step on this worker's rows (micro-batches accumulated, gradients
    synchronised on the last); the mean next-token loss, left on the device."""
    optimizer.zero_grad(set_to_none=True)
    chunks = tokens.to(device, non_blocking=True).split(micro_batch)
    total = torch.zeros((), device=device)
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        # DDP and FSDP want forward and backward inside no_sync; autocast the forward only.
        with nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync():
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=device.type == "cuda"):
                logits = model(chunk).logits[:, :-1]
                loss = F.cross_entropy(logits.flatten(0, 1).float(), chunk[:, 1:].flatten())
            (loss / len(chunks)).backward()
        total += loss.detach()
    if hasattr(model, "clip_grad_norm_"):  # FSDP: the norm over every shard
        model.clip_grad_norm_(CLIP)
    else:
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    optimizer.step()
    scheduler.step()
    return total / len(chunks)


def state(model, optimizer, scheduler, step: int) -> dict:
    """A checkpoint's training state: whole (unsharded) tensors on the CPU, so it loads at
    any world size. Every rank calls it (a collective under FSDP)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    weights, optim = get_state_dict(model, optimizer, options=StateDictOptions(
        full_state_dict=True, cpu_offload=True))
    return {"model": weights, "optimizer": optim, "scheduler": scheduler.state_dict(),
            "step": step, "rng": torch.get_rng_state()}


def load_state(model, optimizer, scheduler, saved: dict) -> int:
    """Restore `state`'s output; the step to continue from, which is also the data position."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    set_state_dict(model, optimizer, model_state_dict=saved["model"],
                   optim_state_dict=saved["optimizer"],
                   options=StateDictOptions(full_state_dict=True))
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    return saved["step"]


def open_corpus(section: dict) -> corpora.Corpus:
    return corpora.open_corpus(section["corpus"]) if section["corpus"] else corpora.embedded()


def global_batches(section: dict, point: Point, corpus: corpora.Corpus,
                   task: tasks.TaskSet) -> GlobalBatches:
    schedule = Schedule(point.frequency, section["batch_size"], section["seq_len"],
                        task.train_ids, seed=point.seed, block=_block(section))
    return GlobalBatches(corpus, schedule, task.tokens, seed=point.seed)


def _block(section: dict) -> int:
    schedule = section["schedule"]
    return schedule["block"] if isinstance(schedule, dict) else 0


def train_fn_per_worker(config: dict) -> None:
    from tracking.logger import RunLogger

    (point,) = unpack(config["trial"])
    section = resolve(config["olmo"], point)
    steps, L = section["steps"], section["seq_len"]
    rank, world_size = session.world(config)
    device = session.device(config)
    session.use_cpus(config["cpu"])
    run_id = config["run_ids"][point.key]

    # 1. Data, task, evaluation sets, model, optimizer: all from the spec and the seed.
    corpus = open_corpus(section)
    tokenizer = corpus.tokenizer
    task = tasks.load_task(point.task, point.seed, str(tokenizer.path))
    data = global_batches(section, point, corpus, task)
    lo, hi = share(section["batch_size"], rank, world_size)
    micro = section["micro_batch_size"] or hi - lo
    model = build_model(point.width, tokenizer, L, device, world_size, point.seed)
    optimizer, scheduler = optimizer_for(model, section["lr"], section["warmup_steps"], steps)
    sharded = hasattr(model, "clip_grad_norm_")
    evaluating = rank == 0 or sharded  # a sharded forward needs every rank
    if evaluating:
        ref_tokens, ref_mask = reference.reference(corpus).eval_set(point.task)
        sets = eval_sets(task, ref_tokens, ref_mask, section["eval_instances"])

    # 2. Resume: weights, optimizer, schedule, RNG and the metrics MLflow had not stored.
    #    The step is also the data position.
    start, unstored = 0, {}
    checkpoint = session.latest_checkpoint(config)
    if checkpoint is not None:
        saved = torch.load(checkpoint / "state.pt", weights_only=False)
        start = load_state(model, optimizer, scheduler, saved)
        unstored = {run_id: saved["unstored"]}
    logger = RunLogger.start(config["tracking_uri"], [run_id], unstored) if rank == 0 else None

    # 3. Train: evaluate every `eval_every` steps (and before the first), checkpoint every
    #    `checkpoint_every` (and at the end), each checkpoint after a flush to MLflow.
    losses, trained_s, tokens_since, metrics = [], 0.0, 0, {}
    model.train()
    for step in range(start, steps + 1):
        if step % section["eval_every"] == 0 or step == steps:
            metrics = evaluate(model if sharded else _unwrap(model), sets, device) \
                if evaluating else {}
            if losses:
                metrics["train/loss"] = _mean_over_workers(torch.stack(losses).mean(), world_size)
                metrics["throughput/tokens_per_s"] = tokens_since * world_size / trained_s
                metrics["data/checksum"] = checksum(placed.tokens)
                losses, trained_s, tokens_since = [], 0.0, 0
            if logger:
                logger.log(run_id, step, metrics)
        if step > start and (step % section["checkpoint_every"] == 0 or step == steps):
            saved = state(model, optimizer, scheduler, step)
            summary = {"step": step, "resumed_from": start, **_progress(metrics)}
            if logger is None:
                session.report(config, summary)
            else:
                logger.try_flush()
                with tempfile.TemporaryDirectory() as tmp:
                    torch.save({**saved, "unstored": logger.unstored().get(run_id, [])},
                               Path(tmp) / "state.pt")
                    session.report(config, summary, tmp)
        if step == steps:
            break
        began = time.monotonic()
        placed = data.rows(step, lo, hi)  # global batch `step`: the data position
        losses.append(train_step(model, optimizer, scheduler, placed.tokens, micro, device))
        if device.type == "cuda":
            torch.cuda.synchronize()
        trained_s += time.monotonic() - began
        tokens_since += placed.tokens.numel()
    if logger:
        logger.finish()


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def _mean_over_workers(loss: torch.Tensor, world_size: int) -> float:
    if world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(loss, op=dist.ReduceOp.SUM)
        loss = loss / world_size
    return loss.item()


def _progress(metrics: dict) -> dict:
    """What Tune's progress table shows (the last evaluation's)."""
    names = {"train/loss": "train_loss", "rare/test_acc": "test_acc"}
    return {short: metrics[name] for name, short in names.items() if name in metrics}


def trainable(trial_config: dict, sweep: dict) -> None:
    """Tune function trainable: `trial_config` holds the grid axes, `sweep` the rest."""
    session.sweep_trial(train_fn_per_worker, trial_config, sweep)
