"""OLMo pretraining's per-worker loop (CONTRACTS 6): one grid point per trial.

Plain PyTorch run by Ray Train on `resources.workers` workers: the ai2-olmo `OLMo` model of a
ladder size (`model`), each worker training its rows of every global batch (`data`), so the
data position is the step and a resume continues exactly. Every `eval_every` steps the task
and reference sets and the task's features are evaluated (`evaluate`, `features`) and logged
through the tracker (rank 0's; the other ranks get a no-op); every step logs its injected
instances, and measured steps the paper's mechanism metrics (`mechanism`); every
`checkpoint_every` steps a sharded checkpoint is reported (every rank writes its part).
The corpus's reference tasks are read, never made: a corpus without them fails here at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from injection import reference, tasks
from trainables import periodic
from trainables.olmo.clock import StepClock
from trainables.olmo.data import checksum, global_batches, open_corpus, share
from trainables.olmo.evaluate import EvalSets, eval_sets, evaluate
from trainables.olmo.mechanism import Mechanism
from trainables.olmo.model import build_model, load_state, optimizer_for, save_state, train_step
from trainables.contract import PointRun
from trainables.olmo.trainable import OlmoSection
from trainables.session import Worker
from tracking.tracker import Tracker

TRIAL_STATE = "trial.pt"  # beside the sharded weights: schedule, step, RNG, measurements

@dataclass
class Window:
    """Training measurements since the last evaluation, logged with it: every key of the
    step's measurements dict (`train_step`: loss, grad_norm) as `train/<key>`, so a new
    per-step metric is one line in the step. They stay on the device and the clock unread
    until then, so a step never waits for the GPU."""

    clock: StepClock
    measured: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    tokens: int = 0
    checksum: float | None = None  # of the last batch this worker trained

    def add(self, measurements: dict[str, torch.Tensor], tokens: torch.Tensor) -> None:
        for name, value in measurements.items():
            self.measured.setdefault(name, []).append(value)
        self.tokens += tokens.numel()
        self.checksum = checksum(tokens)

    def metrics(self, world_size: int) -> dict[str, float]:
        """Each measurement's mean over the steps and the workers, tokens/s of all workers,
        the checksum; empty before the first step. Every rank calls it (an all-reduce)."""
        if not self.measured:
            return {}
        return {**{f"train/{name}": _mean_over_workers(torch.stack(values).mean(), world_size)
                   for name, values in self.measured.items()},
                "throughput/tokens_per_s": self.tokens * world_size / self.clock.seconds,
                "data/checksum": self.checksum}

    def state_dict(self, world_size: int) -> dict:
        """For a checkpoint, so the first evaluation after a resume averages the same steps:
        each step's measurements averaged over the workers (every rank calls it), on the
        CPU."""
        measured = {name: [_mean_over_workers(v.clone(), world_size) for v in values]
                    for name, values in self.measured.items()}
        return {"measured": measured, "seconds": self.clock.seconds, "tokens": self.tokens,
                "checksum": self.checksum}

    @classmethod
    def restored(cls, state: dict, device: torch.device) -> "Window":
        # A checkpoint written before every measurement was kept holds the losses alone.
        measured = state["measured"] if "measured" in state else {"loss": state["losses"]}
        return cls(StepClock(device, state["seconds"]),
                   {name: [torch.tensor(v, device=device) for v in values]
                    for name, values in measured.items()},
                   state["tokens"], state["checksum"])


def train_fn_per_worker(config: dict) -> None:
    worker = Worker.start(config)
    (run,) = worker.trial.points
    trial = Trial(run, worker.rank, worker.world_size, worker.device)
    with worker.restored() as checkpoint:
        resumed = checkpoint is not None
        start = trial.load(checkpoint) if resumed else 0
        # The tracker takes back the metrics MLflow had not stored by the checkpoint.
        tracker = worker.tracker([run.run_id] if worker.main else [], checkpoint)

    def report(step: int, progress: dict) -> None:
        worker.report({"step": step, "resumed_from": start, **_progress(progress)},
                      save=lambda folder: trial.save(step, folder, worker.main),
                      tracker=tracker)

    trial.train(start, resumed=resumed, tracker=tracker, report=report)
    tracker.finish()


class Trial:
    """One grid point's training on this worker: plain PyTorch, Ray-free (a test drives it
    with a real tracker and its own checkpoints)."""

    def __init__(self, run: PointRun, rank: int, world_size: int, device: torch.device):
        # Data, task, evaluation sets, model, optimizer: all from the section and the seed.
        point = run.point
        section = self.section = OlmoSection.model_validate(run.section)
        self.run_id, self.device, self.world_size = run.run_id, device, world_size
        corpus = open_corpus(section.corpus)
        ref = reference.load(corpus)  # made before training (`sweeps corpus reference`)
        task = tasks.load_task(point.task, point.seed, str(corpus.tokenizer.path))
        self.data = global_batches(point.frequency, section.batch_size, section.seq_len,
                                   section.block, point.seed, corpus, task)
        self.rows = share(section.batch_size, rank, world_size)
        compiled = section.compile if section.compile is not None else device.type == "cuda"
        self.model = build_model(point.width, corpus.tokenizer, section.seq_len, device,
                                 world_size, point.seed, compile=compiled,
                                 parallel=section.parallel)
        self.optimizer, self.scheduler = optimizer_for(self.model, section)
        sharded = hasattr(self.model, "clip_grad_norm_")
        # What runs forward passes outside the step: every rank's FSDP module, or the bare model
        self.bare = self.model if sharded else _unwrap(self.model)
        self.sets = _eval_sets(ref, task, section) if rank == 0 or sharded else None
        self.mechanism = Mechanism(section, task, self.data.schedule,
                                   None if self.sets is None else self.sets.test, device, rank,
                                   world_size)
        self.window = Window(StepClock(device))  # training since the last evaluation

    def load(self, folder: Path) -> int:
        """Weights and optimizer (sharded, at any world size), schedule, RNG, the steps since
        the last evaluation and the measurement state; the step to continue from, which is
        also the data position."""
        load_state(self.model, self.optimizer, folder)
        saved = torch.load(folder / TRIAL_STATE, weights_only=False)
        self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        self.mechanism.load_state_dict(saved["mechanism"])
        self.window = Window.restored(saved["window"], self.device)
        return saved["step"]

    def save(self, step: int, folder: Path, main: bool) -> None:
        """The checkpoint after `step` steps into `folder`: every rank writes its shards of
        weights and optimizer; the main rank adds the rest (`TRIAL_STATE`). Every rank calls
        it (losses are averaged over the workers)."""
        save_state(self.model, self.optimizer, folder)
        window = self.window.state_dict(self.world_size)
        if main:
            torch.save({"scheduler": self.scheduler.state_dict(), "step": step,
                        "rng": torch.get_rng_state(), "window": window,
                        "mechanism": self.mechanism.state_dict()}, folder / TRIAL_STATE)

    def train(self, start: int, resumed: bool, tracker: Tracker,
              report: Callable[[int, dict], None]) -> None:
        """The state after `step` steps is evaluated every `eval_every` steps and checkpointed
        (`report`) every `checkpoint_every` (a resumed run did both for its first state before
        it stopped); then global batch `step` trains, its metrics logged at step + 1."""
        section, device, mechanism = self.section, self.device, self.mechanism
        steps, (lo, hi) = section.steps, self.rows
        micro = section.micro_batch_size or hi - lo
        progress = {}
        self.model.train()
        for step in range(start, steps + 1):
            if step > start or not resumed:
                now = {}
                if periodic.due(step, section.eval_every, steps):
                    if self.sets is not None:
                        now = {**evaluate(self.bare, self.sets, device),
                               **mechanism.features(self.bare)}
                    now.update(self.window.metrics(self.world_size))
                    self.window, progress = Window(StepClock(device)), now
                now.update(mechanism.at_state(self.bare, step, now))
                if now:
                    tracker.log(self.run_id, step, now)
                if periodic.due(step, section.checkpoint_every, steps, first=False):
                    report(step, progress)
            if step == steps:
                break
            self.window.clock.start()
            tokens = self.data.rows(step, lo, hi).tokens  # global batch `step`: data position
            with mechanism.probe(self.model, self.bare, step) as probe:  # measured steps only
                measured = train_step(self.model, self.optimizer, self.scheduler, tokens, micro,
                                      device, section.grad_clip)
            self.window.clock.stop()
            self.window.add(measured, tokens)
            tracker.log(self.run_id, step + 1, {"rare/injected": float(mechanism.count(step)),
                                                **(probe.metrics() if probe else {})})


def _eval_sets(ref: reference.Reference, task, section: OlmoSection) -> EvalSets:
    ref_tokens, ref_mask = ref.eval_set(task.task)
    return eval_sets(task, ref_tokens, ref_mask, section.eval_instances)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def _mean_over_workers(loss: torch.Tensor, world_size: int) -> float:
    """Every rank calls it (an all-reduce)."""
    if world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(loss, op=dist.ReduceOp.SUM)
        loss = loss / world_size
    return loss.item()


def _progress(metrics: dict) -> dict:
    """What Tune's progress table shows (the last evaluation's)."""
    names = {"train/loss": "train_loss", "rare/test_acc": "test_acc"}
    return {short: metrics[name] for name, short in names.items() if name in metrics}
