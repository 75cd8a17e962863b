"""How a trainable runs: a Ray Tune trial that drives a Ray Train `TorchTrainer`.

The Train V2 pattern: Tune runs `trial_plan.tune_trial` once per trial, which opens the trial's
MLflow runs and runs `run_trial` here in the trial's process; it builds a TorchTrainer named
after the trial id (deterministic, never a timestamp, so a restarted trial finds and resumes
its own Train run) and the trainable's per-worker loop trains. On CPU with one worker the
trainer runs in local mode (`num_workers=0`): the loop runs inside the trial's process and
reports to Tune itself, which saves the ~18 s start-up of a worker group per trial. With GPUs or
several workers it gets a real worker group and reports through Ray Train.

A loop sees Ray only through `Worker` (rank, device, the checkpoint to resume from, `report`),
which hides which of the two it runs under; everything else in a trainable is plain PyTorch.

Of the trainables' modules it needs only the contract (`TrialConfig`) and the catalog: what
a trial is handed, and opening its runs, are `trial_plan`'s.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import ray.train
import torch
from ray import tune
from ray.train.torch import TorchConfig, TorchTrainer
from ray.train.torch.config import _TorchBackend
from ray.tune.integration.ray_train import TuneReportCallback

from trainables import catalog
from trainables.contract import CHECKPOINTS_KEPT, TrialConfig
from tracking.tracker import Tracker, open_tracker


def run_trial(trial: TrialConfig, train_storage: str, max_failures: int) -> None:
    """The body of Tune's function trainable (`trial_plan.tune_trial`): the trainable's
    per-worker loop under a TorchTrainer, its state under `train_storage`."""
    quiet_sigterm_in_finalizers()
    module, _, function = catalog.get(trial.trainable).worker.partition(":")
    loop = getattr(importlib.import_module(module), function)
    placement = trial.placement
    trainer = TorchTrainer(
        loop,
        train_loop_config=trial.model_dump(mode="json"),
        torch_config=DeviceTorchConfig(),
        scaling_config=ray.train.ScalingConfig(
            num_workers=0 if placement.local else placement.workers,
            use_gpu=placement.gpu > 0,
            resources_per_worker={"CPU": placement.cpu, "GPU": placement.gpu},
        ),
        run_config=ray.train.RunConfig(
            name=f"train-{tune.get_context().get_trial_id()}",
            storage_path=train_storage,
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
            callbacks=[] if placement.local else [TuneReportCallback()],
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
    )
    trainer.fit()


class _DeviceBackend(_TorchBackend):
    """nccl where every worker sees a CUDA device, gloo where one does not. Ray picks nccl
    for any GPU resource, but a node may offer the resource without a device (the
    autoscaler's fake GPU nodes), and only the workers know which node they landed on."""

    def on_start(self, worker_group, backend_config: TorchConfig) -> None:
        quiet_sigterm_in_finalizers()  # here in Train's controller, a process of its own
        cuda = all(worker_group.execute(torch.cuda.is_available))
        backend = "nccl" if cuda else "gloo"
        super().on_start(worker_group, TorchConfig(backend=backend,
                                                   init_method=backend_config.init_method,
                                                   timeout_s=backend_config.timeout_s))


class DeviceTorchConfig(TorchConfig):
    @property
    def backend_cls(self):
        return _DeviceBackend


@dataclass(frozen=True)
class Worker:
    """One Train worker of a trial, as its loop sees it."""

    trial: TrialConfig
    rank: int
    world_size: int
    device: torch.device

    @classmethod
    def start(cls, config: dict) -> "Worker":
        """This worker, from the loop's config; torch gets the CPUs the trial was granted."""
        trial = TrialConfig.model_validate(config)
        local = trial.placement.local
        if not local:
            quiet_train_reports()
            quiet_sigterm_in_finalizers()
        context = None if local else ray.train.get_context()
        rank, world = (0, 1) if local else (context.get_world_rank(),
                                            context.get_world_size())
        # The worker's GPU where it has one; the CPU otherwise, also where Ray granted a GPU
        # resource on a node without a CUDA device (autoscaler test clusters).
        device = ray.train.torch.get_device() if not local and torch.cuda.is_available() \
            else torch.device("cpu")
        threads = max(1, int(trial.placement.cpu))
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        return cls(trial, rank, world, device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @contextmanager
    def restored(self) -> Iterator[Path | None]:
        """The newest checkpoint's folder while the block runs (None on a fresh start): read
        where it is when the storage is local, else downloaded into a temporary folder that
        is removed after the block (`to_directory` left a copy in /tmp on every restore)."""
        local = self.trial.placement.local
        checkpoint = tune.get_checkpoint() if local else ray.train.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)

    def tracker(self, run_ids: list[str], checkpoint: Path | None) -> Tracker:
        """The tracker of the runs this worker logs (none: a no-op)."""
        return open_tracker(self.trial.tracking_uri, run_ids, checkpoint)

    def report(self, summary: dict, save: Callable[[Path], None] | None = None,
               tracker: Tracker | None = None) -> None:
        """Report `summary` to Tune; with `save`, as a checkpoint: `save(folder)` writes the
        training state and `tracker.save(folder)` what MLflow has not stored yet. Every rank
        calls this; each writes its own part (none, for a rank with nothing to save)."""
        api = tune if self.trial.placement.local else ray.train
        if save is None:
            api.report(summary)
            return
        with tempfile.TemporaryDirectory() as folder:
            save(Path(folder))
            if tracker is not None:
                tracker.save(Path(folder))
            api.report(summary, checkpoint=api.Checkpoint.from_directory(folder))

    def all_finished(self, finished: bool) -> bool:
        """Whether every rank has finished, each saying whether it has. Train's `report` is a
        barrier across a worker group's ranks, so they must report equally often even where
        each decides when (a synthetic rank's own clock and points): a rank that is done keeps
        reporting until this says every rank is (`report_until_all_finished`). Called right
        after a report, where the ranks have just met, so it never waits long."""
        if self.world_size == 1:
            return finished
        import torch.distributed as dist

        flag = torch.tensor([int(finished)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def report_until_all_finished(self, summary: dict,
                                  save: Callable[[Path], None] | None = None) -> None:
        """A rank that is done: its last `summary` and state, reported (each followed by
        `all_finished`) for as long as another rank still trains."""
        everyone = False
        while not everyone:
            self.report(summary, save)
            everyone = self.all_finished(True)


def quiet_train_reports() -> None:
    """A worker of a worker group says "Reporting training result N: TrainingReport(...)" at
    INFO on every report, which Ray forwards to the sweep's console; its logger is named
    after Train's file, outside the `ray.train` loggers Train's LoggingConfig sets."""
    from ray.train.v2._internal.execution import context as train_context

    logging.getLogger(train_context.__file__).setLevel(logging.WARNING)


def quiet_sigterm_in_finalizers() -> None:
    """As a finished trial's process disconnects, its raylet sends it SIGTERM (SIGKILL 0.2 s
    later), whose handler in a Ray worker raises SystemExit. Where that lands inside a
    finalizer or weakref callback of the exiting process, Python cannot raise it and prints
    "Exception ignored in ... SystemExit: 1" with a traceback, which Ray forwards to the
    sweep's console. Python ignores that SystemExit either way; this only leaves it
    unprinted. Every other unraisable error still prints."""
    if getattr(sys.unraisablehook, "quiet_sigterm", False):
        return
    default = sys.unraisablehook

    def hook(unraisable) -> None:
        if not issubclass(unraisable.exc_type, SystemExit):
            default(unraisable)

    hook.quiet_sigterm = True
    sys.unraisablehook = hook


class ComputeClock:
    """Seconds spent inside an iterator's `next()`: a trial's own compute, without the time
    it spends logging and reporting between items."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def over(self, iterator):
        iterator = iter(iterator)
        while True:
            start = time.monotonic()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.seconds += time.monotonic() - start
            yield item
