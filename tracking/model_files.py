"""A `LoggedModel` as the files of an MLflow pyfunc, saved once per layout.

`mlflow.pyfunc.save_model` is slow (its YAML, the installed packages' metadata, the input
example): most of a synthetic grid point's logging (`bench/model_files.py`). A trial's models differ
only in their artifact files: a pack's grid points, or every seed of a width, share the code,
signature and example. So each process saves a layout once with MLflow and writes the next
models of that layout from its files, with their own artifacts and the fields of `MLmodel`
that are a model's own (uuid, creation time, size, where its artifacts came from). The
result is what `save_model` would have written (tests/tracking/test_model_files.py compares
them).
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from importlib.metadata import version
from pathlib import Path

import yaml

from tracking.logged_model import LoggedModel
from tracking.runs import quiet_logger

REQUIREMENTS = ("mlflow", "numpy", "pandas", "pydantic", "scipy")
MLMODEL = "MLmodel"
# libyaml's loader and dumper where PyYAML has them (its wheels do): a model's MLmodel is
# read and written in a millisecond, not the ~50 ms of the pure-Python ones.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class Layout:
    """A model saved by MLflow, but its artifacts: its files (relative path -> contents) and
    the artifacts' size, which `MLmodel`'s model size counted."""

    files: dict[str, bytes]
    artifact_bytes: int


_saved: dict[str, Layout] = {}  # this process's layouts, by `layout_key`


def save_pyfunc(model: LoggedModel, folder: Path) -> None:
    """The pyfunc whose code is the file `model.code`, saved in `folder/model`."""
    key = layout_key(model)
    if key not in _saved:
        _save_with_mlflow(model, folder / "model")
        _saved[key] = _layout(folder / "model")
    else:
        _write_from(_saved[key], model, folder / "model")


def layout_key(model: LoggedModel) -> str:
    """Everything of a model's files but its artifacts' contents."""
    return json.dumps({
        "code": str(model.code), "code_paths": [str(p) for p in model.code_paths],
        "artifacts": {name: path.name for name, path in model.artifacts.items()},
        "signature": model.signature.to_dict() if model.signature is not None else None,
        "example": None if model.example is None else model.example.to_json(orient="split"),
    }, sort_keys=True)


@cache
def pip_requirements() -> tuple[str, ...]:
    """Pinned to what runs here, as inferring them would import the world."""
    return tuple(f"{p}=={version(p)}" for p in REQUIREMENTS)


def _save_with_mlflow(model: LoggedModel, target: Path) -> None:
    import mlflow.pyfunc

    staged = [target.parent / "code" / p.name for p in model.code_paths]  # sources, no caches
    for source, copy in zip(model.code_paths, staged):
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with quiet_logger("mlflow.pyfunc", logging.WARNING):
        mlflow.pyfunc.save_model(
            target, python_model=str(model.code),
            artifacts={name: str(path) for name, path in model.artifacts.items()},
            code_paths=[str(p) for p in staged], signature=model.signature,
            input_example=model.example, pip_requirements=list(pip_requirements()))


def _artifact_paths(mlmodel: dict) -> dict[str, str]:
    """Where save_model put each artifact, relative to the model's folder."""
    return {name: entry["path"] for name, entry in
            mlmodel["flavors"]["python_function"].get("artifacts", {}).items()}


def _layout(target: Path) -> Layout:
    mlmodel = yaml.load((target / MLMODEL).read_text(), Loader=LOADER)
    artifacts = [target / path for path in _artifact_paths(mlmodel).values()]
    files = [f for f in sorted(target.rglob("*")) if f.is_file()]
    own = [f for f in files if any(f == a or a in f.parents for a in artifacts)]
    return Layout({str(f.relative_to(target)): f.read_bytes() for f in files if f not in own},
                  sum(f.stat().st_size for f in own))


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(
        f.stat().st_size for f in path.rglob("*") if f.is_file())


def _write_from(saved: Layout, model: LoggedModel, target: Path) -> None:
    files = saved.files
    for relative, contents in files.items():
        if relative != MLMODEL:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).write_bytes(contents)
    mlmodel = yaml.load(files[MLMODEL], Loader=LOADER)
    flavor = mlmodel["flavors"]["python_function"]
    for name, relative in _artifact_paths(mlmodel).items():
        source, copy = model.artifacts[name], target / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, copy)
        else:
            shutil.copyfile(source, copy)
        flavor["artifacts"][name]["uri"] = str(source)
    # As Model.__init__ and save_model set them.
    mlmodel["model_uuid"] = uuid.uuid4().hex
    mlmodel["utc_time_created"] = str(datetime.now(timezone.utc).replace(tzinfo=None))
    if "model_size_bytes" in mlmodel:  # set by save_model where it found any files
        mlmodel["model_size_bytes"] += sum(map(_size, model.artifacts.values())) - \
            saved.artifact_bytes
    (target / MLMODEL).write_text(yaml.dump(mlmodel, Dumper=DUMPER,
                                            default_flow_style=False))
