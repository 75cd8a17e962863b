"""Shared fixtures: one real local Ray for the whole session, real MLflow on temporary sqlite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def tiny_spec(**overrides) -> dict:
    """A sweep small enough to train in a second: K=4 tasks of r=4 features (d=16)."""
    spec = {
        "name": "tiny",
        "trainable": "synthetic",
        "grid": {"width": [2, 12], "frequency": [0.2, 0.02], "task": ["complex"], "seed": [0]},
        "synthetic": {"tasks": 4, "features_per_task": 4},
    }
    for key, value in overrides.items():
        node = spec
        *path, last = key.split("__")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return spec


@pytest.fixture
def write_spec(tmp_path):
    def write(spec: dict, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec))
        return path

    return write


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def ray_cluster():
    """The embedded Ray `sweeps run` starts, sized for a trial with two 1-CPU workers."""
    import ray

    from sweeps.runner import start_ray
    from sweeps.spec import validate

    os.environ.pop("RAY_ADDRESS", None)
    start_ray(validate(tiny_spec(resources={"workers": 2, "cpu": 1})))
    yield ray
    ray.shutdown()
