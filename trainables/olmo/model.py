"""The OLMo model's training mechanics, plain PyTorch: the ladder model (compiled by block
if asked) wrapped for the world (DDP, or FSDP by block from SHARD_FROM up on GPUs, or where the
section asks), AdamW with OLMo's schedule, one optimizer step over micro-batches, and sharded
checkpoints that load at any world size."""

from __future__ import annotations

import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from olmo import OLMo

from trainables.olmo.ladder import LADDER, model_config
from trainables.olmo.loss import chunk_step, lm_loss
from trainables.olmo.recipe import lr_factor

SHARD_FROM = "1B"  # FSDP from this ladder size up, on GPUs
INSTANCE_CHUNK = 256  # task instances per forward pass of a measurement (features, interference)


class LanguageModel(OLMo):
    """ai2-olmo's `OLMo` (the same modules and state dict) whose forward also takes `labels`
    and then returns the summed next-token loss of its hidden states (`loss.lm_loss`), never
    the whole batch's logits. The loss is part of the forward so that DDP and FSDP see it as
    the model's own computation (FSDP holds the output weight unsharded only in there).

    `compile_step` compiles each block and the loss's chunk step (`torch.compile` by block,
    as FSDP wraps them, so DDP still overlaps each block's gradient reduction with the
    backward). Only the training forward (`labels` given) runs compiled: evaluations and
    interference measurements, whose shapes vary and whose hooks need eager modules, run the
    same modules eagerly (`eager`)."""

    def __init__(self, config):
        super().__init__(config)
        # The trunk below is OLMo.forward for the ladder's configs (`ladder.model_config`).
        assert config.rope and not (config.alibi or config.embedding_layer_norm
                                    or config.weight_tying or config.scale_logits
                                    or config.include_bias)
        assert config.block_group_size == 1
        self.loss_step = chunk_step

    def compile_step(self) -> "LanguageModel":
        """Compile the training forward: each block (in place: names and state dict stay
        OLMo's) and the loss's chunk step. Compilation happens at the first step."""
        for block in self.transformer.blocks:
            block.compile()
        self.loss_step = torch.compile(chunk_step)
        return self

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, **kwargs):
        """With `labels` (batch, seq): the summed loss of predicting labels[:, i + 1] at
        each position i (float32); without, OLMo's forward (its logits), run eagerly."""
        if labels is None:
            with eager():
                return super().forward(input_ids, **kwargs)
        t = self.transformer
        x = t.emb_drop(t.wte(input_ids))
        for block in t.blocks:
            x, _ = block(x)
        x = t.ln_f(x)
        return lm_loss(x[:, :-1], t.ff_out.weight, labels[:, 1:], step=self.loss_step)


def eager():
    """Everything compiled runs eagerly inside (hooks, varying shapes)."""
    return torch.compiler.set_stance("force_eager")


def build_model(width: str, tokenizer, seq_len: int, device: torch.device, world_size: int,
                seed: int, compile: bool = False, parallel: str = "auto") -> torch.nn.Module:
    """The ladder model on `device` (compiled by block with `compile`), wrapped for the
    world: FSDP (by block, parameters materialised shard by shard) with `parallel` fsdp, or
    by default from SHARD_FROM up on GPUs; else DDP if several workers. Same seed on every
    rank: DDP starts from rank 0's weights anyway."""
    torch.manual_seed(seed)
    sharded = world_size > 1 and (parallel == "fsdp" or (
        parallel == "auto" and device.type == "cuda"
        and LADDER[width].d_model >= LADDER[SHARD_FROM].d_model))
    model = LanguageModel(model_config(width, tokenizer, seq_len,
                                       init_device="meta" if sharded else device.type))
    if compile:
        model.compile_step()
    if sharded:
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
    """AdamW (fused on a GPU: one kernel for every parameter, the same update) and the
    warm-up/cosine schedule of a resolved `OlmoSection`."""
    adamw = section.adamw
    optimizer = torch.optim.AdamW(model.parameters(), lr=section.lr,
                                  betas=(adamw.beta1, adamw.beta2), eps=adamw.eps,
                                  weight_decay=adamw.weight_decay,
                                  fused=next(model.parameters()).is_cuda)
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
                loss = model(chunk, labels=chunk) / predicted
            loss.backward()
        total += loss.detach()
    if hasattr(model, "clip_grad_norm_"):  # FSDP: the norm over every shard
        norm = model.clip_grad_norm_(clip)
    else:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    scheduler.step()
    return {"loss": total, "grad_norm": norm.detach()}


def save_state(model, optimizer, folder: Path) -> None:
    """Weights and AdamW moments into `folder` in torch.distributed.checkpoint's sharded
    format: every rank writes its own part (FSDP: its shards; DDP: its share of the replicated
    tensors, spread over the ranks), nothing is gathered to one CPU, and rank 0 adds the
    metadata. Each rank may write to a folder of its own (Ray Train merges them into one
    checkpoint). Every rank calls it."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    with quiet_fsdp_state_dicts():
        weights, optim = get_state_dict(model, optimizer)
        dcp.save({"model": weights, "optimizer": optim}, checkpoint_id=str(folder),
                 no_dist=not torch.distributed.is_initialized())


def load_state(model, optimizer, folder: Path) -> None:
    """`save_state`'s checkpoint, at this world size whatever the saving one was (DCP
    reshards: each rank reads the pieces of its own shards or replicas)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    with quiet_fsdp_state_dicts():
        weights, optim = get_state_dict(model, optimizer)  # the layout to read into
        state = {"model": weights, "optimizer": optim}
        dcp.load(state, checkpoint_id=str(folder),
                 no_dist=not torch.distributed.is_initialized())
        set_state_dict(model, optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optimizer"])


@contextmanager
def quiet_fsdp_state_dicts():
    """FSDP's sharded state dicts warn on every call, from every rank, that they will change
    (ShardedTensor to DTensor, a process group's default device): nothing a user of the sweep
    can act on, and Ray forwards each to the sweep's console at every checkpoint."""
    with warnings.catch_warnings():
        for text in ("Please use DTensor instead", "`_get_pg_default_device` will be",
                     "Multiple backends are registered"):
            warnings.filterwarnings("ignore", message=f".*{text}")
        yield
