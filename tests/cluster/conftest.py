"""The `local_cluster` fixture: a real `ray start` cluster, stopped at teardown even on failure."""

from __future__ import annotations

import os
import subprocess

import pytest

# Token authentication on, as on a real cluster (and Ray 2.60's default for a new local one).
# Ray reads the mode when it is first imported, so it is set here, before any test imports it;
# every process a test starts inherits it.
os.environ.setdefault("RAY_AUTH_MODE", "token")

from tests.cluster.local_cluster import RAY, LocalCluster


@pytest.fixture
def local_cluster():
    """A LocalCluster, stopped at teardown whatever the test did; the test's own Ray
    connection (ray.init) is closed first. Token authentication is on, as on a real cluster,
    with the token a user has (`ray get-auth-token --generate` makes one only if missing)."""
    import ray

    subprocess.run([RAY, "get-auth-token", "--generate"], capture_output=True, check=True)

    if ray.is_initialized():  # the session's embedded Ray: these tests use their own
        ray.shutdown()
    cluster = LocalCluster()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.stop()
