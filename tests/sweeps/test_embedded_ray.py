"""The embedded Ray starts its dashboard only for trials that need its state API (Train's
worker groups): started for local-mode trials, it is started again with the dashboard when a
later sweep of the same process needs one (`sweeps reproduce`, a notebook). Its workers find
that state API without an address, as Train's controller asks, also with a second Ray on the
machine. It starts no idle workers ahead of time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPT = """
import os
import time
import ray
from ray.util.state import list_nodes
from sweeps.runner import start_ray
from sweeps.spec import validate
from tests.conftest import tiny_spec

def state_api(wait_s, address):
    # Nodes the state API at `address` lists (None: found as Train's controller finds it),
    # asked until it answers or wait_s is up (a dashboard just started may take a while on
    # a busy machine); 0 where it never answers.
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return len(list_nodes(address=address, timeout=5))
        except Exception:
            if time.monotonic() > deadline:
                return 0

def own_state_api(wait_s):
    # At this process's Ray's own dashboard (another Ray runs here); 0 without one.
    dashboard = ray._private.worker.global_worker.node.address_info.get("webui_url")
    return state_api(wait_s, f"http://{dashboard}") if dashboard else 0

start_ray(validate(tiny_spec()))  # one CPU worker: local mode
print("local", own_state_api(0))
# no idle workers started ahead of Tune's trials, which could never use them
print("prestart", ray._private.state.state.get_system_config()["prestart_worker_first_driver"])
start_ray(validate(tiny_spec()))  # the same again: kept
start_ray(validate(tiny_spec(resources={"workers": 2, "cpu": 1})))  # a worker group
print("workers", own_state_api(120))
print("in a worker", ray.get(ray.remote(num_cpus=0)(state_api).remote(120, None)))
print("driver's env", os.environ.get("RAY_API_SERVER_ADDRESS"))  # as it was
"""


@pytest.mark.slow
def test_the_dashboard_starts_where_trials_need_it(ray_cluster):
    # ray_cluster: this process's Ray, a second one on the machine
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env={**env, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["local 0", "prestart False", "workers 1",
                                          "in a worker 1", "driver's env None"]
