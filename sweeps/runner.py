"""Running a validated sweep: Ray (embedded or a cluster), MLflow runs, the Tuner.

Order matters for "nothing is started or written on bad input": everything that can be
refused (the spec, the machine's resources, the tracking store, existing state) is checked
before Ray starts, before the MLflow experiment exists and before the storage folder does. A
new sqlite store holds nothing to check, so MLflow makes it (and is imported) while Ray starts.

What a person sees while it runs is `sweeps.progress` (read from MLflow, like `sweeps status
--watch` from another terminal): Tune's own console output is off, and so is the noise that
would bury it, each at its source.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sweeps import interrupt, progress, search, storage
from sweeps.errors import UserError
from sweeps.plan import PointPlan, placement, plan
from sweeps.spec import SweepSpec, validate
from sweeps.sweep_run import keep_alive, open_sweep, summarise
from trainables.points import TRIAL_KEY, unpack
from tracking.errors import UnknownSweep
from tracking.layout import KIND_SWEEP, trial_name, ui_lines
from tracking.query import open_reader
from tracking.runs import connect, creates_store, environment, experiment_id, quick_requests
from tracking.runs import quiet_logger
from tracking.runs import search_runs, settle_trial_runs, sweep_run
from tracking.runs import trial_runs

STATE_FILE = "sweep.yaml"  # the spec and tracking store, saved beside Tune's state for resume
TUNER_FILE = "tuner.pkl"  # what Tune restores from
LOOPBACK = "127.0.0.1"  # the embedded Ray's dashboard, for this machine only
# Train's watch for nodes being drained (spot preemption), one more actor process per worker
# group; no node of the embedded Ray is ever drained, and creating it printed a C++ ERROR line
# ("PreemptionWatcher ... max_restarts > 0") on the console of every worker-group sweep.
PREEMPTION_WATCHER = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"


@dataclass(frozen=True)
class Target:
    """Where a sweep's state lives: Tune/Train storage and the MLflow tracking store, as given
    (what messages show) and normalised once, here: trials run in other working folders, so
    they get a local storage folder and a sqlite store's path absolute."""

    storage: str
    tracking_uri: str
    storage_path: str = field(init=False)  # for Tune and Train: absolute, or a URI
    store_uri: str = field(init=False)  # for the trials and the saved state: absolute sqlite

    def __post_init__(self) -> None:
        local = "://" not in self.storage
        object.__setattr__(self, "storage_path", str(Path(self.storage).resolve()) if local
                           else self.storage)
        object.__setattr__(self, "store_uri", absolute_uri(self.tracking_uri))

    def sweep_dir(self, name: str) -> str:
        return f"{self.storage.rstrip('/')}/{name}"


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


_started_without_dashboard = False  # this process started the embedded Ray without it


def start_ray(spec: SweepSpec) -> None:
    """Join the Ray cluster this runs in (a job, or $RAY_ADDRESS), else start an embedded one
    sized to this machine, with room for at least one trial whatever it asks for.

    The embedded Ray's dashboard starts only where trials need it: Train's worker groups
    query its state API, local-mode trials do not, and it delays a CPU sweep's first run
    (BENCHMARKS.md). To watch a local sweep in Ray's dashboard, start Ray
    yourself (`ray start --head`) and run with RAY_ADDRESS=auto.

    Its dashboard listens on a port chosen here, which its processes get as
    RAY_API_SERVER_ADDRESS: Train's controller asks the state API without an address, and with
    a second Ray on the machine (another sweep, a notebook's) Ray cannot tell which to ask
    ("Found multiple active Ray instances", and its placement-group cleaner dies).

    Nor does it start idle workers ahead of time (Ray's default: one per CPU as the driver
    connects): Tune's trial actors carry their own runtime environment (its env vars), so
    Ray never hands them such a worker and starts theirs when asked; idle ones would only take
    CPU from the start-up (BENCHMARKS.md).
    Train's preemption watcher is off in it (`PREEMPTION_WATCHER`) unless you set it."""
    import ray

    global _started_without_dashboard
    dashboard = not placement(spec).local
    if ray.is_initialized():
        if not (dashboard and _started_without_dashboard):
            return
        ray.shutdown()  # ours, between sweeps: started again with the dashboard this one needs
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
        return
    # A new local Ray turns token authentication on and says so at WARNING ("Set
    # RAY_AUTH_MODE=disabled to opt out"); on the embedded Ray of one process that notice is
    # only noise. Its logger says nothing else while a local Ray starts.
    port = free_port() if dashboard else None
    settings = {"RAY_API_SERVER_ADDRESS": f"http://{LOOPBACK}:{port}"} if port else {}
    if PREEMPTION_WATCHER not in os.environ:  # yours, if set
        settings[PREEMPTION_WATCHER] = "0"
    with quiet_logger("ray._private.authentication.authentication_token_setup"), \
            environment(settings):  # inherited by Ray's processes as they start
        ray.init(num_cpus=embedded_cpus(spec), logging_level="WARNING",
                 include_dashboard=dashboard, dashboard_host=LOOPBACK, dashboard_port=port,
                 logging_config=ray.LoggingConfig(log_level="WARNING"),
                 _system_config={"prestart_worker_first_driver": False})
    _started_without_dashboard = not dashboard


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


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


