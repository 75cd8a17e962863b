"""An earlier commit's tree beside this checkout, for benches that compare the two."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def checkout(commit: str, folder: Path) -> Path:
    """`commit`'s files in `folder`/before (run from there with PYTHONPATH pointing at it)."""
    before = folder / "before"
    before.mkdir()
    subprocess.run(f"git -C {REPO} archive {commit} | tar -x -C {before}", shell=True,
                   check=True)
    return before
