"""The command line through a real subprocess: exit codes, messages, nothing written."""

from __future__ import annotations

import pytest

from tests.conftest import run_sweeps as sweeps
from tests.conftest import tiny_spec


def written(path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name != "spec.yaml")


@pytest.mark.parametrize("command", ["validate", "run"])
def test_invalid_spec_exits_2_naming_the_field_and_writes_nothing(command, tmp_path,
                                                                  write_spec):
    spec = write_spec(tiny_spec(grid__width=[0, 4]))
    result = sweeps(command, spec, cwd=tmp_path)
    assert result.returncode == 2
    assert "grid.width[0]" in result.stderr and "Traceback" not in result.stderr
    assert written(tmp_path) == []


def test_invalid_set_exits_2_before_anything_starts(tmp_path, write_spec):
    spec = write_spec(tiny_spec())
    result = sweeps("run", spec, "--set", "synthetic.lr=-1", cwd=tmp_path)
    assert result.returncode == 2 and "synthetic.lr" in result.stderr
    result = sweeps("run", spec, "--set", "synthetic.lr", cwd=tmp_path)
    assert result.returncode == 2 and "expected key=value" in result.stderr
    assert written(tmp_path) == []


def test_unknown_flag_exits_2(tmp_path):
    result = sweeps("run", "x.yaml", "--colour", "red", cwd=tmp_path)
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


def test_gpu_spec_on_a_machine_without_gpus_exits_2(tmp_path, write_spec):
    spec = write_spec(tiny_spec(resources={"gpu": 1}))
    result = sweeps("run", spec, cwd=tmp_path)
    assert result.returncode == 2 and "resources.gpu=1" in result.stderr
    assert written(tmp_path) == []


def test_unreachable_tracking_uri_exits_2(tmp_path, write_spec):
    spec = write_spec(tiny_spec())
    result = sweeps("run", spec, "--tracking-uri", "http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 2 and "cannot be reached" in result.stderr
    assert written(tmp_path) == []


def test_a_sweep_with_state_is_refused_before_a_new_store_is_made(tmp_path, write_spec):
    # A new sqlite store is made while Ray starts (it holds nothing to check); the sweep's
    # own saved state is still checked before either.
    spec = write_spec(tiny_spec())
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "sweep.yaml").write_text("spec: {}\n")
    result = sweeps("run", spec, "--storage", tmp_path / "runs",
                    "--tracking-uri", f"sqlite:///{tmp_path}/new.db", cwd=tmp_path)
    assert result.returncode == 2 and "sweeps resume tiny" in result.stderr
    assert "Traceback" not in result.stderr
    assert written(tmp_path) == ["runs"]  # no new.db


def test_validate_prints_grid_size_and_resources(tmp_path, write_spec):
    spec = write_spec(tiny_spec(grid__seed=[0, 1, 2]))
    result = sweeps("validate", spec, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "12 points = 2 width x 2 frequency x 1 task x 3 seed" in result.stdout
    assert "trials    2" in result.stdout and "1 CPU" in result.stdout
    assert written(tmp_path) == []


def test_validate_of_a_search_says_how_many_points_it_trains_not_the_grids_trials(tmp_path,
                                                                                 write_spec):
    spec = write_spec(tiny_spec(search="critical_width"))
    result = sweeps("validate", spec, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "search    critical_width, one point per trial: trains at most" in result.stdout
    assert "if the trainable's predicted N*(f) holds" in result.stdout  # the theory's
    assert "trials    " not in result.stdout  # the grid's packed trials would not all run
    uniform = sweeps("validate", spec, "--set", "search_prior=uniform", cwd=tmp_path)
    assert uniform.returncode == 0 and "predicted" not in uniform.stdout


def test_status_of_unknown_sweep_exits_2(tmp_path):
    from tracking.runs import connect

    connect(f"sqlite:///{tmp_path}/m.db")  # a store without that sweep
    result = sweeps("status", "nope", "--tracking-uri", f"sqlite:///{tmp_path}/m.db",
                    cwd=tmp_path)
    assert result.returncode == 2 and "no sweep named 'nope'" in result.stderr


@pytest.mark.parametrize("command", [["status", "demo"], ["curves", "demo"],
                                     ["registry", "list"], ["registry", "show", "demo"],
                                     ["fit", "demo"]])
@pytest.mark.parametrize("uri", [None, "sqlite:///nowhere/x.db"])
def test_read_only_commands_never_create_a_tracking_database(command, uri, tmp_path):
    """Run in the wrong folder (the default sqlite:///mlflow.db), or given a path that does
    not exist: exit 2 with the fix, and no database (nor folder) appears."""
    flags = [] if uri is None else ["--tracking-uri", uri]
    result = sweeps(*command, *flags, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": ""})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no MLflow database" in result.stderr and "run from the folder of the sweep" \
        in result.stderr and "--tracking-uri" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_set_errors_name_the_flag_and_the_nearest_field(tmp_path, write_spec):
    spec = write_spec(tiny_spec())
    result = sweeps("validate", spec, "--set", "grid.width=0", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: invalid --set:\n  --set grid.width=0: grid.width[0]")
    assert str(spec) not in result.stderr  # the file is not to blame
    result = sweeps("validate", spec, "--set", "synthetic.stpes=3", cwd=tmp_path)
    assert result.returncode == 2
    assert "--set synthetic.stpes=3: synthetic.stpes: unknown field; did you mean " \
           "'synthetic.steps'?" in result.stderr


def test_set_promotes_a_scalar_and_a_comma_list_where_a_list_is_expected(tmp_path, write_spec):
    import json

    result = sweeps("validate", write_spec(tiny_spec()), "--set", "grid.width=4", "--set",
                    "grid.seed=1,2", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    points = {(p["params"]["width"], p["params"]["seed"]) for p in
              json.loads(result.stdout)["points"]}
    assert points == {("4", "1"), ("4", "2")}


def test_a_preset_runs_by_name_from_any_folder_and_a_typo_gets_the_nearest(tmp_path):
    result = sweeps("validate", "paper-synthetic", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("paper-synthetic: valid synthetic sweep")
    result = sweeps("validate", "dmeo", cwd=tmp_path)
    assert result.returncode == 2 and "did you mean 'demo'?" in result.stderr
    assert written(tmp_path) == []


def test_version(tmp_path):
    from importlib.metadata import version

    result = sweeps("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == f"sweeps {version('scaling-sweeps')}\n"


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`sweeps validate demo --format json | head -0`: the reader is gone before the first
    write (a pipe whose reading end is closed), so the write fails every time."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "sweeps", "validate", "demo", "--format",
                                 "json"], cwd=tmp_path, stdout=write, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                                timeout=120)
    finally:
        os.close(write)
    assert result.returncode == 141 and result.stderr == ""
