"""One family of user errors, turned into a message and exit code 2 in one place."""

from __future__ import annotations

import pytest

from injection.errors import InjectionError
from sweeps.cli import main
from sweeps.errors import SpecError
from trainables.catalog import UnknownTrainable
from tracking.errors import TrackingError, UnknownSweep, UserError


@pytest.mark.parametrize("error", [SpecError, InjectionError, TrackingError, UnknownSweep,
                                   UnknownTrainable])
def test_every_package_raises_one_family(error):
    assert issubclass(error, UserError)


@pytest.mark.parametrize("argv, message", [
    (["injection", "plan", "--frequency", "0.5", "--seq-len", "8", "--batch-size", "2",
      "--batches", "1"], "above 1/seq-len"),  # injection's error
    (["status", "x", "--tracking-uri", "sqlite:///no/such.db"], "no MLflow database"),
    (["resume", "x", "--storage", "/no/such/folder"], "no sweep named 'x'"),
])
def test_the_cli_turns_each_into_one_message_and_exit_2(argv, message, capsys, tmp_path,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_an_unknown_trainable_in_a_spec_is_a_spec_error(write_spec, capsys):
    spec = write_spec({"name": "x", "trainable": "nope",
                       "grid": {"width": [1], "frequency": [0.1], "task": ["a"]}})
    assert main(["validate", str(spec)]) == 2
    assert "trainable: 'nope' is not a registered trainable" in capsys.readouterr().err
