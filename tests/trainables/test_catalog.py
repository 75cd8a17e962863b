"""Trainables are found by name through entry points: the built-ins, and a third one from the
tests folder registered the way a user's package would, run end to end by `sweeps run`."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import REPO, run_sweeps
from trainables import catalog
from trainables.contract import Trainable


def test_the_built_ins_are_registered_as_entry_points():
    assert {"synthetic", "olmo"} <= set(catalog.names())
    for name in ("synthetic", "olmo"):
        trainable = catalog.get(name)
        assert isinstance(trainable, Trainable) and trainable.name == name


def test_an_unknown_trainable_is_a_user_error_naming_the_registered_ones():
    with pytest.raises(catalog.UnknownTrainable, match="registered: .*olmo.*synthetic"):
        catalog.get("nope")


@pytest.fixture
def plugin(tmp_path):
    """A distribution's metadata on PYTHONPATH that registers tests.plugin.counting, as
    `pip install` of a user's package would: no file of the project changes."""
    dist = tmp_path / "site" / "counting_trainable-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: counting-trainable\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{catalog.GROUP}]\ncounting = tests.plugin.counting:COUNTING\n")
    return {"PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path / 'site'}"}


@pytest.mark.slow
def test_a_third_trainable_from_the_tests_folder_runs_end_to_end(plugin, tmp_path):
    spec = tmp_path / "plug.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "plug", "trainable": "counting",
        "grid": {"width": [1, 4], "frequency": [0.5], "task": ["up", "down"]},
        "counting": {"steps": 3}}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    flags = ["--tracking-uri", uri, "--storage", tmp_path / "runs"]

    planned = run_sweeps("validate", spec, "--format", "json", cwd=tmp_path, env=plugin)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["trainable"] == "counting" and plan["trials"] == 4

    ran = run_sweeps("run", spec, *flags, cwd=tmp_path, env=plugin)
    assert ran.returncode == 0, ran.stderr
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("plug").experiment_id],
                              "tags.kind = 'trial'")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    by_key = {r.data.tags["trial_key"]: r for r in runs}
    for point in plan["points"]:
        run = by_key[point["key"]]
        assert run.data.params == point["params"]  # what it recorded is what was planned
        rate = float(point["params"]["rate"])
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [m.step for m in history] == [0, 1, 2, 3]  # ... and what the worker ran
        assert history[-1].value == pytest.approx(1 / (1 + 3 * rate))
    assert "loss" in ran.stdout  # the CLI's table shows the trainable's columns

    # Without the package, the name is refused like any bad spec field.
    missing = run_sweeps("validate", spec, cwd=tmp_path)
    assert missing.returncode == 2 and "trainable: 'counting' is not a registered" \
        in missing.stderr
