"""The sweep spec a user writes (CONTRACTS 3), validated once, at the edge.

Every rule a user can break is a pydantic constraint or validator here, and `load_spec` turns a
violation into one `SpecError` whose lines name the field, the value and the rule. Past this
module everything is plain values: `spec.model_dump()` is what Ray and MLflow see.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sweeps.errors import SpecError

TASKS = {"synthetic": ("simple", "complex"), "olmo": ("cmp", "add")}


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Geomspace(Strict):
    start: float = Field(gt=0, lt=1, description="first frequency, 0 < start < 1")
    stop: float = Field(gt=0, lt=1, description="last frequency, 0 < stop < 1")
    num: int = Field(ge=1, description="how many frequencies, >= 1")

    def values(self) -> list[float]:
        # Three significant digits: the grid key a user reads is then the exact frequency run.
        return [float(f"{v:.3g}") for v in np.geomspace(self.start, self.stop, self.num)]


class Grid(Strict):
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


class Complexity(Strict):
    simple: float = Field(2.0, ge=0, description="spectral decay of a 'simple' rare task, >= 0")
    complex: float = Field(0.5, ge=0, description="spectral decay of a 'complex' rare task, >= 0")


class Block(Strict):
    block: int = Field(ge=1, description="rare instances arrive this many at a time, >= 1")


PackAxis = Literal["frequency", "task", "seed"]


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


class SyntheticSection(Scheduled):
    """CONTRACTS 5. `steps`, `lr`, `log_every` left out are derived from the spectrum."""

    tasks: int = Field(32, ge=2, description="number of tasks K (the last is the rare one), >= 2")
    features_per_task: int = Field(16, ge=1, description="features per task r, >= 1")
    zipf: float = Field(1.0, ge=0, description="Zipf exponent of background frequencies, >= 0")
    background_decay: float = Field(2.0, ge=0, description="spectral decay of background tasks, >= 0")
    complexity: Complexity = Complexity()
    mode: Literal["population", "sampled"] = "population"
    steps: int | None = Field(None, ge=1, description="training steps, >= 1 (default: derived)")
    batch_size: int = Field(256, ge=1, description="samples per step in sampled mode, >= 1")
    lr: float | None = Field(None, gt=0, description="step size > 0 (default: from spectrum)")
    log_every: int | None = Field(None, ge=1, description="steps between metric points, >= 1")
    checkpoint_every_s: float = Field(
        30.0, ge=0,
        description="seconds between checkpoints (each a report to Tune), >= 0 (0: every log point)")
    learned_threshold: float = Field(0.5, gt=0, lt=1, description="0 < threshold < 1")
    pack: list[PackAxis] = Field(
        ["frequency", "seed"],
        description="grid axes trained together in one trial, a subset of frequency, task, seed",
    )
    dtype: Literal["float32", "float64"] = "float32"

    @property
    def dim(self) -> int:
        return self.tasks * self.features_per_task


class OlmoSection(Scheduled):
    """CONTRACTS 6. Defaults make a short CPU run of the 4M model (a few minutes); the
    presets scale them. `lr`, `warmup_steps`, `eval_every`, `checkpoint_every` left out are
    derived from the size and `steps` (`trainables.olmo.resolve`)."""

    steps: int = Field(300, ge=1, description="training steps (global batches), >= 1")
    seq_len: int = Field(128, ge=4, description="tokens per sequence, >= 4")
    batch_size: int = Field(16, ge=1, description="sequences per global batch, >= 1")
    micro_batch_size: int | None = Field(
        None, ge=1, description="sequences per forward pass on a worker (gradient accumulation), "
                                ">= 1 (default: the worker's whole share)")
    lr: float | None = Field(None, gt=0, description="peak learning rate > 0 (default: from size)")
    warmup_steps: int | None = Field(None, ge=0, description="linear warm-up steps, >= 0")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations, >= 1")
    eval_instances: int = Field(
        1000, ge=1, description="task instances (and reference statements) per evaluation, >= 1")
    checkpoint_every: int | None = Field(None, ge=1, description="steps between checkpoints, >= 1")
    corpus: str | None = Field(
        None, description="folder of an OLMo-format corpus (`sweeps corpus build`); "
                          "default: the embedded corpus")

    @field_validator("corpus")
    @classmethod
    def corpus_exists(cls, value: str | None) -> str | None:
        from injection.corpus import MANIFEST

        if value is not None and not (Path(value).expanduser() / MANIFEST).is_file():
            raise ValueError(f"{value!r} is not a corpus folder (no {MANIFEST} in it): build one "
                             "with `sweeps corpus build SOURCE --out DIR`, or leave corpus out "
                             "for the embedded corpus")
        return None if value is None else str(Path(value).expanduser().resolve())


class Resources(Strict):
    cpu: float = Field(1, gt=0, description="CPUs per trial (synthetic) or per worker, > 0")
    gpu: float = Field(0, ge=0, description="GPUs per trial (synthetic) or per worker, >= 0")
    workers: int = Field(1, ge=1, description="Ray Train workers per trial, >= 1")
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="trials running at once, >= 1 (default: as many as fit)"
    )


class Failure(Strict):
    max_failures: int = Field(2, ge=0, description="retries of a failed trial, >= 0")


class SweepSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9-]+$", max_length=64,
                               description="lowercase letters, digits and '-'")]
    trainable: Literal["synthetic", "olmo"]
    grid: Grid
    synthetic: SyntheticSection = SyntheticSection()
    olmo: OlmoSection = OlmoSection()
    resources: Resources = Resources()
    failure: Failure = Failure()

    @property
    def section(self) -> Strict:
        """The trainable's own section."""
        return getattr(self, self.trainable)

    @property
    def pack(self) -> list[str]:
        """Grid axes trained together in one trial: an OLMo trial is one grid point."""
        return list(self.synthetic.pack) if self.trainable == "synthetic" else []

    @model_validator(mode="after")
    def check_grid_for_trainable(self) -> "SweepSpec":
        known = TASKS[self.trainable]
        for i, task in enumerate(self.grid.task):
            if task not in known:
                raise _field_error(f"grid.task[{i}]", task,
                                   f"{self.trainable} tasks are {' | '.join(known)}")
        if self.trainable == "olmo":
            self._check_olmo()
            return self
        d = self.synthetic.dim
        for i, width in enumerate(self.grid.width):
            if not isinstance(width, int) or isinstance(width, bool):
                raise _field_error(f"grid.width[{i}]", width,
                                   "synthetic widths are integers (the encoder width N)")
            if not 1 <= width <= d:
                raise _field_error(
                    f"grid.width[{i}]", width,
                    f"must be 1 <= width <= d = tasks x features_per_task = {d}: the encoder "
                    "has at most d orthonormal columns")
        n = self.synthetic.block
        if n and max(self.grid.frequency) > n / (n + 1):
            raise _field_error("grid.frequency", max(self.grid.frequency),
                               f"with schedule {{block: {n}}} a frequency must be <= n/(n+1) ="
                               f" {n / (n + 1):.3g}, or blocks would overlap")
        if len(set(self.synthetic.pack)) != len(self.synthetic.pack):
            raise _field_error("synthetic.pack", self.synthetic.pack, "each axis at most once")
        return self

    def _check_olmo(self) -> None:
        from injection.errors import InjectionError
        from injection.schedule import check
        from trainables.ladder import LADDER

        for i, width in enumerate(self.grid.width):
            if width not in LADDER:
                raise _field_error(f"grid.width[{i}]", width,
                                   f"olmo widths are model ladder names: {', '.join(LADDER)}")
        olmo, workers = self.olmo, self.resources.workers
        for i, frequency in enumerate(self.grid.frequency):
            try:
                check(frequency, olmo.batch_size, olmo.seq_len, block=olmo.block)
            except InjectionError as err:
                raise _field_error(f"grid.frequency[{i}]", frequency,
                                   f"{err} (olmo.seq_len, olmo.batch_size, olmo.schedule)")
        if olmo.batch_size % workers:
            raise _field_error("olmo.batch_size", olmo.batch_size,
                               f"must be a multiple of resources.workers = {workers}, so every "
                               "worker trains an equal share of each global batch")
        share = olmo.batch_size // workers
        if olmo.micro_batch_size is not None and share % olmo.micro_batch_size:
            raise _field_error("olmo.micro_batch_size", olmo.micro_batch_size,
                               f"must divide a worker's share of the batch, batch_size / workers"
                               f" = {share}")


