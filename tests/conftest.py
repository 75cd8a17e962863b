"""Shared fixtures: one real local Ray for the whole session, real MLflow on temporary sqlite."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import yaml

# Ray 2.60 turns token authentication on for a cluster once ~/.ray/auth_token exists (the first
# local ray.init writes it), and a driver joining a `ray start` head must then send the token.
# Whether the file exists differs between a fresh CI box and a developer's: the tests' clusters
# (loopback only) and their drivers all run with it off, set before anything starts Ray.
os.environ["RAY_AUTH_MODE"] = "disabled"

from sweeps.runner import free_port  # noqa: F401  (the tests' servers take one too)

REPO = Path(__file__).resolve().parents[1]
SESSION = pytest.StashKey[pytest.Session]()


def pytest_configure(config) -> None:
    # registered before Ray, MLflow and pytest's temporary folders register theirs, so it
    # runs after them (last in, first out)
    atexit.register(leave_before_teardown, config)


def pytest_sessionstart(session) -> None:
    session.config.stash[SESSION] = session


def leave_before_teardown(config) -> None:
    """End this process with the session's exit status once every other exit function has
    run, before Python tears down its modules: native threads of Ray's gRPC client outlive
    `ray.shutdown()` here (gcs_client_io_service, grpc's event engine and timers), and that
    teardown beside them crashed once with SIGSEGV after all 444 tests had passed."""
    if SESSION not in config.stash:  # no session ran (a usage error): pytest's own exit
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(config.stash[SESSION].exitstatus))


def sweeps_command(*args, cwd, env: dict | None = None, **popen) -> subprocess.Popen:
    """`python -m sweeps ARGS` in a subprocess, importing this checkout's code; `env` adds
    to the environment."""
    return subprocess.Popen([sys.executable, "-m", "sweeps", *map(str, args)], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                            text=True, **popen)


def run_sweeps(*args, cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m sweeps ARGS` run to the end, its output captured."""
    process = sweeps_command(*args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until `condition` holds: for events in other processes, which no callback reports."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for: {what}")
        time.sleep(0.1)


def join_gloo_group(rank: int, world: int, rendezvous: str) -> None:
    """Join a CPU process group of `world` spawned workers through a file, not a TCP store:
    rank 0 then hosts no store server whose thread can abort it at exit (once under CI load:
    "terminate called without an active exception", SIGABRT, after the test's work was done)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank,
                            world_size=world)


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
    """Where a test's MLflow store will be: no file yet, as on a user's first `sweeps run`."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def template_store(tmp_path_factory) -> Path:
    """An empty MLflow sqlite store, made (its migrations run) once per session."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("template-store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def store_uri(tmp_path, template_store) -> str:
    """A test's own empty MLflow store, ready: a copy of the session's template, so a test
    that only needs a store skips the ~2-3 s of migrations a new one costs."""
    shutil.copyfile(template_store, tmp_path / "mlflow.db")
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


@pytest.fixture(scope="session")
def object_store(tmp_path_factory):
    """moto's S3 server on loopback for the session (`tests/object_store.py`)."""
    from tests.object_store import ObjectStore

    store = ObjectStore(tmp_path_factory.mktemp("s3") / "moto.log").start()
    yield store
    store.stop()


@pytest.fixture
def s3_env(object_store, monkeypatch, tmp_path) -> dict[str, str]:
    """This process (and what it starts with `env=`) reaches the object store as AWS tools
    do; a node cache of its own (SWEEPS_CACHE), so what a test reads remotely is fetched."""
    env = {**object_store.env, "SWEEPS_CACHE": str(tmp_path / "node-cache")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
