"""The embedded Ray starts its dashboard only for trials that need its state API (Train's
worker groups): started for local-mode trials, it is started again with the dashboard when a
later sweep of the same process needs one (`sweeps reproduce`, a notebook). It starts no idle
workers ahead of time."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import time
import ray
from ray.util.state import list_nodes
from sweeps.runner import start_ray
from sweeps.spec import validate
from tests.conftest import tiny_spec

def state_api(wait_s):
    # Nodes the state API of this process's Ray lists (at its own dashboard: another Ray
    # may run here), asked until it answers or wait_s is up (a dashboard just started may
    # take a while on a busy machine); 0 where it has no dashboard or it never answers.
    dashboard = ray._private.worker.global_worker.node.address_info.get("webui_url")
    deadline = time.monotonic() + wait_s
    while dashboard:
        try:
            return len(list_nodes(address=f"http://{dashboard}", timeout=5))
        except Exception:
            if time.monotonic() > deadline:
                break
    return 0

start_ray(validate(tiny_spec()))  # one CPU worker: local mode
print("local", state_api(0))
# no idle workers started ahead of Tune's trials, which could never use them
print("prestart", ray._private.state.state.get_system_config()["prestart_worker_first_driver"])
start_ray(validate(tiny_spec()))  # the same again: kept
start_ray(validate(tiny_spec(resources={"workers": 2, "cpu": 1})))  # a worker group
print("workers", state_api(120))
"""


def test_the_dashboard_starts_where_trials_need_it():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env={**env, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["local", "0", "prestart", "False", "workers", "1"]
