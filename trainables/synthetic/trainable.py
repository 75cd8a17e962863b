"""The synthetic student as the service sees it (CONTRACTS 5): its spec section, grid rules,
how a grid point runs, and what "learned" means. Light: numpy and pydantic only; the loop
(`trainables.synthetic.loop`) is imported inside trials alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from trainables.contract import FieldError, Grid, Resources, Scheduled, Strict, Trainable
from trainables.points import Point
from trainables.synthetic import stopping, theory
from trainables.synthetic.problem import Member, Setup
from tracking.curves import Measure
from tracking.logged_model import LoggedModel

REPORTS_PER_RUN = 100  # default log_every: about this many metric points per expected run
CAP_FACTOR = 3  # default step cap: this many times the theory's expected steps
PackAxis = Literal["frequency", "task", "seed"]


class Complexity(Strict):
    simple: float = Field(2.0, ge=0, description="spectral decay of a 'simple' rare task, >= 0")
    complex: float = Field(0.5, ge=0, description="spectral decay of a 'complex' rare task, >= 0")


class SyntheticSection(Scheduled):
    """CONTRACTS 5. `steps`, `lr`, `log_every` left out are derived from the spectrum."""

    tasks: int = Field(32, ge=2, description="number of tasks K (the last is the rare one), >= 2")
    features_per_task: int = Field(16, ge=1, description="features per task r, >= 1")
    zipf: float = Field(1.0, ge=0, description="Zipf exponent of background frequencies, >= 0")
    background_decay: float = Field(2.0, ge=0,
                                    description="spectral decay of background tasks, >= 0")
    complexity: Complexity = Complexity()
    mode: Literal["population", "sampled"] = Field(
        "population", description="population: exact expected gradients (infinite data); "
                                  "sampled: online SGD on batch_size drawn samples a step")
    steps: int | None = Field(
        None, ge=1, description="step cap, >= 1: a run stops earlier once converged (default: "
                                "derived, 3 x the theory's expected steps)")
    tolerance: float = Field(
        0.01, ge=0, lt=1,
        description="0 <= tolerance < 1: a population run has converged within this of its "
                    "width's optimum; a sampled one when the second half of it so far improved "
                    "the trained model's loss by at most this fraction, moved the rare task's "
                    "by at most this much and kept rare/learned, past the theory's expected "
                    "steps; 0: no early stop, train `steps`")
    batch_size: int = Field(256, ge=1, description="samples per step in sampled mode, >= 1")
    lr: float | None = Field(None, gt=0, description="step size > 0 (default: from spectrum, "
                                                     "the same for every width)")
    log_every: int | None = Field(None, ge=1, description="steps between metric points, >= 1")
    checkpoint_every_s: float = Field(
        30.0, ge=0,
        description="seconds between checkpoints (each a report to Tune), >= 0 (0: every log "
                    "point)")
    learned_threshold: float = Field(0.5, gt=0, lt=1, description="0 < threshold < 1")
    pack: list[PackAxis] = Field(
        ["frequency", "seed"],
        description="grid axes trained together in one trial, a subset of frequency, task, seed",
    )
    pack_limit: float | None = Field(
        None, gt=0,
        description="> 0: a pack whose estimated compute is over this many times the mean "
                    "pack's is split into trials of part of its packed values, so no trial "
                    "runs alone long after the rest (default null: never split; the estimate "
                    "holds for fixed budgets, `tolerance: 0`)")
    dtype: Literal["float32", "float64"] = Field(
        "float32", description="the student's floating-point precision")

    @property
    def dim(self) -> int:
        return self.tasks * self.features_per_task


def setup_for(section: SyntheticSection, width: int) -> Setup:
    """What the section's grid points of one width share in a pack."""
    return Setup(tasks=section.tasks, features_per_task=section.features_per_task, width=width,
                 zipf=section.zipf, background_decay=section.background_decay,
                 mode=section.mode, block=section.block, batch_size=section.batch_size,
                 learned_threshold=section.learned_threshold, tolerance=section.tolerance)


def member_for(section: SyntheticSection, point: Point) -> Member:
    """The point as a pack member; its lr is the section's (None before `resolve`)."""
    return Member(point.frequency, getattr(section.complexity, point.task), point.seed,
                  section.lr)


def spectrum(section: SyntheticSection, point: Point) -> theory.Spectrum:
    """The task frequencies and spectra of a grid point's problem."""
    return setup_for(section, point.width).spectrum(member_for(section, point))


def theory_metrics(section: SyntheticSection, point: Point) -> dict[str, float]:
    """The width's optimum beside the measurement, logged once per run."""
    spec = spectrum(section, point)
    best = theory.optimum(spec, point.width)
    return {
        "theory/loss": best.loss,
        "theory/rare/loss": best.rare_loss,
        "theory/rare/learned": float(best.rare_loss <= section.learned_threshold),
        "theory/critical_width": theory.critical_width(spec, section.learned_threshold),
        "theory/critical_width_first": theory.critical_width_first(spec),
    }


def expected_steps(section: SyntheticSection, point: Point, lr: float) -> int:
    """The theory's steps for the point to converge (`theory.steps_to_converge`)."""
    return theory.steps_to_converge(spectrum(section, point), point.width, lr,
                                    section.learned_threshold, rtol=0.01)


