"""Folders built once and reused: task sets, the embedded corpus, reference scans.

A folder is built under a temporary name beside its final path and renamed into place when
complete, so several builders at once (Ray workers on one node) never see half a folder, the
first rename wins, and a crash leaves nothing behind that looks finished.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

ENV = "SWEEPS_CACHE"


def cache_root() -> Path:
    """`$SWEEPS_CACHE`, else ~/.cache/scaling-sweeps."""
    return Path(os.environ.get(ENV) or Path.home() / ".cache" / "scaling-sweeps")


def build_once(path: Path, build: Callable[[Path], None]) -> Path:
    """`path`, running `build(folder)` to fill it first if it does not exist yet."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / f".{path.name}.{uuid.uuid4().hex}.partial"
    try:
        partial.mkdir()
        build(partial)
        try:
            os.rename(partial, path)
        except OSError:
            if not path.exists():
                raise  # not a lost race: a real error
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return path
