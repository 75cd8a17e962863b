"""Running a validated sweep: Ray (embedded or a cluster), MLflow runs, the Tuner.

Order matters for "nothing is started or written on bad input": everything that can be
refused (the spec, the machine's resources, the tracking store, existing state) is checked
before Ray starts, before the MLflow experiment exists and before the storage folder does.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from sweeps import grid
from sweeps.errors import UserError
from sweeps.spec import SweepSpec
from trainables.points import unpack
from trainables.session import Placement
from trainables.synthetic import resolve
from tracking.runs import PlannedRun, TrackingError, connect, ensure_runs
from tracking.runs import experiment_id, set_status, trial_runs

SPEC_FILE = "sweep.yaml"  # the validated spec, saved beside Tune's state for resume


@dataclass(frozen=True)
class Target:
    """Where a sweep's state lives: Tune/Train storage and the MLflow tracking store."""

    storage: str
    tracking_uri: str

    def sweep_dir(self, name: str) -> str:
        return f"{self.storage.rstrip('/')}/{name}"

    def is_local(self) -> bool:
        return "://" not in self.storage


def placement(spec: SweepSpec) -> Placement:
    r = spec.resources
    return Placement(workers=r.workers, cpu=r.cpu, gpu=r.gpu)


def planned_runs(spec: SweepSpec) -> list[PlannedRun]:
    section = spec.synthetic.model_dump(mode="json")
    return [
        PlannedRun(key=point.key,
                   params={**point.params(), **flatten(resolve(section, point))},
                   tags={"sweep": spec.name, "trainable": spec.trainable})
        for point in grid.points(spec)
    ]


def flatten(section: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in section.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = ",".join(value) if isinstance(value, list) else value
    return flat


def check_local_resources(spec: SweepSpec) -> None:
    """On the embedded Ray a trial must fit this machine, or it would wait forever."""
    if os.environ.get("RAY_ADDRESS") or spec.resources.gpu == 0:
        return
    import torch

    if torch.cuda.device_count() < spec.resources.gpu * spec.resources.workers:
        raise UserError(
            f"resources.gpu={spec.resources.gpu} with workers={spec.resources.workers} needs "
            f"GPUs this machine does not have ({torch.cuda.device_count()} found): set "
            "resources.gpu=0 here, or submit the sweep to a GPU cluster (`sweeps submit`)")


def connect_tracking(uri: str):
    try:
        return connect(uri)
    except TrackingError as err:
        raise UserError(f"{err}\nCheck --tracking-uri / $MLFLOW_TRACKING_URI (locally: "
                        "sqlite:///mlflow.db; on a cluster: the tracking server's http:// URL).")


def start_ray(spec: SweepSpec) -> None:
    """Join the Ray cluster this runs in (a job, or $RAY_ADDRESS), else start an embedded one
    sized to this machine, with room for at least one trial whatever it asks for."""
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
        return
    ray.init(num_cpus=embedded_cpus(spec), logging_level="WARNING",
             logging_config=ray.LoggingConfig(log_level="WARNING"))


def embedded_cpus(spec: SweepSpec) -> int:
    """This machine's cores as logical CPUs, or more if one trial asks for more: a trial's
    driver plus two 1-CPU workers must run on a 2-core laptop, oversubscribed."""
    return max(os.cpu_count() or 1, math.ceil(placement(spec).cpus_per_trial()))


def max_concurrent(spec: SweepSpec) -> int | None:
    """On the embedded Ray, as many trials as its CPUs hold: Tune would otherwise start every
    trial's driver at once, with their worker groups queueing. On a cluster the autoscaler
    grows to the pending trials, so no limit unless the spec sets one."""
    import ray

    if spec.resources.max_concurrent_trials or os.environ.get("RAY_ADDRESS"):
        return spec.resources.max_concurrent_trials
    per_trial = placement(spec).cpus_per_trial()
    return max(1, int(ray.cluster_resources().get("CPU", 1) // per_trial))


def has_state(target: Target, name: str) -> bool:
    return target.is_local() and Path(target.sweep_dir(name)).exists()


def run(spec: SweepSpec, target: Target, restart: bool = False) -> int:
    """Run a sweep to the end; 0 if every trial finished, 1 if some failed."""
    check_local_resources(spec)
    client = connect_tracking(target.tracking_uri)
    existing = experiment_id(client, spec.name)
    if not restart and (has_state(target, spec.name) or
                        (existing and trial_runs(client, existing))):
        raise UserError(
            f"sweep {spec.name!r} already has state (in {target.sweep_dir(spec.name)} or "
            f"MLflow experiment {spec.name!r}): finish it with `sweeps resume {spec.name}`, "
            "start it over with `sweeps run SPEC --restart`, or pick another --name")
    if restart:
        discard(client, target, spec.name)

    start_ray(spec)
    experiment = experiment_id(client, spec.name, create=True)
    ensure_runs(client, experiment, planned_runs(spec))
    if target.is_local():
        Path(target.sweep_dir(spec.name)).mkdir(parents=True, exist_ok=True)
        Path(target.sweep_dir(spec.name), SPEC_FILE).write_text(
            yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    return fit(spec, target, client, experiment)


def discard(client, target: Target, name: str) -> None:
    """--restart: forget the old Tune state and the old runs (MLflow keeps them deleted)."""
    if target.is_local():
        shutil.rmtree(target.sweep_dir(name), ignore_errors=True)
    experiment = experiment_id(client, name)
    if experiment:
        for run_ in trial_runs(client, experiment):
            client.delete_run(run_.info.run_id)


def fit(spec: SweepSpec, target: Target, client, experiment: str) -> int:
    from ray import tune

    from trainables import synthetic

    place = placement(spec)
    sweep = {
        "placement": {"workers": place.workers, "cpu": place.cpu, "gpu": place.gpu},
        "train_storage": f"{target.sweep_dir(spec.name)}/train"
        if not target.is_local() else str(Path(target.sweep_dir(spec.name), "train").resolve()),
        "max_failures": spec.failure.max_failures,
        "worker": {
            "synthetic": spec.synthetic.model_dump(mode="json"),
            "tracking_uri": absolute_uri(target.tracking_uri),
            "experiment_id": experiment,
        },
    }
    space = {axis: (values if grid.packed(spec, axis) else tune.grid_search(values))
             for axis, values in grid.tune_axes(spec).items()}
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(synthetic.trainable, sweep=sweep),
                            place.trial_resources()),
        param_space=space,
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent(spec)),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=storage_path(target),
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            verbose=1,
        ),
    )
    results = tuner.fit()
    failed = [r for r in results if r.error is not None]
    for result in failed:
        keys = {p.key for p in unpack(result.config)}
        set_status(client, [r.info.run_id for r in trial_runs(client, experiment)
                            if r.data.tags["trial_key"] in keys and r.info.status != "FINISHED"],
                   "FAILED")
    return 1 if failed else 0


def storage_path(target: Target) -> str:
    return target.storage if not target.is_local() else str(Path(target.storage).resolve())


def absolute_uri(uri: str) -> str:
    """Trials run in other working directories: make a relative sqlite path absolute."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri

