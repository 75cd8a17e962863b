"""The sweep spec a user writes (CONTRACTS 3), validated once, at the edge.

Every rule a user can break is a pydantic constraint or validator here or in the trainable's
section and grid check (`trainables.contract`), and `load_spec` turns a violation into one
`SpecError` whose lines name the field, the value and the rule. Past this module everything is
plain values: `spec.model_dump()` is what Ray and MLflow see.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model, model_validator

from sweeps.errors import SpecError
from trainables import catalog
from trainables.contract import FieldError, Grid, Resources, Strict, Trainable


class Failure(Strict):
    """How often a failed trial is restarted from its last checkpoint."""

    max_failures: int = Field(2, ge=0, description="retries of a failed trial, >= 0")


class SweepSpec(Strict):
    """The fields every sweep has. The spec of a trainable's sweeps is a subclass with one
    more field, named after the trainable and holding its section (`spec_model`), so a typo in
    a section, or the section of another trainable, is refused like any unknown field."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9-]+$", max_length=64,
                               description="lowercase letters, digits and '-'")]
    trainable: str
    grid: Grid
    resources: Resources = Resources()
    failure: Failure = Failure()
    search: Literal["grid", "critical_width"] = Field(
        "grid", description="grid (train every point) or critical_width (per task and seed, "
                            "train only the points that decide N*(f); sweeps/search.py)")

    @property
    def runs_as(self) -> Trainable:
        """The trainable's contract."""
        return catalog.get(self.trainable)

    @property
    def section(self) -> Strict:
        """The trainable's own section."""
        return getattr(self, self.trainable)

    @property
    def pack(self) -> list[str]:
        """Grid axes trained together in one trial."""
        return self.runs_as.pack(self.section)

    @model_validator(mode="after")
    def check_grid_for_trainable(self) -> "SweepSpec":
        if self.trainable in type(self).model_fields:  # the base alone has no section
            self.runs_as.check_grid(self.grid, self.section, self.resources)
        return self


@functools.cache
def spec_model(trainable: str) -> type[SweepSpec]:
    """The spec of `trainable`'s sweeps: SweepSpec plus its section, defaults filled in."""
    section = catalog.get(trainable).section
    return create_model(f"{trainable.title()}SweepSpec", __base__=SweepSpec,
                        **{trainable: (section, section())})


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
    """The spec of `raw`'s trainable, validated; SpecError naming every broken rule."""
    model = SweepSpec  # without a valid trainable, the common fields are what can be named
    if isinstance(raw.get("trainable"), str):
        try:
            model = spec_model(raw["trainable"])
        except catalog.UnknownTrainable as err:
            raise SpecError(f"{source} is invalid:\n  trainable: {err}")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        lines = [_describe(e, model) for e in err.errors()]
        raise SpecError(f"{source} is invalid:\n" + "\n".join(f"  {line}" for line in lines)
                        + "\nFix the fields above (see README, 'Sweep spec') and try again.")


def load_spec(path: str | Path, overrides: list[str] = (), name: str | None = None) -> SweepSpec:
    """Read, override (`--set`, `--name`) and validate a spec; raise SpecError if invalid."""
    raw = apply_set(read_spec_file(path), list(overrides))
    if name is not None:
        raw["name"] = name
    return validate(raw, source=str(path))


def _describe(error: dict, model: type[SweepSpec]) -> str:
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, FieldError):
        return f"{ctx_error.field}: {ctx_error}"
    field = _dotted(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1 \
            and field in catalog.names():
        return (f"{field}: the section of the {field} trainable, in a sweep of another "
                "trainable: remove it, or set `trainable` to " + field)
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown field (check its spelling; see README for the fields)"
    if error["type"] == "missing":
        return f"{field}: required field is missing"
    hint = _field_description(error["loc"], model)
    got = "" if error["type"] == "value_error" else f" (got {error.get('input')!r})"
    return f"{field}: {message}{got}" + (f" -- {hint}" if hint else "")


def _dotted(loc: tuple) -> str:
    # pydantic puts union branch names in the path (`schedule.Block.block`); drop them.
    parts = [p for p in loc if not (isinstance(p, str) and (p[:1].isupper() or "[" in p))]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "spec"


def _field_description(loc: tuple, model: Any) -> str | None:
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
