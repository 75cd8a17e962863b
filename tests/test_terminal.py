"""`sweeps run` in a terminal, as a person sees it: a pseudo-terminal, a real embedded Ray
and MLflow. The live view counts grid points to N of N; none of the noise that used to bury
it (Tune's tables, MLflow's INFO lines, Ray's notices, tracebacks) reaches the screen; at 80
columns the closing table and lines are whole; Ctrl-C says one line and exits 130."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from typing import Callable

import pytest

from tests.conftest import REPO, tiny_spec

NOISE = ["Validating input example", "Token authentication", "tensorboard", "Trial status",
         "Trial name", "Traceback", "SystemExit", "INFO mlflow", "View run",
         "Experiment state snapshotting", "Stop signal received", "Trials did not complete",
         "the most recent state was saved", "KeyboardInterrupt"]
ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][A-Z0-9]|[=>78])")


def in_terminal(args: list, cwd, timeout_s: float = 300, columns: int = 140,
                interrupt_when: Callable[[], bool] | None = None,
                twice: bool = False) -> tuple[int, str]:
    """Run `python -m sweeps ARGS` with a pseudo-terminal of `columns` as its stdin, stdout
    and stderr; its exit code and everything it wrote. `interrupt_when`: once it holds, Ctrl-C
    as a terminal sends it (SIGINT to the command's process group); `twice`: a second Ctrl-C
    once the first one's line is on the screen."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "sweeps", *map(str, args)], cwd=cwd, stdin=follower,
        stdout=follower, stderr=follower, close_fds=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color",
             "COLUMNS": str(columns), "LINES": "40"})
    os.close(follower)
    out, deadline = bytearray(), time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if interrupt_when is not None and process.poll() is None and interrupt_when():
                os.killpg(process.pid, signal.SIGINT)
                interrupt_when = None
            elif twice and process.poll() is None and b"stopping: " in out:
                os.killpg(process.pid, signal.SIGINT)
                twice = False
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


def screen_lines(screen: str) -> list[str]:
    """What the terminal's lines read, without colour and cursor codes."""
    return [line.rstrip() for line in ESCAPES.sub("", screen).replace("\r\n", "\n")
            .replace("\r", "\n").split("\n")]


@pytest.mark.slow
def test_at_80_columns_the_closing_table_and_lines_are_whole(tmp_path, write_spec):
    spec = write_spec(tiny_spec())
    code, screen = in_terminal(["run", spec, "--storage", tmp_path / "runs", "--tracking-uri",
                                f"sqlite:///{tmp_path / 'mlflow.db'}"], cwd=tmp_path, columns=80)
    assert code == 0, screen
    lines = screen_lines(screen)
    closing = lines[max(i for i, line in enumerate(lines) if line.startswith("Final metrics")):]
    assert closing[0] == "Final metrics per grid point (task complex, seed 0)"
    table = closing[1:closing.index(next(line for line in closing if line.startswith("(")))]
    assert table[0].split()[:4] == ["width", "frequency", "state", "step"], table
    assert len(table) == 5 and all(len(line) <= 80 for line in table), table
    assert all(row.split()[2] == "FINISHED" for row in table[1:]), table
    assert "…" not in "\n".join(closing) and "e-" not in "\n".join(table)  # no raw noise
    note_at = len(table) + 1  # the columns left out, wrapped between words
    note_end = next(i for i in range(note_at, len(closing)) if closing[i].endswith(")"))
    note = " ".join(closing[note_at:note_end + 1])
    assert note.startswith("(") and "see them with --wide" in note
    left_out = note[1:].split(": ")[1].split("; ")[0].split(", ")
    assert left_out and not set(left_out) & set(table[0].split())
    url = "http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning"
    command = f"  mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}"
    state = f"  {tmp_path / 'runs' / 'tiny'}"
    assert url in closing and command in closing and state in closing  # lines of their own
    assert [line for line in closing if len(line) > 80 and line not in (url, command, state)] \
        == []