def run(spec: SweepSpec, target: Target, restart: bool = False) -> list[str]:
    """Run a sweep to the end; the keys of the grid points that did not finish (their trial
    failed, or the sweep was interrupted)."""
    check_local_resources(spec)
    new_store = creates_store(target.tracking_uri)
    client = None if new_store else connect(target.tracking_uri)
    existing = client and experiment_id(client, spec.name)
    if not restart and (storage.exists(target.sweep_dir(spec.name)) or
                        (existing and (trial_runs(client, existing) or
                                       sweep_run(client, existing)))):
        raise UserError(
            f"sweep {spec.name!r} already has state (in {target.sweep_dir(spec.name)} or "
            f"MLflow experiment {spec.name!r}): finish it with `sweeps resume {spec.name}`, "
            "start it over with `sweeps run SPEC --restart`, or pick another --name")
    if restart:
        discard(client, target, spec.name)
    if new_store:  # all is checked (it holds nothing): MLflow makes it while Ray starts
        with ThreadPoolExecutor(max_workers=1) as pool:
            made = pool.submit(connect, target.tracking_uri)
            start_ray(spec)
            client = made.result()
    # Saved first: a driver killed at any later point leaves a sweep `resume` can finish.
    storage.write_text(f"{target.sweep_dir(spec.name)}/{STATE_FILE}", yaml.safe_dump(
        {"spec": spec.model_dump(mode="json"), "tracking_uri": target.store_uri},
        sort_keys=False))
    return launch(spec, target, client)


def resume(name: str, target: Target) -> list[str]:
    """Finish an interrupted sweep: Tune restores its trials (finished ones stay finished,
    the others continue from their checkpoints, errored ones are retried) and each grid point
    keeps its MLflow run."""
    spec = saved_spec(target, name)
    check_local_resources(spec)
    problem = tune_state_problem(target.sweep_dir(name))
    if problem:
        raise UserError(problem)
    return launch(spec, target, connect(target.tracking_uri))


