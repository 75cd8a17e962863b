"""The OLMo model's training mechanics, plain PyTorch: the ladder model wrapped for the
world (DDP, or FSDP by block from SHARD_FROM up on GPUs), AdamW with OLMo's schedule, one
optimizer step over micro-batches, and the checkpoint state that loads at any world size."""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

from trainables.olmo.ladder import LADDER, model_config
from trainables.olmo.recipe import lr_factor

SHARD_FROM = "1B"  # FSDP from this ladder size up, on GPUs


def build_model(width: str, tokenizer, seq_len: int, device: torch.device, world_size: int,
                seed: int) -> torch.nn.Module:
    """The ladder model on `device`, wrapped for the world: FSDP (by block, parameters
    materialised on the GPU shard by shard) from SHARD_FROM up on GPUs, else DDP if
    several workers. Same seed on every rank: DDP starts from rank 0's weights anyway."""
    from olmo import OLMo

    torch.manual_seed(seed)
    sharded = (device.type == "cuda" and world_size > 1
               and LADDER[width].d_model >= LADDER[SHARD_FROM].d_model)
    model = OLMo(model_config(width, tokenizer, seq_len,
                              init_device="meta" if sharded else device.type))
    if sharded:  # not run here: no GPU was lent to this project (see README)
        return shard(model, device)
    model = model.to(device)
    if world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None)
    return model


def shard(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """FSDP by block (bf16 parameters and fp32 reductions on GPUs), the parameters
    materialised shard by shard and initialised after sharding, as ai2-olmo's train.py does."""
    from olmo.config import FSDPWrapStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel, MixedPrecision

    meta = next(model.parameters()).is_meta
    model = FullyShardedDataParallel(
        model, auto_wrap_policy=model.get_fsdp_wrap_policy(FSDPWrapStrategy.by_block),
        mixed_precision=MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if device.type == "cuda" else None,
        device_id=device, use_orig_params=True,
        param_init_fn=(lambda m: m.to_empty(device=device, recurse=False)) if meta else None)
    if meta:
        model.reset_parameters()
    return model


def optimizer_for(model: torch.nn.Module, section):
    """AdamW and the warm-up/cosine schedule of a resolved `OlmoSection`."""
    adamw = section.adamw
    optimizer = torch.optim.AdamW(model.parameters(), lr=section.lr,
                                  betas=(adamw.beta1, adamw.beta2), eps=adamw.eps,
                                  weight_decay=adamw.weight_decay)
    warmup, steps, final = section.warmup_steps, section.steps, section.final_lr
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, steps, final))
    return optimizer, scheduler


def train_step(model, optimizer, scheduler, tokens: torch.Tensor, micro_batch: int,
               device: torch.device, clip: float) -> dict[str, torch.Tensor]:
    """One optimizer step on this worker's rows: micro-batches of at most `micro_batch` rows
    (the last may be smaller), each weighted by its tokens so the step is the whole batch's,
    gradients synchronised on the last. Its measurements, left on the device: the mean
    next-token `loss` and the gradient's norm before clipping at `clip`, `grad_norm`."""
    optimizer.zero_grad(set_to_none=True)
    chunks = tokens.to(device, non_blocking=True).split(micro_batch)
    predicted = tokens[:, 1:].numel()
    total = torch.zeros((), device=device)
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        # DDP and FSDP want forward and backward inside no_sync; autocast the forward only.
        with nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync():
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=device.type == "cuda"):
                logits = model(chunk).logits[:, :-1]
                loss = F.cross_entropy(logits.flatten(0, 1).float(), chunk[:, 1:].flatten(),
                                       reduction="sum") / predicted
            loss.backward()
        total += loss.detach()
    if hasattr(model, "clip_grad_norm_"):  # FSDP: the norm over every shard
        norm = model.clip_grad_norm_(clip)
    else:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    scheduler.step()
    return {"loss": total, "grad_norm": norm.detach()}


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
