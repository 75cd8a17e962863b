"""Real Ray clusters started with `ray start` on this machine, stopped by process id.

`ray stop` would stop every Ray on the machine (other test sessions' too), so each cluster
here is stopped by process id: the `ray start --block` processes this fixture started, their
descendants, and any process whose command line names the cluster's temp dir or GCS port
(the fake autoscaler's nodes, which the monitor starts).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import free_port

RAY = str(Path(sys.executable).with_name("ray"))
REPO = Path(__file__).resolve().parents[2]  # its workers import this checkout's code


class LocalCluster:
    """A head (and optional worker nodes) started with `ray start`, each in its own session."""

    def __init__(self) -> None:
        # Short: Ray's unix sockets live under it (108-byte limit).
        self.temp_dir = tempfile.mkdtemp(prefix="rayt-", dir="/tmp")
        self.port = free_port()
        self.dashboard_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"
        self.processes: list[subprocess.Popen] = []

    def start_head(self, *args: str, env: dict | None = None) -> None:
        self._start("--head", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                    f"--dashboard-port={self.dashboard_port}", "--dashboard-host=127.0.0.1",
                    f"--ray-client-server-port={free_port()}", *args, env=env)

    def add_node(self, *args: str, temp_dir: str, env: dict | None = None) -> subprocess.Popen:
        """A worker node (its own temp dir, so its own raylet); its `ray start` process."""
        self._start(f"--address={self.address}", "--node-ip-address=127.0.0.1", *args,
                    temp_dir=temp_dir, env=env)
        return self.processes[-1]

    def kill_node(self, node: subprocess.Popen) -> None:
        """SIGKILL a worker node whole, as a lost machine: its `ray start`, raylet, workers
        and every other process of its temp dir, with no chance to clean up."""
        temp_dir = next(a.split("=", 1)[1] for a in node.args if a.startswith("--temp-dir="))
        for pid in self._processes_of([temp_dir], {node.pid}):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.wait()

    def _start(self, *args: str, env: dict | None = None, temp_dir: str | None = None) -> None:
        # Every node's agent ports chosen free: Ray's fixed defaults (52365, ...) may be held
        # by another Ray on this machine, and the head's job agent would then never start.
        ports = [f"--{name}={free_port()}" for name in (
            "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
            "runtime-env-agent-port")]
        command = [RAY, "start", "--block", "--disable-usage-stats",
                   f"--temp-dir={temp_dir or self.temp_dir}", *ports, *args]
        self.processes.append(subprocess.Popen(
            command, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {}),
                          # a job's `python` is this environment's, as on a real cluster
                          "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
            start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def node_count(self) -> int:
        import ray

        return sum(1 for n in ray.nodes() if n["Alive"])

    def stop(self) -> None:
        """SIGTERM to each `ray start --block` (Ray then stops what it started), a few
        seconds' grace, then SIGKILL to whatever of the cluster is left."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for pid in self._leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in self.processes:
            process.wait()

    def _leftovers(self) -> list[int]:
        """Processes of this cluster still alive: by command line (temp dir, GCS port) and
        descendants of what we started."""
        markers = [self.temp_dir, f":{self.port}"] + [
            arg.split("=", 1)[1] for p in self.processes for arg in p.args
            if arg.startswith("--temp-dir=")]
        return self._processes_of(markers, {p.pid for p in self.processes})

    @staticmethod
    def _processes_of(markers: list[str], started: set[int]) -> list[int]:
        """Ray processes whose command line names a marker, what we `started`, and all
        their descendants."""
        parents, found = {}, set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1]
                                               .split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if "ray" in cmdline and any(m in cmdline for m in markers):
                found.add(int(entry.name))
        roots = found | started
        changed = True
        while changed:
            children = {pid for pid, ppid in parents.items() if ppid in roots} - roots
            changed = bool(children)
            roots |= children
        return sorted(pid for pid in roots if pid != os.getpid())




def wait_alive(cluster: LocalCluster, nodes: int, timeout: float = 120) -> None:
    """Connect this process to the cluster once `nodes` nodes are up."""
    import ray

    from tests.conftest import wait_for

    deadline = time.monotonic() + timeout
    wait_for(lambda: _connect(cluster), timeout, f"Ray head at {cluster.address}")
    wait_for(lambda: cluster.node_count() >= nodes, max(1.0, deadline - time.monotonic()),
             f"{nodes} nodes in the cluster")
    assert ray.is_initialized()


def _connect(cluster: LocalCluster) -> bool:
    import ray

    try:
        ray.init(address=cluster.address, logging_level="WARNING")
        return True
    except (ConnectionError, RuntimeError):
        return False