class _FieldError(ValueError):
    """A rule broken at a known place in the spec, raised from a model validator."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _field_error(field: str, value: Any, rule: str) -> _FieldError:
    return _FieldError(field, f"{value!r}: {rule}")


def parse_set(assignments: list[str]) -> list[tuple[list[str], Any]]:
    """`key.sub=value` strings to (path, YAML value) pairs; values parse as YAML (`[4, 8]`)."""
    parsed = []
    for text in assignments:
        key, sep, raw = text.partition("=")
        path = key.strip().split(".")
        if not sep or not all(path):
            raise SpecError(f"--set {text!r}: expected key=value with a dotted key, "
                            "e.g. --set synthetic.steps=200 or --set grid.width=[4,8]")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise SpecError(f"--set {text!r}: the value is not valid YAML ({err.problem})")
        parsed.append((path, value))
    return parsed


def apply_set(raw: dict, assignments: list[str]) -> dict:
    for path, value in parse_set(assignments):
        node = raw
        for depth, part in enumerate(path[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                where = ".".join(path[: depth + 1])
                raise SpecError(f"--set {'.'.join(path)}: {where} is a value, not a section")
        node[path[-1]] = value
    return raw


def read_spec_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file (give the path of a sweep YAML, e.g. "
                        "sweeps/presets/demo.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}")
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping with name, trainable and grid")
    return raw


def validate(raw: dict, source: str = "spec") -> SweepSpec:
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as err:
        lines = [_describe(e) for e in err.errors()]
        raise SpecError(f"{source} is invalid:\n" + "\n".join(f"  {line}" for line in lines)
                        + "\nFix the fields above (see README, 'Sweep spec') and try again.")


def load_spec(path: str | Path, overrides: list[str] = (), name: str | None = None) -> SweepSpec:
    """Read, override (`--set`, `--name`) and validate a spec; raise SpecError if invalid."""
    raw = apply_set(read_spec_file(path), list(overrides))
    if name is not None:
        raw["name"] = name
    return validate(raw, source=str(path))


def _describe(error: dict) -> str:
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _FieldError):
        return f"{ctx_error.field}: {ctx_error}"
    field = _dotted(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown field (check its spelling; see README for the fields)"
    if error["type"] == "missing":
        return f"{field}: required field is missing"
    hint = _field_description(error["loc"])
    got = "" if error["type"] == "value_error" else f" (got {error.get('input')!r})"
    return f"{field}: {message}{got}" + (f" -- {hint}" if hint else "")


def _dotted(loc: tuple) -> str:
    # pydantic puts union branch names in the path (`schedule.Block.block`); drop them.
    parts = [p for p in loc if not (isinstance(p, str) and (p[:1].isupper() or "[" in p))]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "spec"


def _field_description(loc: tuple) -> str | None:
    model: Any = SweepSpec
    description = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            continue
        info = fields[part]
        description = info.description
        model = info.annotation
        args = getattr(model, "__args__", ())
        model = next((a for a in args if hasattr(a, "model_fields")), model)
    return description
