"""How a trainable runs: a Ray Tune trial that drives a Ray Train `TorchTrainer`.

The Train V2 pattern: Tune runs `run_trial` once per trial; it builds a TorchTrainer named
after the trial id (deterministic, never a timestamp, so a restarted trial finds and resumes
its own Train run) and the per-worker function trains. On CPU with one worker the trainer runs
in local mode (`num_workers=0`): the per-worker function runs inside the trial's process and
reports to Tune itself, which saves the ~18 s start-up of a worker group per trial. With GPUs or
several workers it gets a real worker group and reports through Ray Train.

The per-worker side uses `report`, `latest_checkpoint`, `world` and `device`, which hide which
of the two it runs under; everything else in a trainable is plain PyTorch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import ray.train
import torch
from ray import tune
from ray.train.torch import TorchConfig, TorchTrainer
from ray.train.torch.config import _TorchBackend
from ray.tune.integration.ray_train import TuneReportCallback

LOCAL_MODE = "local_mode"  # config key telling the per-worker function where it runs
DRIVER_CPU = 0.01  # what a trial driving a worker group holds itself


@dataclass(frozen=True)
class Placement:
    """Resources of one trial: `workers` Train workers with `cpu` and `gpu` each."""

    workers: int = 1
    cpu: float = 1.0
    gpu: float = 0.0

    @property
    def local(self) -> bool:
        return self.workers == 1 and self.gpu == 0

    def trial_resources(self) -> dict:
        """What the Tune trial itself holds: everything in local mode; otherwise a sliver of a
        CPU for the trial's driver (Tune refuses an empty request), as the Train controller
        places the worker group itself."""
        return {"cpu": self.cpu, "gpu": self.gpu} if self.local else {"cpu": DRIVER_CPU}

    def cpus_per_trial(self) -> float:
        return self.cpu if self.local else self.cpu * self.workers + DRIVER_CPU


def run_trial(train_fn: Callable[[dict], None], config: dict, placement: Placement,
              storage: str, max_failures: int) -> None:
    """Body of a Tune function trainable: run `train_fn` under a TorchTrainer."""
    trial_id = tune.get_context().get_trial_id()
    trainer = TorchTrainer(
        train_fn,
        train_loop_config={**config, LOCAL_MODE: placement.local},
        torch_config=DeviceTorchConfig(),
        scaling_config=ray.train.ScalingConfig(
            num_workers=0 if placement.local else placement.workers,
            use_gpu=placement.gpu > 0,
            resources_per_worker={"CPU": placement.cpu, "GPU": placement.gpu},
        ),
        run_config=ray.train.RunConfig(
            name=f"train-{trial_id}",
            storage_path=storage,
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=[] if placement.local else [TuneReportCallback()],
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
    )
    trainer.fit()


def sweep_trial(train_fn: Callable[[dict], None], trial_config: dict, sweep: dict) -> None:
    """What a trainable's Tune function does: `trial_config` holds the grid axes, `sweep`
    the rest (placement, storage, failures and the workers' config, from the runner)."""
    placement = Placement(**sweep["placement"])
    run_trial(train_fn, {**sweep["worker"], "trial": trial_config, "cpu": placement.cpu},
              placement, storage=sweep["train_storage"], max_failures=sweep["max_failures"])


class _DeviceBackend(_TorchBackend):
    """nccl where every worker sees a CUDA device, gloo where one does not. Ray picks nccl
    for any GPU resource, but a node may offer the resource without a device (the
    autoscaler's fake GPU nodes), and only the workers know which node they landed on."""

    def on_start(self, worker_group, backend_config: TorchConfig) -> None:
        cuda = all(worker_group.execute(torch.cuda.is_available))
        backend = "nccl" if cuda else "gloo"
        super().on_start(worker_group, TorchConfig(backend=backend,
                                                   init_method=backend_config.init_method,
                                                   timeout_s=backend_config.timeout_s))


class DeviceTorchConfig(TorchConfig):
    @property
    def backend_cls(self):
        return _DeviceBackend


def report(config: dict, metrics: dict, checkpoint_dir: str | None = None) -> None:
    api = tune if config[LOCAL_MODE] else ray.train
    checkpoint = api.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
    api.report(metrics, checkpoint=checkpoint)


def latest_checkpoint(config: dict) -> Path | None:
    """Directory of the newest checkpoint to resume from, or None on a fresh start."""
    checkpoint = tune.get_checkpoint() if config[LOCAL_MODE] else ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    # Local mode gets a local copy from Tune; a worker group reads the storage path itself.
    return Path(checkpoint.to_directory())


def world(config: dict) -> tuple[int, int]:
    """(rank, world size) of this worker."""
    if config[LOCAL_MODE]:
        return 0, 1
    context = ray.train.get_context()
    return context.get_world_rank(), context.get_world_size()


def device(config: dict) -> torch.device:
    """The worker's GPU where it has one; the CPU otherwise, also where Ray granted a GPU
    resource on a node without a CUDA device (autoscaler test clusters)."""
    if not config[LOCAL_MODE] and torch.cuda.is_available():
        return ray.train.torch.get_device()
    return torch.device("cpu")


def use_cpus(cpu: float) -> None:
    """Give torch the CPUs the trial was granted, not the whole machine."""
    threads = max(1, int(cpu))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


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
