"""The critical-width search against the full grid on one spec (default the demo): both run to
the end, one after the other, then their N*(f) tables compared row by row and the search's share
of the grid's point-steps (the sum of every trained point's last step) and wall time printed,
beside the floor: the share of the corners of the grid's own verdicts
(`sweeps.critical_width.corners`), which every correct search trains whatever its order.

    .venv/bin/python -m bench.critical_width [--spec sweeps/presets/demo.yaml] [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sweeps.critical_width import Geometry, conflicts, corners
from sweeps.spec import load_spec
from trainables import catalog
from tracking.curves import critical_table, finished
from tracking.query import open_reader, read_rows


def run(spec: str, out: Path, name: str, search: str) -> tuple[float, list]:
    uri = f"sqlite:///{out / name}.db"
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "sweeps", "run", spec, "--name", name, "--set",
                    f"search={search}", "--storage", str(out / "runs"), "--tracking-uri", uri],
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start, read_rows(open_reader(uri), name)


def floor(rows: list, measure, geometry: Geometry) -> tuple[int, int] | None:
    """The corners of the grid's verdicts, per (task, seed): their count and point-steps; None
    where a point did not finish or the verdicts are not monotone (no staircase, no corners)."""
    by_key = {r.key: r for r in finished(rows)}
    shape = (len(geometry.widths), len(geometry.frequencies))
    points = steps = 0
    for chain in range(len(geometry.chains)):
        at = {cell: by_key.get(geometry.point(chain, cell).key) for cell in np.ndindex(shape)}
        if None in at.values():
            return None
        truth = np.zeros(shape, bool)
        for cell, row in at.items():
            truth[cell] = measure.learned(row.metrics[measure.score])
        if conflicts(dict(np.ndenumerate(truth))):
            return None
        found = corners(truth)
        points, steps = points + len(found), steps + sum(at[c].step for c in found)
    return points, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="sweeps/presets/demo.yaml")
    parser.add_argument("--out", default=None, help="folder for both sweeps (default: temp)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-critical-"))
    grid_s, grid = run(args.spec, out, "grid", "grid")
    search_s, searched = run(args.spec, out, "searched", "critical_width")
    measure = catalog.get(grid[0].trainable).measure(grid[0].params)
    full, found = critical_table(grid, measure), critical_table(searched, measure)
    print(f"{'task':>8} {'seed':>4} {'frequency':>9} {'N* grid':>8} {'N* search':>9}")
    for key in sorted(full):
        print(f"{key[0]:>8} {key[1]:>4} {key[2]:>9g} {str(full[key]):>8} {str(found[key]):>9}")
    steps = [sum(r.step for r in finished(rows)) for rows in (grid, searched)]
    trained = len(finished(searched))
    print(f"same N*(f) in every row: {full == found}")
    print(f"trained points: {trained} of {len(grid)} ({trained / len(grid):.1%})")
    print(f"point-steps: {steps[1]} of {steps[0]} ({steps[1] / steps[0]:.1%})")
    print(f"wall time: {search_s:.0f} s of {grid_s:.0f} s ({search_s / grid_s:.1%})")
    least = floor(grid, measure, Geometry.of(load_spec(args.spec).grid))
    print("floor (the grid's corners, trained by every correct search): " + (
        "none: a grid point did not finish, or its verdicts are not monotone" if least is None else
        f"{least[0]} points, {least[1]} point-steps ({least[1] / steps[0]:.1%})"))


if __name__ == "__main__":
    main()