def saved_spec(target: Target, name: str) -> SweepSpec:
    """The spec a sweep was started with, checked against this resume's tracking store (a
    different store would get a second set of runs)."""
    path = f"{target.sweep_dir(name)}/{STATE_FILE}"
    if not storage.exists(path):
        raise UnknownSweep(f"no sweep named {name!r} in {target.storage} (no {path}): check "
                           "the name and --storage, or start it with `sweeps run SPEC`")
    try:
        state = yaml.safe_load(storage.read_bytes(path))
        spec = validate(state["spec"], source=path)
        tracked_at = state["tracking_uri"]
    except Exception as err:  # a damaged or hand-edited file: say which and what to do
        raise UserError(f"{path} is unreadable ({type(err).__name__}: {err}); restore it, or "
                        "start the sweep over with `sweeps run SPEC --restart`")
    if target.store_uri != tracked_at:
        raise UserError(f"sweep {name!r} is tracked at {tracked_at}, not "
                        f"{target.store_uri}: resume with --tracking-uri "
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
    """--restart: forget the old Tune state, the old sweep and grid-point runs and their
    trained models (MLflow keeps them deleted). Fit and report runs stay, as the registered
    fits point at them. No client: a store not made yet, which holds none."""
    from tracking.registry import delete_trained_models

    storage.remove_tree(target.sweep_dir(name))
    experiment = client and experiment_id(client, name)
    if experiment:
        delete_trained_models(client, experiment)
        for run_ in trial_runs(client, experiment) + search_runs(client, experiment, KIND_SWEEP):
            client.delete_run(run_.info.run_id)


def launch(spec: SweepSpec, target: Target, client) -> list[str]:
    """Ray's driver shape: plan, build the tuner, fit while the progress view watches, close.
    The keys of the grid points that did not finish."""
    spec.runs_as.prepare(spec.section)  # what trials only read (the embedded corpus)
    start_ray(spec)
    planned = plan(spec)
    experiment, parent = open_sweep(client, spec, planned)
    show = progress.console()
    for line in ui_lines(target.tracking_uri, spec.name, experiment):  # whole, to copy
        show.print(line, markup=False, highlight=False, soft_wrap=True)
    sweep = trial_plan(spec, target, planned, experiment, parent)
    tuner = build_tuner(spec, target, sweep, planned)
    errored, finished, stop = fit_watching(tuner, spec, target, client, experiment, parent,
                                           show)
    finished |= search.inferred(spec, target.tracking_uri)  # a search's, never trained
    unfinished = [p.point.key for p in planned if p.point.key not in finished]
    # Not finished: failed, or (Ctrl-C: Tune stops, saves its state and returns) not run yet.
    client.set_terminated(parent, "FINISHED" if not unfinished else
                          "FAILED" if errored else "KILLED")
    try:  # the parent run's figure and headline: a sweep's result stands without them
        summarise(target.tracking_uri, spec.name)
    except Exception as err:  # the store's errors vary by backend
        show.print(f"MLflow: the sweep's summary was not recorded ({err})", markup=False)
    stop.raise_if_requested()  # Ctrl-C: the caller says how to finish (exit 130)
    return unfinished


def trial_plan(spec: SweepSpec, target: Target, planned: list[PointPlan], experiment: str,
               parent: str):
    """What every trial is handed: the plan's points as they are, and where to record."""
    from trainables.trial_plan import SweepPlan

    return SweepPlan(
        trainable=spec.trainable, placement=placement(spec), tracking_uri=target.store_uri,
        train_storage=f"{target.storage_path}/{spec.name}/train",
        max_failures=spec.failure.max_failures, experiment_id=experiment, parent_run_id=parent,
        run_tags={"sweep": spec.name, "trainable": spec.trainable},
        points={p.point.key: p for p in planned})


def build_tuner(spec: SweepSpec, target: Target, sweep, planned: list[PointPlan]):
    """Tune over the trials' axes: restored from the sweep's storage where Tune saved state,
    fresh otherwise."""
    from ray import tune

    from trainables.trial_plan import tune_trial

    trainable = tune.with_resources(tune.with_parameters(tune_trial, plan=sweep),
                                    sweep.placement.trial_resources())
    space, searching = search.tune_settings(spec, planned, sweep, max_concurrent(spec))
    path = f"{target.storage_path}/{spec.name}"
    if tune.Tuner.can_restore(path):
        try:
            return tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                      resume_errored=True, param_space=space)
        except Exception as err:  # checked before Ray started; this is the rare rest
            raise UserError(f"Ray Tune cannot restore {path}: {err}")
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return tune.Tuner(
        trainable,
        param_space=space,
        # reuse_actors: a trial slot's process (torch, Ray Train and MLflow imported)
        # runs the next trial too, instead of a fresh process importing them again.
        tune_config=tune.TuneConfig(reuse_actors=True, **searching,  # grid, or a Searcher
                                    trial_name_creator=tune_trial_name,
                                    trial_dirname_creator=tune_trial_dirname),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=target.storage_path,
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            # Tune's own files (result.json, progress.csv) but not TensorBoard's: the
            # results are in MLflow.
            callbacks=[JsonLoggerCallback(), CSVLoggerCallback()],
            verbose=0,
        ),
    )


