"""What a trainable is to the rest of the service: one contract, found by name, and the pure
pydantic types it is handed (a spec's `Grid` and `Resources`, a grid point's `PointPlan`).

The spec, the CLI, curves, fits and the registry ask a `Trainable` for everything that differs
between trainables (its section, its grid rules, how a grid point runs, what "learned" means,
the columns shown, its trained model) and never branch on its name. Trainables are found
through the `scaling_sweeps.trainables` entry-point group (`trainables.catalog`), the two
built-ins included, so a package of a user's adds one without forking.

Nothing here imports torch or Ray: the per-worker loop is named by `worker` ("module:function")
and imported only inside a trial, so planning and read-only commands stay fast.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainables.points import Point
from tracking.curves import Measure

if TYPE_CHECKING:
    from tracking.logged_model import LoggedModel

DRIVER_CPU = 0.01  # what a trial driving a worker group holds itself
CHECKPOINTS_KEPT = 2  # newest checkpoints Ray Train keeps of every trial


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Block(Strict):
    """`schedule: {block: n}`: rare instances arrive n at a time, at the same long-run
    frequency (`iid`: one at a time, spread evenly)."""

    block: int = Field(ge=1, description="rare instances arrive this many at a time, >= 1")


class Scheduled(Strict):
    """A section with a rare-task schedule: i.i.d. or in blocks of n."""

    schedule: Literal["iid"] | Block = "iid"

    @field_validator("schedule", mode="before")
    @classmethod
    def one_schedule_message(cls, value: Any) -> Any:
        n = value.get("block") if isinstance(value, dict) and set(value) == {"block"} else None
        if value == "iid" or (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
            return value
        raise ValueError(f"{value!r} is not a schedule: use iid or {{block: n}} with an "
                         "integer n >= 1 (rare instances arriving n at a time)")

    @property
    def block(self) -> int:
        return self.schedule.block if isinstance(self.schedule, Block) else 0


class Geomspace(Strict):
    """`{geomspace: {start, stop, num}}`: frequencies evenly spaced in log."""

    start: float = Field(gt=0, lt=1, description="first frequency, 0 < start < 1")
    stop: float = Field(gt=0, lt=1, description="last frequency, 0 < stop < 1")
    num: int = Field(ge=1, description="how many frequencies, >= 1")

    def values(self) -> list[float]:
        # Three significant digits: the grid key a user reads is then the exact frequency run.
        return [float(f"{v:.3g}") for v in np.geomspace(self.start, self.stop, self.num)]


class Grid(Strict):
    """The grid: every combination of its axes is one grid point and one MLflow run."""

    width: list[int | str] = Field(min_length=1, description="list of encoder widths (synthetic)")
    frequency: list[float] = Field(
        min_length=1, description="list of rare-task frequencies 0 < f < 1, or {geomspace: ...}"
    )
    task: list[str] = Field(min_length=1, description="list of rare-task types")
    seed: list[int] = Field(default=[0], min_length=1, description="list of integer seeds")

    @field_validator("frequency", mode="before")
    @classmethod
    def expand_geomspace(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) != {"geomspace"}:
                raise ValueError("must be a list or {geomspace: {start: S, stop: E, num: N}}")
            return Geomspace.model_validate(value["geomspace"]).values()
        return value

    @field_validator("frequency")
    @classmethod
    def check_frequency(cls, values: list[float]) -> list[float]:
        for f in values:
            if not (0.0 < f < 1.0) or not math.isfinite(f):
                raise ValueError(f"{f!r} is not a frequency: every value must be 0 < f < 1")
        return values

    @field_validator("width", "frequency", "task", "seed")
    @classmethod
    def no_duplicates(cls, values: list) -> list:
        seen = [v for i, v in enumerate(values) if v in values[:i]]
        if seen:
            raise ValueError(f"{seen[0]!r} appears twice: each grid point must be distinct")
        return values


class Resources(Strict):
    """What each trial (or each of its Ray Train workers) holds."""

    cpu: float = Field(1, gt=0, description="CPUs per trial (synthetic) or per worker, > 0")
    gpu: float = Field(0, ge=0, description="GPUs per trial (synthetic) or per worker, >= 0")
    workers: int = Field(1, ge=1, description="Ray Train workers per trial, >= 1")
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="trials running at once, >= 1 (default: as many as fit)"
    )


class FieldError(ValueError):
    """A rule broken at a known place in the spec (`grid.width[2]`), raised by a trainable's
    grid check; the spec's message names the field."""

    def __init__(self, field: str, value: Any, rule: str):
        super().__init__(f"{value!r}: {rule}")
        self.field = field


@dataclass(frozen=True)
class Placement:
    """Resources of one trial: `workers` Train workers with `cpu` and `gpu` each."""

    workers: int = 1
    cpu: float = 1.0
    gpu: float = 0.0

    @property
    def local(self) -> bool:
        """One CPU worker runs in the trial's own process (Ray Train's local mode)."""
        return self.workers == 1 and self.gpu == 0

    def trial_resources(self) -> dict:
        """What the Tune trial itself holds: everything in local mode; otherwise a sliver of a
        CPU for the trial's driver (Tune refuses an empty request), as the Train controller
        places the worker group itself."""
        return {"cpu": self.cpu, "gpu": self.gpu} if self.local else {"cpu": DRIVER_CPU}

    def cpus_per_trial(self) -> float:
        return self.cpu if self.local else self.cpu * self.workers + DRIVER_CPU


