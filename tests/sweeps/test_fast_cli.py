"""The read-only commands import neither torch nor Ray (nor MLflow, for a sqlite store): what
makes them answer in about a second (bench/cli_answer.py measures it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id

PROBE = """
import json, sys
from sweeps.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": sorted(m for m in ("torch", "ray", "mlflow")
                                                 if m in sys.modules)}))
"""


def probe(*args, cwd) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def store(store_uri):
    client = connect(store_uri)
    experiment = experiment_id(client, "tiny", create=True)
    ensure_runs(client, experiment, [PlannedRun(
        key="width=2,frequency=0.2,task=complex,seed=0",
        params={"width": "2", "frequency": "0.2", "task": "complex", "seed": "0",
                "learned_threshold": "0.5"},
        tags={"sweep": "tiny", "trainable": "synthetic"})])
    client.create_registered_model("tiny.trials", tags={"kind": "trials"})
    return store_uri


@pytest.mark.parametrize("command", [["status", "tiny"], ["curves", "tiny"], ["list"],
                                     ["curves", "tiny", "--format", "csv"],
                                     ["registry", "list"], ["registry", "show", "tiny.trials"]])
def test_read_only_commands_stay_light(command, store, tmp_path):
    answer = probe(*command, "--tracking-uri", store, cwd=tmp_path)
    assert answer == {"code": 0, "heavy": []}


@pytest.mark.parametrize("preset", ["demo.yaml", "olmo-small.yaml"])
def test_validate_stays_light(preset, tmp_path):
    answer = probe("validate", REPO / "sweeps" / "presets" / preset, cwd=tmp_path)
    assert answer == {"code": 0, "heavy": []}