class Synthetic(Trainable):
    name = "synthetic"
    tasks = ("simple", "complex")
    section = SyntheticSection
    worker = "trainables.synthetic.loop:train_fn_per_worker"
    columns = ("loss", "model_loss", "rare/loss", "rare/model_loss", "theory/rare/loss",
               "rare/alignment", "interference/frequent_norm", "converged", "rare/learned")

    def check_grid(self, grid: Grid, section: SyntheticSection, resources: Resources) -> None:
        super().check_grid(grid, section, resources)
        for i, width in enumerate(grid.width):
            if not isinstance(width, int) or isinstance(width, bool):
                raise FieldError(f"grid.width[{i}]", width,
                                 "synthetic widths are integers (the encoder width N)")
            if not 1 <= width <= section.dim:
                raise FieldError(
                    f"grid.width[{i}]", width,
                    f"must be 1 <= width <= d = tasks x features_per_task = {section.dim}: the "
                    "encoder has at most d orthonormal columns")
        n = section.block
        if n and max(grid.frequency) > n / (n + 1):
            raise FieldError("grid.frequency", max(grid.frequency),
                             f"with schedule {{block: {n}}} a frequency must be <= n/(n+1) = "
                             f"{n / (n + 1):.3g}, or blocks would overlap")
        if len(set(section.pack)) != len(section.pack):
            raise FieldError("synthetic.pack", section.pack, "each axis at most once")

    def pack(self, section: SyntheticSection) -> list[str]:
        return list(section.pack)

    def pack_limit(self, section: SyntheticSection) -> float | None:
        return section.pack_limit

    def cost(self, params: dict[str, str]) -> float:
        """Expected steps x a member-step's work: its matrix products are ~d N^2
        multiply-adds, and about 2 d^2 more stands for what does not grow with N (fitted to
        CPU step times). An estimate for balancing trials, not a prediction of seconds."""
        d, width = int(params["tasks"]) * int(params["features_per_task"]), int(params["width"])
        return self.horizon(params) * d * (width ** 2 + 2 * d)

    def predict(self, section: SyntheticSection, point: Point) -> bool:
        """The theory's verdict, `theory/rare/learned`: the width's optimum, where both modes'
        runs converge, holds the rare task's loss at or under the threshold."""
        return theory_metrics(section, point)["theory/rare/learned"] == 1.0

    def resolve(self, section: SyntheticSection, point: Point) -> SyntheticSection:
        """lr: `Setup.lr`, which does not depend on the width; steps: the cap, 3x
        the theory's expected steps (1x with `tolerance: 0`, a fixed budget); log_every:
        about 100 points over the expected steps."""
        lr = setup_for(section, point.width).lr(member_for(section, point))
        expected = expected_steps(section, point, lr)
        steps = section.steps or expected * (CAP_FACTOR if section.tolerance > 0 else 1)
        log_every = section.log_every or max(1, expected // REPORTS_PER_RUN)
        return section.model_copy(update={"steps": steps, "lr": lr, "log_every": log_every})

    def derived(self, section: SyntheticSection, point: Point) -> dict:
        return {"stopping.check_every": stopping.check_every(section.steps),
                "stopping.expected_steps": expected_steps(section, point, section.lr)}

    def horizon(self, params: dict[str, str]) -> int | None:
        """Stopping once converged, a run trains about the theory's expected steps, not its
        cap (3x those), so the progress view's time left counts against those."""
        if float(params.get("tolerance", 0)) > 0 and "stopping.expected_steps" in params:
            return min(int(params["stopping.expected_steps"]), int(params["steps"]))
        return super().horizon(params)

    def measure(self, params: dict[str, str]) -> Measure:
        return Measure(loss="rare/loss", score="rare/loss",
                       threshold=float(params["learned_threshold"]), lower_is_better=True)

    def describe(self, runs: list[tuple[Point, SyntheticSection]]) -> list[str]:
        first = runs[0][1]
        steps = [section.steps for _, section in runs]
        expected = [expected_steps(s, p, s.lr) for p, s in runs]
        lrs = [section.lr for _, section in runs]
        stop = (f"stops once converged (tolerance {first.tolerance:g}); expected "
                f"{min(expected)}..{max(expected)}" if first.tolerance > 0 else "fixed budget")
        lines = [f"steps     cap {min(steps)}..{max(steps)} per point ({first.mode}); {stop}",
                 f"lr        {min(lrs):.4g}..{max(lrs):.4g} (the same for every width)"]
        for task in dict.fromkeys(p.task for p, _ in runs):
            widths = {p.frequency: theory.critical_width(spectrum(s, p), s.learned_threshold)
                      for p, s in runs if p.task == task}
            lines.append(f"N* theory {task}: " + ", ".join(f"{n} at f={f:g}"
                                                            for f, n in widths.items()))
        return lines

    def trained_model(self, section: SyntheticSection, state, folder: Path) -> LoggedModel:
        """The student as a pyfunc, predict(x0..x{d-1}, task) = D_task U^T x; `state` is
        (encoder U, decoders D) as numpy arrays."""
        import pandas as pd

        from trainables.synthetic import student_model

        encoder, decoders = state
        r, dim = section.features_per_task, encoder.shape[0]
        np.savez(folder / "student.npz", encoder=encoder, decoders=decoders,
                 features_per_task=r)
        example = pd.DataFrame([[0.0] * dim], columns=[f"x{i}" for i in range(dim)])
        example["task"] = decoders.shape[0] // r - 1  # the rare task
        return LoggedModel(code=Path(student_model.__file__),
                           artifacts={student_model.STATE_ARTIFACT: folder / "student.npz"},
                           signature=student_model.signature(dim, r), example=example)


SYNTHETIC = Synthetic()
