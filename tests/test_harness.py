"""The test run's own exit (tests/conftest.py leaves before Python's teardown): CI must still
see pytest's exit status, failures and "no tests" included, with the summary printed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("body, status, summary", [
    ("def test_ok():\n    assert True\n", 0, "1 passed"),
    ("def test_broken():\n    assert 1 == 2\n", 1, "1 failed"),
    ("def helper():\n    pass\n", 5, "no tests ran"),
])
def test_a_run_exits_with_pytests_status_and_its_summary(tmp_path, body, status, summary):
    (tmp_path / "test_case.py").write_text(body)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_case.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == status, result.stdout + result.stderr
    assert summary in result.stdout.splitlines()[-1], result.stdout
