"""A third trainable, from outside the project's packages, registered the way a user's package
registers one (an entry point in `scaling_sweeps.trainables`): its loss falls as 1/(1 + rate
step), rate = width x frequency unless set. Small enough to run end to end in a test."""

from __future__ import annotations

import os

from pydantic import Field

from trainables.contract import FieldError, Grid, Resources, Strict, Trainable
from trainables.points import Point
from tracking.curves import Measure


class CountingSection(Strict):
    steps: int = Field(3, ge=1, description="steps, >= 1")
    rate: float | None = Field(None, gt=0, description="loss decay rate (default: width x f)")
    flip: list[str] = Field([], description="grid-point keys whose final loss is reported as "
                                            "1 - loss: a planted non-monotone verdict")
    fail: list[str] = Field([], description="grid-point keys whose training raises while the "
                                            "file `fail_while` exists: a failure resume heals")
    fail_while: str | None = None


class Counting(Trainable):
    name = "counting"
    tasks = ("up", "down")
    section = CountingSection
    worker = "tests.plugin.counting:train_fn_per_worker"
    columns = ("loss",)

    def check_grid(self, grid: Grid, section: CountingSection, resources: Resources) -> None:
        super().check_grid(grid, section, resources)
        for i, width in enumerate(grid.width):
            if not isinstance(width, int):
                raise FieldError(f"grid.width[{i}]", width, "counting widths are integers")

    def resolve(self, section: CountingSection, point: Point) -> CountingSection:
        return section.model_copy(update={"rate": section.rate or point.width * point.frequency})

    def measure(self, params: dict[str, str]) -> Measure:
        return Measure(loss="loss", score="loss", threshold=0.5, lower_is_better=True)


COUNTING = Counting()


def train_fn_per_worker(config: dict) -> None:
    from trainables.session import Worker

    worker = Worker.start(config)
    runs = worker.trial.points
    with worker.restored() as checkpoint:
        tracker = worker.tracker([run.run_id for run in runs], checkpoint)
    for run in runs:
        section = CountingSection.model_validate(run.section)
        if run.point.key in section.fail and os.path.exists(section.fail_while or ""):
            raise RuntimeError(f"planted failure of {run.point.key}")
        for step in range(section.steps + 1):
            loss = 1.0 / (1.0 + section.rate * step)
            planted = step == section.steps and run.point.key in section.flip
            tracker.log(run.run_id, step, {"loss": 1.0 - loss if planted else loss})
    worker.report({"step": max(CountingSection.model_validate(r.section).steps for r in runs)},
                  save=lambda folder: None, tracker=tracker)
    tracker.finish()