class PointPlan(BaseModel):
    """A grid point as the sweep's plan computed it, once, on the driver: its trainable
    section with every derived value filled in (JSON values) and its run's params (what
    MLflow records). Handed unchanged to the worker that trains it, so a run records what ran."""

    model_config = ConfigDict(frozen=True)

    point: Point
    section: dict
    params: dict[str, str]


class PointRun(BaseModel):
    """One grid point as it runs: its plan and its MLflow run."""

    model_config = ConfigDict(frozen=True)

    plan: PointPlan
    run_id: str

    @property
    def point(self) -> Point:
        return self.plan.point

    @property
    def section(self) -> dict:
        return self.plan.section


class TrialConfig(BaseModel):
    """What every worker of one trial gets: its grid points' plans and runs."""

    model_config = ConfigDict(frozen=True)

    trainable: str
    points: list[PointRun]
    tracking_uri: str
    placement: Placement


class Trainable(ABC):
    """The contract. Subclasses set the class attributes and implement `resolve` and
    `measure`; the rest has defaults that suit a trainable of one grid point per trial."""

    name: ClassVar[str]  # the spec's `trainable:` value and its section's key
    tasks: ClassVar[tuple[str, ...]]  # what `grid.task` may hold
    section: ClassVar[type[Strict]]  # the pydantic model of its spec section
    worker: ClassVar[str]  # "module:function": the per-worker loop Ray Train runs
    columns: ClassVar[tuple[str, ...]]  # final metrics the CLI's tables show

    def check_grid(self, grid: Grid, section: Strict, resources: Resources) -> None:
        """Refuse grid values this trainable cannot run (raise `FieldError`)."""
        for i, task in enumerate(grid.task):
            if task not in self.tasks:
                raise FieldError(f"grid.task[{i}]", task,
                                 f"{self.name} tasks are {' | '.join(self.tasks)}")

    def pack(self, section: Strict) -> list[str]:
        """Grid axes trained together in one trial; none by default."""
        return []

    def pack_limit(self, section: Strict) -> float | None:
        """How far a trial's estimated compute may exceed the mean pack's before its pack is
        split (`sweeps.packing`); None: never split."""
        return None

    def cost(self, params: dict[str, str]) -> float:
        """A grid point's compute relative to the sweep's others, from its params: what
        splitting packs and ordering trials go by. The steps it is expected to train by
        default."""
        return float(self.horizon(params) or 1)

    def predict(self, section: Strict, point: Point) -> bool | None:
        """The trainable's own prediction of a resolved point's verdict ("learned") before it
        trains, from a theory of its problem; None where it has none (the default). A
        critical-width search probes the predicted boundary first; it never records a
        prediction as a verdict."""
        return None

    def for_grid(self, section: Strict, grid) -> Strict:
        """The section with the defaults that every point of `grid` shares filled in (values
        that depend on the whole grid), before `resolve` fills each point's own. Unchanged by
        default."""
        return section

    @abstractmethod
    def resolve(self, section: Strict, point: Point) -> Strict:
        """The section as `point` runs it: every derived value (None in the spec) filled."""

    @abstractmethod
    def measure(self, params: dict[str, str]) -> Measure:
        """Which final metrics make the scaling curves and decide "learned", given a run's
        params (a threshold may be a setting)."""

    def horizon(self, params: dict[str, str]) -> int | None:
        """The steps a run is expected to train, from its params: what the live view counts
        its share done (and the time left) against. The step budget by default."""
        steps = str(params.get("steps", ""))
        return int(steps) if steps.isdigit() else None

    def derived(self, section: Strict, point: Point) -> dict[str, Any]:
        """Facts that follow from a resolved grid point (a model's shape and size, how many
        instances a batch gets): recorded as run params beside the section, dotted keys."""
        return {}

    def describe(self, runs: list[tuple[Point, Strict]]) -> list[str]:
        """Lines `sweeps validate` prints about the resolved grid points."""
        return []

    def prepare(self, section: Strict) -> None:
        """Make, on the sweep's driver before any trial starts, what its trials only read
        (data built once per machine); nothing by default."""

    def local_paths(self, section: Strict) -> dict[str, str]:
        """Section fields naming a path on this machine that trials read (field -> path):
        what a cluster on other machines cannot reach (`sweeps submit` refuses them)."""
        return {}

    def warnings(self, runs: list[tuple[Point, Strict]]) -> list[str]:
        """What `sweeps validate` warns about in a valid plan (one line per grid point
        concerned): it runs, but likely not as meant."""
        return []

    def cluster_size(self, runs: list[tuple[Point, Strict]]) -> list[str]:
        """Lines `sweeps validate` prints about the sweep's size on a cluster (compute,
        storage, data), where the trainable can tell."""
        return []

    def trained_model(self, section: Strict, state: Any, folder: Path) -> "LoggedModel | None":
        """The trained model of a grid point as MLflow logs it, from the state its loop hands
        over at the end (artifacts written into `folder`); None where models are not logged."""
        return None
