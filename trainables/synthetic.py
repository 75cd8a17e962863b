"""The synthetic-student trainable (CONTRACTS 5): a pack of grid points per Tune trial.

`train_fn_per_worker` is the plain-PyTorch loop run by Ray Train; each worker trains its share
of the trial's grid points (all of them in local mode) with `student.Pack`, logs each point to
its own MLflow run, and reports a checkpoint every `checkpoint_every_s`. `trainable` is what Tune
runs per trial.
"""

from __future__ import annotations

import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from trainables import session, theory
from trainables.points import Point, unpack
from trainables.student import Member, Pack, Setup
from tracking.logger import RunLogger
from tracking.registry import log_student

REPORTS_PER_RUN = 100  # default log_every: about this many metric points per run


def setup_for(section: dict, width: int) -> Setup:
    schedule = section["schedule"]
    return Setup(
        tasks=section["tasks"],
        features_per_task=section["features_per_task"],
        width=width,
        zipf=section["zipf"],
        background_decay=section["background_decay"],
        mode=section["mode"],
        block=schedule["block"] if isinstance(schedule, dict) else 0,
        batch_size=section["batch_size"],
        lr=section["lr"],
        learned_threshold=section["learned_threshold"],
    )


def member_for(section: dict, point: Point) -> Member:
    return Member(point.frequency, section["complexity"][point.task], point.seed)


def resolve(section: dict, point: Point) -> dict:
    """The section as this grid point runs it: derived `steps`, `lr`, `log_every` filled in."""
    setup, member = setup_for(section, point.width), member_for(section, point)
    lr = setup.member_lr(member)
    steps = section["steps"] or theory.steps_to_converge(
        setup.spectrum(member), point.width, lr, section["learned_threshold"])
    log_every = section["log_every"] or max(1, steps // REPORTS_PER_RUN)
    return {**section, "steps": steps, "lr": lr, "log_every": log_every}


def theory_metrics(section: dict, point: Point) -> dict[str, float]:
    """The width's optimum beside the measurement, logged once per run."""
    spec = setup_for(section, point.width).spectrum(member_for(section, point))
    best = theory.optimum(spec, point.width)
    return {
        "theory/loss": best.loss,
        "theory/rare/loss": best.rare_loss,
        "theory/rare/learned": float(best.rare_loss <= section["learned_threshold"]),
        "theory/critical_width": theory.critical_width(spec, section["learned_threshold"]),
    }


def train_fn_per_worker(config: dict) -> None:
    section, points = config["synthetic"], unpack(config["trial"])
    rank, world_size = session.world(config)
    mine = list(range(rank, len(points), world_size))  # this worker's share of the pack
    session.use_cpus(config["cpu"])
    steps = [resolve(section, points[i])["steps"] for i in mine]
    log_every = section["log_every"] or max(1, max(steps) // REPORTS_PER_RUN)
    run_of = [config["run_ids"][points[i].key] for i in mine]  # created by the sweep driver

    # 1. Build the pack; restore it, and the metrics MLflow had not stored, from the latest
    #    checkpoint if there is one.
    pack = Pack(setup_for(section, points[0].width), [member_for(section, points[i]) for i in mine],
                device=session.device(config), dtype=getattr(torch, section["dtype"]))
    unstored = {}
    checkpoint = session.latest_checkpoint(config)
    if checkpoint is not None:
        saved = [torch.load(checkpoint / f"member-{i}.pt") for i in mine]
        pack.load_state_dicts([s["state"] for s in saved])
        unstored = {run: s["unstored"] for run, s in zip(run_of, saved)}
    resumed_from = pack.step
    logger = RunLogger.start(config["tracking_uri"], run_of, unstored)

    # 2. Train. Every `checkpoint_every_s` (and at the end) the logger tries to store what it
    #    holds and a checkpoint is reported with whatever it could not, so a checkpoint never
    #    loses a metric, with or without the tracking server. Reports are that rare because a
    #    Train worker group takes one per controller poll (~2 s).
    clock, saved_at = session.ComputeClock(), time.monotonic()
    for metrics, due in clock.over(pack.train(steps, log_every)):
        for j, i in enumerate(mine):
            if due[j]:
                theory_now = theory_metrics(section, points[i]) if pack.step == 0 else {}
                values = {name: v[j].item() for name, v in metrics.items()}
                logger.log(run_of[j], pack.step, {**values, **theory_now})
        if pack.step < max(steps) and time.monotonic() - saved_at < section["checkpoint_every_s"]:
            continue
        logger.try_flush()
        unstored = logger.unstored()
        with tempfile.TemporaryDirectory() as tmp:
            for i, run, state in zip(mine, run_of, pack.state_dicts()):
                torch.save({"state": state, "unstored": unstored.get(run, [])},
                           Path(tmp) / f"member-{i}.pt")
            summary = _summary(pack.step, metrics, clock.seconds, resumed_from)
            session.report(config, summary, tmp)
        saved_at = time.monotonic()
    # 3. Each grid point's trained student as its run's model, then FINISHED, only once every
    #    metric is stored (both wait for the tracking server). A restart after the last
    #    checkpoint lands here at once: nothing is trained twice.
    for j, run_id in enumerate(run_of):
        logger.keep_trying(partial(log_student, logger.client, run_id, pack.U[j].cpu().numpy(),
                                   pack.D[j].cpu().numpy(), section["features_per_task"]))
    logger.finish()


def _summary(step: int, metrics: dict[str, torch.Tensor], compute_s: float,
             resumed_from: int) -> dict:
    """What Tune's progress table shows for a pack (this worker's points)."""
    return {
        "step": step,
        "loss": metrics["loss"].mean().item(),
        "rare_loss": metrics["rare/loss"].mean().item(),
        "learned": int(metrics["rare/learned"].sum().item()),
        "points": len(metrics["loss"]),
        "resumed_from": resumed_from,  # the checkpoint's step this attempt started from
        "compute_s": compute_s,  # time inside the numerical core, for bench/
    }


def trainable(trial_config: dict, sweep: dict) -> None:
    """Tune function trainable: `trial_config` holds the grid axes, `sweep` the rest."""
    session.sweep_trial(train_fn_per_worker, trial_config, sweep)
