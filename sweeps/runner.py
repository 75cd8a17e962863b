"""Running a validated sweep: Ray (embedded or a cluster), MLflow runs, the Tuner.

Order matters for "nothing is started or written on bad input": everything that can be
refused (the spec, the machine's resources, the tracking store, existing state) is checked
before Ray starts, before the MLflow experiment exists and before the storage folder does.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from sweeps import grid, storage
from sweeps.errors import UserError
from sweeps.spec import SweepSpec
from trainables.points import unpack
from trainables.session import Placement
from tracking.runs import PlannedRun, TrackingAuthError, TrackingError, connect, ensure_runs
from tracking.runs import experiment_id, set_status, trial_runs

STATE_FILE = "sweep.yaml"  # the spec and tracking store, saved beside Tune's state for resume
TUNER_FILE = "tuner.pkl"  # what Tune restores from


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


def trainable_module(spec: SweepSpec):
    """`trainables.<trainable>`: each exposes `resolve(section, point)` (the section as a grid
    point runs it) and `trainable` (what Tune runs per trial)."""
    return importlib.import_module(f"trainables.{spec.trainable}")


def planned_runs(spec: SweepSpec) -> list[PlannedRun]:
    section, resolve = spec.section.model_dump(mode="json"), trainable_module(spec).resolve
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
    except TrackingAuthError as err:  # the URI is right: its message says what to set
        raise UserError(str(err))
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


def run(spec: SweepSpec, target: Target, restart: bool = False) -> int:
    """Run a sweep to the end; 0 if every trial finished, 1 if some failed."""
    check_local_resources(spec)
    client = connect_tracking(target.tracking_uri)
    existing = experiment_id(client, spec.name)
    if not restart and (storage.exists(target.sweep_dir(spec.name)) or
                        (existing and trial_runs(client, existing))):
        raise UserError(
            f"sweep {spec.name!r} already has state (in {target.sweep_dir(spec.name)} or "
            f"MLflow experiment {spec.name!r}): finish it with `sweeps resume {spec.name}`, "
            "start it over with `sweeps run SPEC --restart`, or pick another --name")
    if restart:
        discard(client, target, spec.name)
    # Saved first: a driver killed at any later point leaves a sweep `resume` can finish.
    storage.write_text(f"{target.sweep_dir(spec.name)}/{STATE_FILE}", yaml.safe_dump(
        {"spec": spec.model_dump(mode="json"), "tracking_uri": absolute_uri(target.tracking_uri)},
        sort_keys=False))
    return launch(spec, target, client)


def resume(name: str, target: Target) -> int:
    """Finish an interrupted sweep: Tune restores its trials (finished ones stay finished,
    the others continue from their checkpoints, errored ones are retried) and each grid point
    keeps its MLflow run."""
    spec = saved_spec(target, name)
    check_local_resources(spec)
    problem = tune_state_problem(target.sweep_dir(name))
    if problem:
        raise UserError(problem)
    return launch(spec, target, connect_tracking(target.tracking_uri))


def saved_spec(target: Target, name: str) -> SweepSpec:
    """The spec a sweep was started with, checked against this resume's tracking store (a
    different store would get a second set of runs)."""
    path = f"{target.sweep_dir(name)}/{STATE_FILE}"
    if not storage.exists(path):
        raise UserError(f"no sweep named {name!r} in {target.storage} (no {path}): check the "
                        "name and --storage, or start it with `sweeps run SPEC`")
    try:
        state = yaml.safe_load(storage.read_bytes(path))
        spec = SweepSpec.model_validate(state["spec"])
        tracked_at = state["tracking_uri"]
    except Exception as err:  # a damaged or hand-edited file: say which and what to do
        raise UserError(f"{path} is unreadable ({type(err).__name__}: {err}); restore it, or "
                        "start the sweep over with `sweeps run SPEC --restart`")
    if absolute_uri(target.tracking_uri) != tracked_at:
        raise UserError(f"sweep {name!r} is tracked at {tracked_at}, not "
                        f"{absolute_uri(target.tracking_uri)}: resume with --tracking-uri "
                        f"{tracked_at}")
    return spec


def tune_state_problem(sweep_dir: str) -> str | None:
    """Why Tune could not restore the sweep's state, or None. A driver killed before Tune
    wrote anything leaves no state, which is fine: the sweep starts its trials afresh. A
    truncated or corrupt file (ray#58179) would otherwise end in a traceback."""
    from ray import cloudpickle

    tuner_pkl = f"{sweep_dir}/{TUNER_FILE}"
    if not storage.exists(tuner_pkl):
        return None
    checks = [(tuner_pkl, cloudpickle.loads)]
    newest = storage.newest(sweep_dir, "experiment_state-")
    if newest:
        checks.append((newest, json.loads))
    for path, load in checks:
        try:
            load(storage.read_bytes(path))
        except Exception as err:  # truncated, corrupt, or from another Ray version
            return (f"Ray Tune's state file {path} is unreadable ({type(err).__name__}: "
                    f"{err}). The MLflow runs are intact; start the sweep over with "
                    "`sweeps run SPEC --restart`, or restore the file from a backup")
    return None


def discard(client, target: Target, name: str) -> None:
    """--restart: forget the old Tune state and the old runs (MLflow keeps them deleted)."""
    storage.remove_tree(target.sweep_dir(name))
    experiment = experiment_id(client, name)
    if experiment:
        for run_ in trial_runs(client, experiment):
            client.delete_run(run_.info.run_id)


def launch(spec: SweepSpec, target: Target, client) -> int:
    """Start Ray, make sure every grid point has its run, and run Tune: restored from the
    sweep's storage where Tune saved state, fresh otherwise."""
    from ray import tune

    start_ray(spec)
    experiment = experiment_id(client, spec.name, create=True)
    place = placement(spec)
    sweep = {
        "placement": {"workers": place.workers, "cpu": place.cpu, "gpu": place.gpu},
        "train_storage": f"{storage_path(target)}/{spec.name}/train",
        "max_failures": spec.failure.max_failures,
        "worker": {
            spec.trainable: spec.section.model_dump(mode="json"),
            "tracking_uri": absolute_uri(target.tracking_uri),
            "run_ids": ensure_runs(client, experiment, planned_runs(spec)),
        },
    }
    trainable = tune.with_resources(tune.with_parameters(trainable_module(spec).trainable,
                                                         sweep=sweep),
                                    place.trial_resources())
    space = {axis: (values if grid.packed(spec, axis) else tune.grid_search(values))
             for axis, values in grid.tune_axes(spec).items()}
    path = f"{storage_path(target)}/{spec.name}"
    if tune.Tuner.can_restore(path):
        try:
            tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                       resume_errored=True, param_space=space)
        except Exception as err:  # checked before Ray started; this is the rare rest
            raise UserError(f"Ray Tune cannot restore {path}: {err}")
    else:
        tuner = tune.Tuner(
            trainable,
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