# A fixed budget (no convergence stop) of ~15 s a trial: Ctrl-C lands while every point is
# mid-training, however loaded the machine (points that stop once converged could finish within
# the poll's second, and then nothing was left to mark)
BUDGET_SPEC = tiny_spec(synthetic__steps=100_000, synthetic__log_every=1000,
                        synthetic__checkpoint_every_s=0.3, synthetic__tolerance=0)


def mid_training(client, db) -> Callable[[], bool]:
    """Holds once a point has trained two log intervals and none has finished."""
    from tests.test_resume import runs

    def holds() -> bool:
        found = runs(client) if db.exists() else []
        return any(int(r.data.tags.get("last_step", -1)) >= 2000 for r in found) \
            and all(r.info.status == "RUNNING" for r in found)

    return holds


@pytest.mark.slow
def test_ctrl_c_says_one_line_exits_130_marks_points_interrupted_and_resume_finishes(
        tmp_path, write_spec):
    from mlflow import MlflowClient

    from sweeps.interrupt import INTERRUPTED_TAG
    from tests.conftest import run_sweeps
    from tests.test_resume import runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    flags = ["--storage", tmp_path / "runs", "--tracking-uri", uri]
    code, screen = in_terminal(["run", write_spec(BUDGET_SPEC), *flags], cwd=tmp_path,
                               interrupt_when=mid_training(client, tmp_path / "mlflow.db"))
    assert code == 130, screen
    said = [line for line in screen_lines(screen) if line.startswith("stopping: ")]
    assert len(said) == 1, screen
    assert re.fullmatch(r"stopping: \d+ points? checkpointed, `sweeps resume tiny` finishes "
                        r"them( and the \d+ not started)?", said[0]), said
    assert [noise for noise in NOISE if noise.lower() in screen.lower()] == [], screen

    cut = [r for r in runs(client) if r.info.status != "FINISHED"]
    assert cut and all(r.info.status == "KILLED" and INTERRUPTED_TAG in r.data.tags
                       for r in cut), [(r.info.status, r.data.tags) for r in cut]
    experiment = client.get_experiment_by_name("tiny").experiment_id
    parent, = client.search_runs([experiment], "tags.kind = 'sweep'")
    assert parent.info.status == "KILLED"
    status = run_sweeps("status", "tiny", *flags, cwd=tmp_path)
    assert status.stdout.startswith("tiny: interrupted, "), status.stdout
    assert status.stdout.splitlines()[0].endswith("`sweeps resume tiny` finishes them")
    assert status.stdout.count("INTERRUPTED") == len(cut)
    assert screen_lines(screen)[-2] == status.stdout.splitlines()[0]  # its closing line

    resumed = run_sweeps("resume", "tiny", *flags, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r.info.status for r in runs(client)) == ["FINISHED"] * 4


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_marks_every_run_and_resume_finishes(tmp_path, write_spec):
    from mlflow import MlflowClient

    from sweeps.interrupt import INTERRUPTED_TAG
    from tests.conftest import run_sweeps
    from tests.test_resume import runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    flags = ["--storage", tmp_path / "runs", "--tracking-uri", uri]
    code, screen = in_terminal(["run", write_spec(BUDGET_SPEC), *flags], cwd=tmp_path,
                               interrupt_when=mid_training(client, tmp_path / "mlflow.db"),
                               twice=True)
    assert code == 130, screen
    assert [noise for noise in NOISE if noise.lower() in screen.lower()] == [], screen
    found = runs(client)
    assert {r.info.status for r in found} <= {"FINISHED", "KILLED"}, screen  # none RUNNING
    cut = [r for r in found if r.info.status == "KILLED"]
    assert cut and all(INTERRUPTED_TAG in r.data.tags for r in cut)
    experiment = client.get_experiment_by_name("tiny").experiment_id
    parent, = client.search_runs([experiment], "tags.kind = 'sweep'")
    assert parent.info.status == "KILLED"

    resumed = run_sweeps("resume", "tiny", *flags, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    done = runs(client)  # one finished run per point: none lost, none twice
    assert sorted(r.info.status for r in done) == ["FINISHED"] * 4
    assert len({r.data.tags["trial_key"] for r in done}) == 4
