"""The synthetic student as the service sees it (CONTRACTS 5): its spec section, grid rules,
how a grid point runs, and what "learned" means. Light: numpy and pydantic only; the loop
(`trainables.synthetic.loop`) is imported inside trials alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from trainables.contract import FieldError, Scheduled, Strict, Trainable
from trainables.points import Point
from trainables.synthetic import theory
from tracking.curves import Measure
from tracking.tracker import LoggedModel

REPORTS_PER_RUN = 100  # default log_every: about this many metric points per run
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
    mode: Literal["population", "sampled"] = "population"
    steps: int | None = Field(None, ge=1, description="training steps, >= 1 (default: derived)")
    batch_size: int = Field(256, ge=1, description="samples per step in sampled mode, >= 1")
    lr: float | None = Field(None, gt=0, description="step size > 0 (default: from spectrum)")
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
    dtype: Literal["float32", "float64"] = "float32"

    @property
    def dim(self) -> int:
        return self.tasks * self.features_per_task


def spectrum(section: SyntheticSection, point: Point) -> theory.Spectrum:
    """The task frequencies and spectra of a grid point's problem."""
    return theory.Spectrum.build(section.tasks, section.features_per_task, section.zipf,
                                 section.background_decay,
                                 getattr(section.complexity, point.task), point.frequency)


def theory_metrics(section: SyntheticSection, point: Point) -> dict[str, float]:
    """The width's optimum beside the measurement, logged once per run."""
    spec = spectrum(section, point)
    best = theory.optimum(spec, point.width)
    return {
        "theory/loss": best.loss,
        "theory/rare/loss": best.rare_loss,
        "theory/rare/learned": float(best.rare_loss <= section.learned_threshold),
        "theory/critical_width": theory.critical_width(spec, section.learned_threshold),
    }


class Synthetic(Trainable):
    name = "synthetic"
    tasks = ("simple", "complex")
    section = SyntheticSection
    worker = "trainables.synthetic.loop:train_fn_per_worker"
    columns = ("loss", "rare/loss", "theory/rare/loss", "rare/alignment", "interference/cos",
               "rare/learned")

    def check_grid(self, grid, section: SyntheticSection, resources) -> None:
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

    def resolve(self, section: SyntheticSection, point: Point) -> SyntheticSection:
        spec = spectrum(section, point)
        lr = section.lr or theory.default_lr(spec, section.mode, section.batch_size,
                                             point.width)
        steps = section.steps or theory.steps_to_converge(spec, point.width, lr,
                                                          section.learned_threshold)
        log_every = section.log_every or max(1, steps // REPORTS_PER_RUN)
        return section.model_copy(update={"steps": steps, "lr": lr, "log_every": log_every})

    def measure(self, params: dict[str, str]) -> Measure:
        return Measure(loss="rare/loss", score="rare/loss",
                       threshold=float(params["learned_threshold"]), lower_is_better=True)

    def describe(self, runs: list[tuple[Point, SyntheticSection]]) -> list[str]:
        steps = [section.steps for _, section in runs]
        return [f"steps     {min(steps)}..{max(steps)} per point ({runs[0][1].mode})"]

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