def fit_watching(tuner, spec: SweepSpec, target: Target, client, experiment: str, parent: str,
                 show) -> tuple[set[str], set[str], interrupt.Stop]:
    """`tuner.fit()` while the live view and the parent run's heartbeat run beside it; the
    keys of the grid points whose trial errored and of those that finished, and the Ctrl-C
    handler's state. The errored ones' runs are FAILED (interrupted ones KILLED) before the
    view's last look, so its final counts show them."""
    watcher = progress.Watcher(lambda: open_reader(target.tracking_uri), spec.name, show,
                               on_counts=lambda snap: record_counts(client, parent, snap))
    threads = [threading.Thread(target=watcher.run, name="sweep-progress", daemon=True),
               threading.Thread(target=keep_alive, args=(client, parent, watcher.stop),
                                name="sweep-heartbeat", daemon=True)]
    for thread in threads:
        thread.start()
    try:
        with quiet_tune(), interrupt.catching(
                spec.name, watcher.say, lambda: interrupt.line(spec.name, watcher.last)) as stop:
            try:
                results = tuner.fit()
            except KeyboardInterrupt:  # a second Ctrl-C: no wait for Tune, but no run left
                interrupt.mark_interrupted(client, trial_runs(client, experiment), set())
                client.set_terminated(parent, "KILLED")
                raise
        errored = {p.key for r in results if r.error is not None
                   for p in unpack(r.config[TRIAL_KEY])}
        finished = settle_trial_runs(client, experiment, errored)
        if stop.requested.is_set():
            interrupt.mark_interrupted(client, trial_runs(client, experiment), errored)
    finally:
        watcher.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    if watcher.last is not None:  # its last look came after the trials ended
        log_counts(client, parent, watcher.last)
    return errored, finished, stop


def record_counts(client, parent: str, snap: progress.Snapshot) -> None:
    """The parent run's `points/...` metrics while the sweep runs: best effort, as they are
    computed again at the next change (and for good at the end, `log_counts`)."""
    try:
        with quick_requests():
            log_counts(client, parent, snap)
    except Exception:  # the store is away: the next change records the counts again
        pass


def log_counts(client, parent: str, snap: progress.Snapshot) -> None:
    """Finished, running and failed grid points (and a search's inferred ones), at step =
    seconds since the sweep first started: its progress as a chart."""
    from mlflow.entities import Metric

    finished, running, failed = snap.counts
    now = int(time.time() * 1000)
    step = int((now - client.get_run(parent).info.start_time) / 1000)
    client.log_batch(parent, metrics=[
        Metric(f"points/{name}", value, now, step) for name, value in
        (("finished", finished), ("running", running), ("failed", failed),
         ("inferred", snap.inferred), ("total", snap.total))])


def quiet_tune():
    """Tune's console output off while it runs: its legacy engine at verbosity 0 prints
    nothing (the default one prints its configuration table and a TensorBoard hint even
    then), no TensorBoard logger is added to the ones passed in, and no warning that its
    state snapshots came close together (`num_to_keep` forces one each time a trial has
    checkpointed twice: on a trial's last checkpoints, or with `checkpoint_every_s` small,
    that is often, and the warning, about a setting that is ours, would break the live view)."""
    return environment({"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
                        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"})


def tune_trial_name(trial) -> str:
    """`w24-complex`: the grid point(s) a trial trains, in Tune's logs and errors."""
    return trial_name(trial.config[TRIAL_KEY]).replace(" ", "-")


def tune_trial_dirname(trial) -> str:
    return f"{tune_trial_name(trial).replace('/', 'of')}_{trial.trial_id}"


def absolute_uri(uri: str) -> str:
    """Trials run in other working directories: make a relative sqlite path absolute."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri
