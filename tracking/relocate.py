"""A project folder moved or renamed keeps its artifacts.

With a sqlite store, MLflow records every artifact location as an absolute path: the
experiment's (`<folder>/mlartifacts/<sweep>`, beside the database, `runs.artifact_location`),
each run's, each logged model's and each registered version's. Move the folder and every plot
and model points at the old place. The database and `mlartifacts/` move together, so the fix
is a prefix: where an experiment's recorded folder is gone and the same sweep's folder sits
beside the database, the old project folder is replaced by the new one in every recorded
location. `tracking.runs.connect` does it before any command writes; read-only commands map
the paths in memory (`roots`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

ARTIFACTS = "mlartifacts"
COLUMNS = [("experiments", "artifact_location"), ("runs", "artifact_uri"),
           ("logged_models", "artifact_location"), ("model_versions", "source"),
           ("model_versions", "storage_location")]


def roots(db: sqlite3.Connection, db_path: Path) -> dict[str, str]:
    """Old project folder -> the database's folder, for each moved one (usually none)."""
    here = db_path.resolve().parent
    moved = {}
    for name, location in db.execute("SELECT name, artifact_location FROM experiments"):
        path = Path(location or "")
        if path.parent.name != ARTIFACTS or path.name != name or path.exists():
            continue
        old = path.parent.parent
        if old != here and (here / ARTIFACTS / name).is_dir():
            moved[str(old)] = str(here)
    return moved


def mapped(location: str, moved: dict[str, str]) -> str:
    """`location` (a path or file: URI) with a moved project folder replaced."""
    for old, new in moved.items():
        for prefix in (old + "/", "file://" + old + "/"):
            if location.startswith(prefix):
                return location.replace(old, new, 1)
    return location


def relocate(db_path: Path) -> dict[str, str]:
    """Rewrite the recorded artifact locations of a moved project folder; what was moved."""
    with sqlite3.connect(db_path) as db:
        try:
            moved = roots(db, db_path)
        except sqlite3.DatabaseError:  # not an MLflow database (yet): MLflow will say so
            return {}
        for old, new in moved.items():
            for table, column in COLUMNS:
                for prefix in (old + "/", "file://" + old + "/"):
                    db.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                        f"WHERE substr({column}, 1, ?) = ?",
                        (prefix.replace(old, new, 1), len(prefix) + 1, len(prefix), prefix))
    return moved
