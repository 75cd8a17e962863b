"""`sweeps resume`: a driver killed at any point, resumed, finishes every trial exactly once."""

from __future__ import annotations

import signal
import subprocess

import pytest
import torch
import yaml
from mlflow import MlflowClient

from sweeps.spec import validate
from tests.conftest import sweeps_command, tiny_spec, wait_for
from trainables.points import Point
from trainables.synthetic import SYNTHETIC
from trainables.synthetic.student import Pack
from trainables.synthetic.trainable import member_for, setup_for

STEPS, LOG_EVERY = 20000, 100  # a cap: the points stop once converged, at 120-5000 steps
WIDTHS, FREQUENCIES = [2, 4, 8, 12], [0.2, 0.02]


def long_spec() -> dict:
    """Four trials of two points, up to a few seconds each, checkpointing often."""
    return tiny_spec(grid__width=WIDTHS, synthetic__steps=STEPS,
                     synthetic__log_every=LOG_EVERY, synthetic__checkpoint_every_s=0.3)


def sweeps(*args, tmp_path, tracking_uri) -> subprocess.Popen:
    return sweeps_command(*args, "--storage", tmp_path / "runs", "--tracking-uri", tracking_uri,
                          cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def runs(client: MlflowClient, name: str = "tiny"):
    experiment = client.get_experiment_by_name(name)
    return [] if experiment is None else client.search_runs([experiment.experiment_id],
                                                             "tags.kind = 'trial'")


def reference(spec: dict, width: int, frequency: float) -> tuple[list[int], dict[str, float]]:
    """The same grid point trained without Ray, never interrupted: its logged steps (it stops
    once converged) and final metrics."""
    point = Point(width, frequency, "complex", 0)
    section = SYNTHETIC.resolve(validate(spec).synthetic, point)
    pack = Pack(setup_for(section, width), [member_for(section, point)],
                dtype=getattr(torch, section.dtype))
    logged = [(pack.step, metrics) for metrics, _ in pack.train([STEPS], [LOG_EVERY])]
    return [step for step, _ in logged], {n: v[0].item() for n, v in logged[-1][1].items()}


@pytest.mark.slow
def test_driver_killed_at_several_points_resumes_to_one_finished_run_per_point(
        tmp_path, write_spec, tracking_uri):
    spec = long_spec()
    client = MlflowClient(tracking_uri)

    def finished():
        return sum(r.info.status == "FINISHED" for r in runs(client))

    def stored_step():
        return max([int(r.data.tags.get("last_step", -1)) for r in runs(client)], default=-1)

    kill_points = [
        ("its state file is written", lambda: (tmp_path / "runs/tiny/sweep.yaml").exists()),
        ("trials are under way", lambda: stored_step() >= 5 * LOG_EVERY and finished() < 8),
        ("some trials finished", lambda: 0 < finished() < 8),
    ]
    command = ["run", write_spec(spec)]
    killed = []
    for what, point in kill_points:
        driver = sweeps(*command, tmp_path=tmp_path, tracking_uri=tracking_uri)
        wait_for(lambda: point() or driver.poll() is not None, timeout=240, what=what)
        if driver.poll() is None:
            driver.send_signal(signal.SIGKILL)
            killed.append(what)
        driver.wait()
        command = ["resume", "tiny"]
    assert len(killed) >= 2, f"the sweep outran the kills: only killed when {killed}"

    last = sweeps(*command, tmp_path=tmp_path, tracking_uri=tracking_uri)
    assert last.wait(timeout=300) == 0, last.stderr.read()
    final = runs(client)
    assert len(final) == 8 and {r.info.status for r in final} == {"FINISHED"}
    assert len({r.data.tags["trial_key"] for r in final}) == 8
    # One sweep run through every kill and resume, every grid point's run its child.
    (sweep,) = client.search_runs([final[0].info.experiment_id], "tags.kind = 'sweep'")
    assert sweep.info.status == "FINISHED" and sweep.data.metrics["points/finished"] == 8
    assert {r.data.tags["mlflow.parentRunId"] for r in final} == {sweep.info.run_id}
    for run in final:  # each ends where, and as, an uninterrupted run ends
        history = client.get_metric_history(run.info.run_id, "loss")
        steps, expected = reference(spec, int(run.data.params["width"]),
                                    float(run.data.params["frequency"]))
        assert [m.step for m in history] == steps, run.data.tags["trial_key"]
        assert steps[-1] < STEPS and run.data.metrics["converged"] == 1.0
        for name in ("loss", "model_loss", "rare/loss", "rare/alignment"):
            assert run.data.metrics[name] == pytest.approx(expected[name], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("damage", ["missing", "truncated-tuner", "other-store"])
def test_resume_refuses_what_it_cannot_resume_with_exit_2(damage, tmp_path, write_spec,
                                                          tracking_uri):
    sweep = tmp_path / "runs" / "tiny"
    if damage != "missing":
        sweep.mkdir(parents=True)
        state = {"spec": validate(tiny_spec()).model_dump(mode="json"),
                 "tracking_uri": tracking_uri}
        (sweep / "sweep.yaml").write_text(yaml.safe_dump(state))
    if damage == "truncated-tuner":
        (sweep / "tuner.pkl").write_bytes(b"\x80\x05\x95")  # a driver killed mid-write
    uri = "sqlite:///elsewhere.db" if damage == "other-store" else tracking_uri
    before = sorted(p.name for p in tmp_path.rglob("*"))
    resume = sweeps("resume", "tiny", tmp_path=tmp_path, tracking_uri=uri)
    _, stderr = resume.communicate(timeout=120)
    assert resume.returncode == 2 and "Traceback" not in stderr
    what, fix = {"missing": ("no sweep named 'tiny'", "--storage"),
                 "truncated-tuner": ("tuner.pkl is unreadable", "--restart"),
                 "other-store": ("is tracked at", "--tracking-uri")}[damage]
    assert what in stderr and fix in stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
