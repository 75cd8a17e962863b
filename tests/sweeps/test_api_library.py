"""The Python API as a library a person explores: what `dir` and `help` show, docstrings that
say arguments, returns and an example, errors in the API's own words, typed params. No Ray,
no MLflow: the run-backed half is tests/sweeps/test_api.py."""

from __future__ import annotations

import inspect

import pytest

import sweeps
from sweeps import api
from tests.conftest import tiny_spec
from tracking.curves import typed
from tracking.errors import UserError


def test_dir_and_all_list_the_api_and_the_docstring_names_each_function():
    assert dir(sweeps) == sorted(sweeps.__all__) == sorted(sweeps.API)
    for name in sweeps.API:
        assert f"`{name}(" in sweeps.__doc__ and f"`{name}(" in api.__doc__
        assert getattr(sweeps, name) is getattr(api, name)
    with pytest.raises(AttributeError, match="the API is load, validate"):
        sweeps.runn  # noqa: B018


@pytest.mark.parametrize("name", ["load", "validate", "run", "resume", "status", "curves",
                                  "fit", "reproduce"])
def test_every_function_documents_arguments_returns_and_an_example(name):
    doc = inspect.getdoc(getattr(sweeps, name))
    for part in ("Args:", "Returns:", "Example:", ">>> "):
        assert part in doc, (name, part)
    for argument in inspect.signature(getattr(sweeps, name)).parameters:
        assert argument in doc, (name, argument)


def test_errors_name_the_api_arguments_not_the_cli_flags(tmp_path):
    with pytest.raises(UserError) as bad:
        sweeps.load(tiny_spec(), overrides=["synthetic.steps"])
    assert "overrides synthetic.steps:" in str(bad.value) and "--set" not in str(bad.value)
    with pytest.raises(UserError) as missing:
        sweeps.resume("nothing-here", storage=str(tmp_path / "runs"),
                      tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "--" not in str(missing.value) and "`storage`" in str(missing.value)
    assert not (tmp_path / "mlflow.db").exists()


def test_params_come_back_typed():
    got = typed({"width": "12", "frequency": "0.01", "task": "simple", "lr": "None",
                 "tiny": "1e-05", "size": "20M", "flag": "True", "seed": "0"})
    assert got == {"width": 12, "frequency": 0.01, "task": "simple", "lr": None, "tiny": 1e-05,
                   "size": "20M", "flag": True, "seed": 0}
    assert type(got["width"]) is int and type(got["frequency"]) is float


def test_the_documented_snippet_runs_a_new_sweep_and_deletes_nothing():
    page = (api.__file__.rsplit("/sweeps/", 1)[0]) + "/docs/reference/python-api.md"
    text = open(page).read()
    assert "restart=True" not in text.split("```python", 1)[1].split("```", 1)[0]


def test_the_command_line_keeps_naming_its_flags(capsys):
    from sweeps.cli import main

    assert main(["validate", "sweeps/presets/demo.yaml", "--set", "synthetic.steps"]) == 2
    err = capsys.readouterr().err
    assert "--set synthetic.steps:" in err and "overrides" not in err
