"""The synthetic student's per-worker loop (CONTRACTS 5): a pack of grid points per trial.

Plain PyTorch run by Ray Train: each worker trains its share of the trial's grid points (all
of them in local mode) with `student.Pack`, logs each point to its own run through a tracker,
and reports a checkpoint every `checkpoint_every_s`.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import torch

from trainables.session import ComputeClock, Worker
from trainables.synthetic.student import Pack
from trainables.synthetic.trainable import (SYNTHETIC, SyntheticSection, member_for, setup_for,
                                              theory_metrics)
from tracking.layout import FEATURE_STEPS


def train_fn_per_worker(config: dict) -> None:
    worker = Worker.start(config)
    mine = worker.trial.points[worker.rank::worker.world_size]  # this worker's share
    if not mine:  # more workers than the trial has grid points: it only joins their reports
        worker.report_until_all_finished({"points": 0})
        return
    sections = [SyntheticSection.model_validate(run.section) for run in mine]
    first = sections[0]
    steps = [s.steps for s in sections]

    # 1. The pack of this worker's grid points, restored from the latest checkpoint if there
    #    is one; the tracker takes back the metrics MLflow had not stored by then.
    pack = Pack(setup_for(first, mine[0].point.width),
                [member_for(s, run.point) for s, run in zip(sections, mine)],
                device=worker.device, dtype=getattr(torch, first.dtype))
    with worker.restored() as checkpoint:
        if checkpoint is not None:
            pack.load_state_dicts([torch.load(checkpoint / f"member-{run.run_id}.pt")
                                   for run in mine])
        tracker = worker.tracker([run.run_id for run in mine], checkpoint)
    resumed_from = pack.step

    def save(folder: Path) -> None:
        for run, state in zip(mine, pack.state_dicts()):
            torch.save(state, folder / f"member-{run.run_id}.pt")

    # 2. Train until every point has converged or reached its cap. Every `checkpoint_every_s`
    #    (and at the end) a checkpoint is reported with whatever the tracker could not store,
    #    so no metric is lost with or without the tracking server. Reports are that rare
    #    because a Train worker group takes one per controller poll (~2 s). NaN values (a
    #    measure not taken, or undefined at this step) are not logged.
    clock, saved_at = ComputeClock(), time.monotonic()
    everyone = worker.world_size == 1  # whether every rank has finished (at the last report)
    for metrics, due in clock.over(pack.train(steps, [s.log_every for s in sections])):
        for j, run in enumerate(mine):
            if due[j]:
                values = {name: x for name, v in metrics.items()
                          if not math.isnan(x := v[j].item())}
                if pack.step == 0:
                    values.update(theory_metrics(sections[j], run.point))
                if not pack.running(j, steps[j]):  # its last point: it stopped here
                    values.update(pack.summary(j))
                tracker.log(run.run_id, pack.step, values)
        finished = not any(pack.running(j, n) for j, n in enumerate(steps))
        if finished or time.monotonic() - saved_at >= first.checkpoint_every_s:
            worker.report(_summary(pack, metrics, clock.seconds, resumed_from), save,
                          tracker)
            everyone = worker.all_finished(finished)
            saved_at = time.monotonic()

    # 3. Each grid point's trained student as its run's model and its features' learning
    #    steps as one table, then FINISHED once every metric is stored (all wait for the
    #    tracking server). A restart after the last checkpoint lands here at once: nothing
    #    is trained twice.
    for j, (run, section) in enumerate(zip(mine, sections)):
        tracker.log_table(run.run_id, FEATURE_STEPS, pack.feature_table(j))
        with tempfile.TemporaryDirectory() as folder:
            state = (pack.U[j].cpu().numpy(), pack.D[j].cpu().numpy())
            tracker.log_model(run.run_id, SYNTHETIC.trained_model(section, state, Path(folder)))
    tracker.finish()

    # 4. Ranks train different points and report on their own clocks, but Train's report is a
    #    barrier across them: this rank reports its final state (all of it stored in MLflow)
    #    for as long as another still trains.
    if not everyone:
        worker.report_until_all_finished(
            _summary(pack, pack.metrics(), clock.seconds, resumed_from), save)


def _summary(pack: Pack, metrics: dict[str, torch.Tensor], compute_s: float,
             resumed_from: int) -> dict:
    """What Tune's progress table shows for a pack (this worker's points)."""
    return {
        "step": pack.step,
        "loss": metrics["loss"].mean().item(),
        "rare_loss": metrics["rare/loss"].mean().item(),
        "learned": int(metrics["rare/learned"].sum().item()),
        "converged": sum(c.converged_at is not None for c in pack.checks),
        "points": len(metrics["loss"]),
        "resumed_from": resumed_from,  # the checkpoint's step this attempt started from
        "compute_s": compute_s,  # time inside the numerical core, for bench/
    }
