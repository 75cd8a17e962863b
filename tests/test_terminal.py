"""`sweeps run` in a terminal, as a person sees it: a pseudo-terminal, a real embedded Ray
and MLflow. The live view counts grid points to N of N; none of the noise that used to bury
it (Tune's tables, MLflow's INFO lines, Ray's notices, tracebacks) reaches the screen."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, tiny_spec

NOISE = ["Validating input example", "Token authentication", "tensorboard", "Trial status",
         "Trial name", "Traceback", "SystemExit", "INFO mlflow", "View run",
         "Experiment state snapshotting"]


def in_terminal(args: list, cwd, timeout_s: float = 300) -> tuple[int, str]:
    """Run `python -m sweeps ARGS` with a pseudo-terminal as its stdin, stdout and stderr;
    its exit code and everything it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "sweeps", *map(str, args)], cwd=cwd, stdin=follower,
        stdout=follower, stderr=follower, close_fds=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color",
             "COLUMNS": "140", "LINES": "40"})
    os.close(follower)
    out, deadline = bytearray(), time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: the process is done with it
                    break
                if not chunk:
                    break
                out += chunk
            elif process.poll() is not None:
                break
        return process.wait(timeout=60), out.decode(errors="replace")
    finally:
        process.kill()
        os.close(leader)


@pytest.mark.slow
def test_run_in_a_terminal_shows_live_progress_to_n_of_n_and_no_noise(tmp_path, write_spec):
    # 4 points in 2 trials, checkpointing at every log point: Tune's warning about its
    # forced state snapshots must not show either
    spec = write_spec(tiny_spec(grid__task=["complex"], synthetic__checkpoint_every_s=0))
    code, screen = in_terminal(["run", spec, "--storage", tmp_path / "runs", "--tracking-uri",
                                f"sqlite:///{tmp_path / 'mlflow.db'}"], cwd=tmp_path)
    assert code == 0, screen
    assert "\x1b[" in screen, "a live view draws with terminal codes"
    assert "4/4 grid points" in screen
    assert "+ w12 complex: 2 points" in screen and "+ w2 complex: 2 points" in screen
    assert "workflowType=machine_learning" in screen  # where the runs are in MLflow's UI
    assert [noise for noise in NOISE if noise.lower() in screen.lower()] == [], screen
