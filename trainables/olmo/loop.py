"""OLMo pretraining's per-worker loop (CONTRACTS 6): one grid point per trial.

Plain PyTorch run by Ray Train on `resources.workers` workers: the ai2-olmo `OLMo` model of a
ladder size (`model`), each worker training its rows of every global batch (`data`), so the
data position is the step and a resume continues exactly. Every `eval_every` steps the task
and reference sets are evaluated (`evaluate`) and logged through the tracker (rank 0's; the
other ranks get a no-op); every `checkpoint_every` steps a checkpoint is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from injection import reference, tasks
from trainables import periodic
from trainables.olmo.data import checksum, global_batches, open_corpus, share
from trainables.olmo.evaluate import EvalSets, eval_sets, evaluate
from trainables.olmo.model import build_model, load_state, optimizer_for, state, train_step
from trainables.olmo.trainable import OlmoSection
from trainables.session import Worker


@dataclass
class Window:
    """Training measurements since the last evaluation, logged with it."""

    losses: list[torch.Tensor] = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0
    checksum: float | None = None  # of the last batch this worker trained

    def add(self, measurements: dict[str, torch.Tensor], tokens: torch.Tensor,
            seconds: float) -> None:
        self.losses.append(measurements["loss"])
        self.seconds += seconds
        self.tokens += tokens.numel()
        self.checksum = checksum(tokens)

    def metrics(self, world_size: int) -> dict[str, float]:
        """Mean loss over the steps and the workers, tokens/s of all workers, the checksum;
        empty before the first step. Every rank calls it (an all-reduce)."""
        if not self.losses:
            return {}
        return {"train/loss": _mean_over_workers(torch.stack(self.losses).mean(), world_size),
                "throughput/tokens_per_s": self.tokens * world_size / self.seconds,
                "data/checksum": self.checksum}


def train_fn_per_worker(config: dict) -> None:
    worker = Worker.start(config)
    (run,) = worker.trial.points
    point, section = run.point, OlmoSection.model_validate(run.section)
    steps, device = section.steps, worker.device

    # 1. Data, task, evaluation sets, model, optimizer: all from the section and the seed.
    corpus = open_corpus(section.corpus)
    task = tasks.load_task(point.task, point.seed, str(corpus.tokenizer.path))
    data = global_batches(point.frequency, section.batch_size, section.seq_len, section.block,
                          point.seed, corpus, task)
    lo, hi = share(section.batch_size, worker.rank, worker.world_size)
    micro = section.micro_batch_size or hi - lo
    model = build_model(point.width, corpus.tokenizer, section.seq_len, device,
                        worker.world_size, point.seed)
    optimizer, scheduler = optimizer_for(model, section.lr, section.warmup_steps, steps)
    sharded = hasattr(model, "clip_grad_norm_")
    sets = _eval_sets(corpus, task, section) if worker.main or sharded else None

    # 2. Resume: weights, optimizer, schedule and RNG; the step is also the data position.
    #    The tracker takes back the metrics MLflow had not stored by the checkpoint.
    start, checkpoint = 0, worker.checkpoint()
    if checkpoint is not None:
        start = load_state(model, optimizer, scheduler,
                           torch.load(checkpoint / "state.pt", weights_only=False))
    tracker = worker.tracker([run.run_id] if worker.main else [], checkpoint)

    # 3. Train: evaluate every `eval_every` steps (and before the first), checkpoint every
    #    `checkpoint_every` (and at the end).
    window, logged = Window(), {}
    model.train()
    for step in range(start, steps + 1):
        if periodic.due(step, section.eval_every, steps):
            evaluated = evaluate(model if sharded else _unwrap(model), sets, device) \
                if sets is not None else {}
            logged = {**evaluated, **window.metrics(worker.world_size)}
            tracker.log(run.run_id, step, logged)
            window = Window()
        if step > start and periodic.due(step, section.checkpoint_every, steps, first=False):
            saved = state(model, optimizer, scheduler, step)  # every rank: FSDP gathers
            worker.report({"step": step, "resumed_from": start, **_progress(logged)},
                          save=_writer(saved) if worker.main else None, tracker=tracker)
        if step == steps:
            break
        began = time.monotonic()
        tokens = data.rows(step, lo, hi).tokens  # global batch `step`: the data position
        measured = train_step(model, optimizer, scheduler, tokens, micro, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        window.add(measured, tokens, time.monotonic() - began)
    tracker.finish()


def _eval_sets(corpus, task, section: OlmoSection) -> EvalSets:
    ref_tokens, ref_mask = reference.reference(corpus).eval_set(task.task)
    return eval_sets(task, ref_tokens, ref_mask, section.eval_instances)


def _writer(saved: dict):
    def save(folder: Path) -> None:
        torch.save(saved, folder / "state.pt")

    return save


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
