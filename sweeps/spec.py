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

from sweeps.errors import SpecError, did_you_mean
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
    search_prior: Literal["trainable", "uniform"] = Field(
        "trainable", description="critical_width: where it probes first: trainable (the "
                                 "trainable's predicted N*(f) where it has one, the synthetic "
                                 "theory's; else uniform) or uniform (every boundary alike); "
                                 "only the order, every verdict is trained")

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


def parse_set(assignments: list[str]) -> list[tuple[list[str], Any, str]]:
    """`key.sub=value` strings to (path, YAML value, the flag's text) triples; values parse as
    YAML (`[4, 8]`)."""
    parsed = []
    for text in assignments:
        key, sep, raw = text.partition("=")
        path = key.strip().split(".")
        if not sep or not all(path):
            raise SpecError(f"--set {text}: expected key=value with a dotted key, "
                            "e.g. --set synthetic.steps=200 or --set grid.width=4,8")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise SpecError(f"--set {text}: the value is not valid YAML ({err.problem})")
        parsed.append((path, value, text))
    return parsed


def apply_set(raw: dict, assignments: list[str]) -> dict:
    """`raw` with the `--set` values in place; where the field holds a list, a scalar is a
    one-element list and `1,2` a list of two."""
    model = _model_of(raw)
    for path, value, text in parse_set(assignments):
        node = raw
        for depth, part in enumerate(path[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                where = ".".join(path[: depth + 1])
                raise SpecError(f"--set {text}: {where} is a value, not a section")
        node[path[-1]] = _as_list(value) if _holds_list(model, path) else value
    return raw


def _model_of(raw: dict) -> type[SweepSpec]:
    try:
        return spec_model(raw["trainable"])
    except (KeyError, TypeError, catalog.UnknownTrainable):
        return SweepSpec


def _holds_list(model: Any, path: list[str]) -> bool:
    """Whether the field at `path` of `model` is a list (`grid.width`, `grid.seed`)."""
    for part in path:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return False
        model = fields[part].annotation
        if part != path[-1]:
            model = next((a for a in getattr(model, "__args__", ()) if hasattr(
                a, "model_fields")), model)
    return getattr(model, "__origin__", None) is list


def _as_list(value: Any) -> Any:
    if isinstance(value, str) and "," in value:
        return [yaml.safe_load(item) for item in value.split(",")]
    return value if isinstance(value, (list, dict)) or value is None else [value]


PRESETS = Path(__file__).resolve().parent / "presets"


def presets() -> list[str]:
    """The names of the presets shipped with the package (`sweeps run demo`)."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def spec_path(spec: str | Path) -> Path:
    """A spec file's path: as given, or a preset's, by name, from any folder."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.name == str(spec) and (PRESETS / f"{path.stem}.yaml").is_file() \
            and path.suffix in ("", ".yaml"):
        return PRESETS / f"{path.stem}.yaml"
    hint = did_you_mean(path.stem, presets())
    raise SpecError(f"{path}: no such spec file, nor a preset of that name{hint} (give the "
                    f"path of a sweep YAML, or a preset: {', '.join(presets())})")


def read_spec_file(path: str | Path) -> dict:
    path = spec_path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}")
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping with name, trainable and grid")
    return raw


def validate(raw: dict, source: str = "spec", overrides: list[str] = ()) -> SweepSpec:
    """The spec of `raw`'s trainable, validated; SpecError naming every broken rule, and the
    `--set` flag (of `overrides`) a broken field came from rather than the file."""
    model = SweepSpec  # without a valid trainable, the common fields are what can be named
    flags = {".".join(path): text for path, _, text in parse_set(list(overrides))}
    if isinstance(raw.get("trainable"), str):
        try:
            model = spec_model(raw["trainable"])
        except catalog.UnknownTrainable as err:
            where = f"--set {flags['trainable']}" if "trainable" in flags else source
            raise SpecError(f"{where} is invalid:\n  trainable: {err}"
                            f"{did_you_mean(raw['trainable'], catalog.names())}")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        described = [_describe(e, model) for e in err.errors()]
        lines = [_blame(field, line, flags) for field, line in described]
        from_flags = all(line.startswith("--set ") for line in lines)
        head = "invalid --set" if from_flags else f"{source} is invalid"
        raise SpecError(f"{head}:\n" + "\n".join(f"  {line}" for line in lines)
                        + ("" if from_flags else
                           "\nFix the fields above (see docs/reference/spec.md) and try again."))


def _blame(field: str, line: str, flags: dict[str, str]) -> str:
    """`--set grid.width=0: grid.width[0]: ...` where that flag set the field (or a section
    holding it)."""
    for key, text in flags.items():
        if field == key or field.startswith((key + ".", key + "[")):
            return f"--set {text}: {line}"
    return line


def load_spec(path: str | Path, overrides: list[str] = (), name: str | None = None) -> SweepSpec:
    """Read (a file, or a preset by name), override (`--set`, `--name`) and validate a spec;
    raise SpecError if invalid."""
    path = spec_path(path)
    raw = apply_set(read_spec_file(path), list(overrides))
    if name is not None:
        raw["name"] = name
    return validate(raw, source=str(path), overrides=list(overrides))


def _describe(error: dict, model: type[SweepSpec]) -> tuple[str, str]:
    """The broken field (dotted) and a line naming it, its value and the rule."""
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, FieldError):
        return ctx_error.field, f"{ctx_error.field}: {ctx_error}"
    field = _dotted(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1 \
            and field in catalog.names():
        return field, (f"{field}: the section of the {field} trainable, in a sweep of another "
                       "trainable: remove it, or set `trainable` to " + field)
    if error["type"] == "extra_forbidden":
        known = _fields_at(error["loc"][:-1], model)
        prefix = field[:len(field) - len(str(error["loc"][-1]))]
        hint = did_you_mean(field, [prefix + k for k in known]) if known else ""
        return field, (f"{field}: unknown field{hint or ' (check its spelling)'}"
                       + (f"; the fields here: {', '.join(known)}" if known and not hint
                          else ""))
    if error["type"] == "missing":
        return field, f"{field}: required field is missing"
    hint = _field_description(error["loc"], model)
    got = "" if error["type"] == "value_error" else f" (got {error.get('input')!r})"
    return field, f"{field}: {message}{got}" + (f" -- {hint}" if hint else "")


def _fields_at(loc: tuple, model: Any) -> list[str]:
    """The field names of the section at `loc` (the top level for `()`)."""
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return []
        model = fields[part].annotation
        model = next((a for a in getattr(model, "__args__", ()) if hasattr(a, "model_fields")),
                     model)
    return list(getattr(model, "model_fields", {}))


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
