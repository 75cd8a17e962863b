"""`sweeps run` end to end: real Ray Tune and Train, real MLflow on a temporary sqlite."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from sweeps import packing
from sweeps.cli import main
from sweeps.plan import plan as plan_of
from sweeps.spec import validate
from tests.conftest import REPO, run_sweeps, tiny_spec
from trainables.points import unpack
from tracking.curves import Row
from tracking.layout import FEATURE_COLUMNS, FEATURE_STEPS, PART, tag_seconds, trial_name
from tracking.report.synthetic_claims import feature_steps, utilities

STATE_METRICS = ["loss", "model_loss", "rare/loss", "rare/model_loss", "rare/alignment",
                 "rare/learned"]  # of the state: at every logged step, 0 included
STEP_METRICS = ["interference/frequent_norm", "rare/alignment_push",
                "rare/alignment_pull"]  # of the step that led there, at log steps
CONTRACT_METRICS = STATE_METRICS + STEP_METRICS


def chart_sections(metric_keys) -> list[str]:
    """MLflow's run page groups metric charts by the key's first path component (unprefixed
    keys in one section first, the rest by name): the sections in the order a person sees."""
    return sorted({key.split("/")[0] if "/" in key else "" for key in metric_keys})


def check_feature_steps(client, run, last: int) -> None:
    """The features' learning steps: one table artifact, no per-feature metrics, so the run's
    first chart section is its losses. Its utilities are the report's own computation from
    the params; a converged population run represents the top-`width` utilities (the
    theory's optimum), so those were all learned, at a step it trained."""
    metrics = run.data.metrics
    assert not [key for key in metrics if key.startswith("feature_step")]
    first = [key for key in metrics if "/" not in key]
    assert chart_sections(metrics)[0] == "" and {"loss", "model_loss"} <= set(first)
    run_id, params = run.info.run_id, run.data.params
    table = json.loads((Path(client.download_artifacts(run_id, FEATURE_STEPS, tempfile.mkdtemp()))
                        ).read_text())
    assert table["columns"] == list(FEATURE_COLUMNS) and len(table["data"]) == 16
    row = Row(key="", run_id=run_id, state="FINISHED", step=last, params=params,
              trainable="synthetic", tables={FEATURE_STEPS: table})
    steps, utility = feature_steps(row), utilities(params)
    got = np.array([[u for k, j, u, _ in table["data"] if k == kk] for kk in range(4)])
    np.testing.assert_allclose(got, utility, rtol=1e-5)
    top = np.argsort(-utility.ravel())[:int(params["width"])]
    assert (steps.ravel()[top] >= 0).all() and (steps <= last).all(), run.data.tags["trial_key"]


def check_parent_and_children(client, runs, spec_path, planned: dict) -> None:
    """CONTRACTS 4: one parent run for the sweep holding its spec, plan and code version,
    every grid point a child named for a person, started when its training started, tagged
    with its trial: a pack, or part of one where the pack was costlier than the mean pack
    (w12's here)."""
    spec = validate(yaml.safe_load(spec_path.read_text()))
    trials = packing.trials(spec, plan_of(spec))
    assert any(PART in axes for axes in trials) and all(axes["width"] == 12 for axes in trials
                                                        if PART in axes)
    trial_of = {p.key: trial_name(axes) for axes in trials for p in unpack(axes)}
    experiment = runs[0].info.experiment_id
    (parent,) = client.search_runs([experiment], "tags.kind = 'sweep'")
    assert parent.info.run_name == "tiny" and parent.info.status == "FINISHED"
    with tempfile.TemporaryDirectory() as folder:
        stored = Path(client.download_artifacts(parent.info.run_id, "", folder))
        assert yaml.safe_load((stored / "spec.yaml").read_text()) == \
            validate(yaml.safe_load(spec_path.read_text())).model_dump(mode="json")
        assert json.loads((stored / "plan.json").read_text()) == planned
    assert parent.data.tags["code.version"] == "0.1.0"
    if (REPO / ".git").exists():  # a checkout: which commit ran
        assert len(parent.data.tags["mlflow.source.git.commit"]) == 40
    assert parent.data.metrics["points/finished"] == 8 == parent.data.metrics["points/total"]
    assert parent.data.metrics["points/failed"] == 0
    # the driver's heartbeat: a watcher tells a killed driver's sweep by it going stale
    # (ISO 8601, to the second)
    heard = tag_seconds(parent.data.tags["heartbeat"])
    assert parent.info.start_time // 1000 <= heard <= parent.info.end_time / 1000
    description = client.get_experiment(experiment).tags
    assert "8 grid points" in description["mlflow.note.content"]
    assert parent.data.params["grid.points"] == "8" and "grid.width" in parent.data.params
    assert description["mlflow.experimentKind"] == "custom_model_development"
    for run in runs:
        p = run.data.params
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.run_name == f"w{p['width']} f={p['frequency']} complex s{p['seed']}"
        assert run.data.tags["trial"] == trial_of[run.data.tags["trial_key"]]
        assert parent.info.start_time <= run.info.start_time <= run.info.end_time
    # Each queued trial's runs start when it starts training, after the one before ended: a
    # run's duration is its training's, not its wait in the queue. Costliest first: w12's.
    by_trial = {}
    for run in runs:
        by_trial.setdefault(run.data.tags["trial"], []).append(run.info)
    order = sorted(by_trial, key=lambda name: min(i.start_time for i in by_trial[name]))
    assert order[-1] == "w2 complex" and len(order) > 2
    for before, after in zip(order, order[1:]):
        assert min(i.start_time for i in by_trial[after]) >= \
            max(i.end_time for i in by_trial[before])


def run_sweep(spec_path, tmp_path, tracking_uri, *extra):
    return main(["run", str(spec_path), "--storage", str(tmp_path / "runs"),
                 "--tracking-uri", tracking_uri, *extra])


def trial_runs(tracking_uri, name):
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, "the experiment is named after the sweep"
    return client, client.search_runs([experiment.experiment_id], "tags.kind = 'trial'")


@pytest.mark.slow
def test_run_lands_in_mlflow_as_the_contract_says(ray_cluster, tmp_path, write_spec,
                                                  tracking_uri, capsys):
    # One trial at a time: the others wait in the queue while one trains. A pack costlier
    # than the mean is split (`pack_limit: 1`; the default never splits).
    spec = write_spec(tiny_spec(grid__seed=[0, 1], synthetic__pack_limit=1.0,
                                resources={"max_concurrent_trials": 1}))
    assert main(["validate", str(spec), "--format", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    plan = {p["key"]: p["params"] for p in planned["points"]}
    assert run_sweep(spec, tmp_path, tracking_uri) == 0
    shown = capsys.readouterr().out  # no terminal here: plain progress lines
    assert "8/8 grid points finished, 0 running, 0 failed" in shown
    assert "+ w12 f=0.2 complex part 1/3: 2 points in" in shown
    assert "workflowType=machine_learning" in shown
    client, runs = trial_runs(tracking_uri, "tiny")
    check_parent_and_children(client, runs, spec, planned)
    # One trial slot: the later trials ran in the first one's process (Tune's reuse_actors),
    # which had imported torch, Ray Train and MLflow already.
    pids = {json.loads(path.read_text().splitlines()[-1])["pid"]
            for path in (tmp_path / "runs" / "tiny").glob("*/result.json")}
    assert len(pids) == 1
    # What each run records is the plan, and what its worker ran: metrics every log_every
    # until the step it converged at (a `converged` metric there), within its cap `steps`.
    assert {r.data.tags["trial_key"]: r.data.params for r in runs} == plan
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        (stop,) = client.get_metric_history(run.info.run_id, "converged")
        every, last = int(run.data.params["log_every"]), stop.step
        assert stop.value == 1.0 and 0 < last < int(run.data.params["steps"])
        assert steps == sorted(set(range(0, last, every)) | {last}), run.data.tags["trial_key"]
    keys = sorted(r.data.tags["trial_key"] for r in runs)
    assert keys == sorted(f"width={w},frequency={f},task=complex,seed={s}"
                          for w in (2, 12) for f in (0.2, 0.02) for s in (0, 1))
    for run in runs:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert run.info.status == "FINISHED"
        assert tags["sweep"] == "tiny" and tags["trainable"] == "synthetic"
        assert tags["trial_key"] == ",".join(f"{a}={params[a]}"
                                             for a in ("width", "frequency", "task", "seed"))
        assert params["tasks"] == "4" and params["complexity.complex"] == "0.5"
        assert params["mode"] == "population" and int(params["steps"]) > 0
        last = int(run.data.tags["last_step"])
        for name in CONTRACT_METRICS + [f"task_loss/{k}" for k in range(4)]:
            history = client.get_metric_history(run.info.run_id, name)
            steps = [m.step for m in history]
            every = int(params["log_every"])  # step measures start at step 1
            assert steps[0] == 0 if name not in STEP_METRICS else 1 <= steps[0] <= max(2, every), \
                (name, steps[:3], every)
            assert max(steps) == last or name in STEP_METRICS and max(steps) > last - every
            assert len(set(steps)) == len(steps), f"{name} logged a step twice"
        assert "rare/injected" not in metrics  # population mode draws no batch
        assert not [m for m in metrics if m.startswith("interference/cos")]  # nor cosines
        assert metrics["rare/loss"] == metrics["task_loss/3"]
        assert metrics["rare/model_loss"] == pytest.approx(metrics["rare/loss"], abs=0.02)
        assert metrics["theory/critical_width_first"] <= metrics["theory/critical_width"]
        check_feature_steps(client, run, last)
        assert metrics["rare/learned"] == float(metrics["rare/loss"] <= 0.5)
        assert metrics["rare/learned"] == metrics["theory/rare/learned"], tags["trial_key"]
    learned = {r.data.tags["trial_key"]: r.data.metrics["rare/learned"] for r in runs}
    assert learned["width=2,frequency=0.02,task=complex,seed=0"] == 0.0
    assert learned["width=12,frequency=0.2,task=complex,seed=0"] == 1.0
    capsys.readouterr()

    assert main(["status", "tiny", "--tracking-uri", tracking_uri]) == 0
    status = capsys.readouterr().out
    assert status.count("FINISHED") == 8 and runs[0].info.run_id in status

    assert main(["curves", "tiny", "--tracking-uri", tracking_uri, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and all(set(CONTRACT_METRICS) <= set(r["metrics"]) for r in rows)
    assert main(["curves", "tiny", "--tracking-uri", tracking_uri, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 8 and {"rare/loss", "width", "state"} <= set(table[0])

    # Running the same name again would mix two sweeps' runs: refused unless restarted.
    assert run_sweep(spec, tmp_path, tracking_uri) == 2
    assert "sweeps resume tiny" in capsys.readouterr().err


@pytest.mark.slow
def test_two_workers_fit_on_the_two_core_default(ray_cluster, tmp_path, write_spec,
                                                 tracking_uri):
    spec = write_spec(tiny_spec(grid__width=[6], resources={"workers": 2, "cpu": 1},
                                synthetic__pack=["frequency", "task", "seed"]))
    assert run_sweep(spec, tmp_path, tracking_uri) == 0
    client, runs = trial_runs(tracking_uri, "tiny")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:  # one point per worker, each logged by the worker that trained it
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        # It stops once converged (its last logged step, `converged` there), within its cap.
        assert steps[0] == 0 and max(steps) <= int(run.data.params["steps"])
        assert run.data.metrics["converged"] == 1.0


@pytest.mark.slow
def test_worker_group_ranks_that_finish_apart_or_have_no_point_keep_in_step(
        tmp_path, write_spec, tracking_uri):
    # Three workers, two grid points: rank 2 has none, rank 0's (f=0.2) stops at step 228
    # and rank 1's (f=0.02) at 1824, each reporting at every metric point (500 steps apart).
    # Train's report is a barrier across ranks: rank 2 used to fail the trial (IndexError,
    # on every retry) and the others' unequal reports hung it. A subprocess: a hang fails.
    spec = write_spec(tiny_spec(grid__width=[12], resources={"workers": 3, "cpu": 0.5},
                                synthetic__checkpoint_every_s=0, synthetic__log_every=500))
    done = run_sweeps("run", spec, "--storage", tmp_path / "runs", "--tracking-uri",
                      tracking_uri, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # No C++ ERROR line of Ray's on the console: Train's preemption watcher, off in the
    # embedded Ray, printed one ("PreemptionWatcher ... max_restarts > 0") in every such sweep.
    assert not re.search(r"^\[[^]]* E \d+ \d+\]", done.stdout + done.stderr, re.M)
    client, runs = trial_runs(tracking_uri, "tiny")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert all(r.outputs.model_outputs for r in runs)  # each point's trained model
    reports = sorted(len(client.get_metric_history(r.info.run_id, "loss")) for r in runs)
    assert reports == [2, 5]  # each rank's own metric points, each one a report
