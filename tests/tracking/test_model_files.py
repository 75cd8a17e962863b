"""A model written from its layout's files is what MLflow's save_model writes for it, holds
its own weights, and loads and predicts as its own student."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml

from trainables.synthetic import SYNTHETIC, SyntheticSection
from tracking import model_files

OWN_FIELDS = {"model_uuid", "utc_time_created"}  # a model's own, whoever writes it


def student(tmp_path: Path, name: str, seed: int, dim: int = 8, width: int = 3):
    rng = np.random.default_rng(seed)
    state = np.linalg.qr(rng.normal(size=(dim, width)))[0], rng.normal(size=(8, width))
    folder = tmp_path / name
    folder.mkdir()
    return SYNTHETIC.trained_model(SyntheticSection(features_per_task=4), state, folder), state


def files(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def predicted(folder: Path, dim: int) -> np.ndarray:
    x = pd.DataFrame(np.arange(2 * dim, dtype=float).reshape(2, dim) / dim,
                     columns=[f"x{i}" for i in range(dim)])
    x["task"] = [0, 1]
    return mlflow.pyfunc.load_model(str(folder)).predict(x).to_numpy()


@pytest.fixture(autouse=True)
def no_saved_layouts(monkeypatch):
    monkeypatch.setattr(model_files, "_saved", {})


def test_a_model_of_a_saved_layout_is_what_save_model_writes(tmp_path):
    first, _ = student(tmp_path, "first", seed=0)
    second, (encoder, decoders) = student(tmp_path, "second", seed=1)
    assert model_files.layout_key(first) == model_files.layout_key(second)
    model_files.save_pyfunc(first, tmp_path / "saved-first")  # by MLflow
    model_files.save_pyfunc(second, tmp_path / "saved-second")  # from the first's files
    assert len(model_files._saved) == 1
    model_files._save_with_mlflow(second, tmp_path / "mlflow-second" / "model")

    ours, theirs = files(tmp_path / "saved-second/model"), files(tmp_path / "mlflow-second/model")
    assert ours.keys() == theirs.keys()
    assert {k for k in ours if ours[k] != theirs[k]} == {"MLmodel"}  # its own npz, not the first's
    mine, mlflows = (yaml.safe_load(f["MLmodel"]) for f in (ours, theirs))
    assert {k for k in mine if mine[k] != mlflows[k]} == OWN_FIELDS
    first_uuid = yaml.safe_load((tmp_path / "saved-first/model/MLmodel").read_text())["model_uuid"]
    assert mine["model_uuid"] != first_uuid

    # It loads as the second student: predict = D_task U^T x.
    x = np.arange(16, dtype=float).reshape(2, 8) / 8
    every_task = x @ encoder @ decoders.T
    assert np.allclose(predicted(tmp_path / "saved-second/model", 8),
                       [every_task[0, :4], every_task[1, 4:]])
    assert not np.allclose(predicted(tmp_path / "saved-first/model", 8),
                           predicted(tmp_path / "saved-second/model", 8))


def test_another_layout_is_saved_by_mlflow(tmp_path):
    narrow, _ = student(tmp_path, "narrow", seed=0, dim=8)
    wide, _ = student(tmp_path, "wide", seed=0, dim=12)  # another signature and example
    assert model_files.layout_key(narrow) != model_files.layout_key(wide)
    model_files.save_pyfunc(narrow, tmp_path / "saved-narrow")
    model_files.save_pyfunc(wide, tmp_path / "saved-wide")
    assert len(model_files._saved) == 2
    assert predicted(tmp_path / "saved-wide/model", 12).shape == (2, 4)
