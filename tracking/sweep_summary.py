"""What a sweep's parent run says about the sweep once it ends or is fitted, so that MLflow opens
on the result and not on raw tags:
- a learning-curve figure, `plots/learning-curves.png` and `.pdf`: the rare loss against step,
  one line per width (seeds of a width in its colour), one panel per task and frequency;
- a description (`mlflow.note.content`, atop the run's page) with the headline: per task and
  frequency, the narrowest width that learned the rare task, and the fit's N*(f) where the
  sweep was fitted;
- the time of this summary as an ISO 8601 tag (`summarised_at`).
The grid axes are the run's params from its start (`tracking.curves.grid_params`).
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tracking.curves import Measure, Row, finished, width_order
from tracking.layout import LEARNING_CURVES, NOTE, PLOTS, iso_time
from tracking.query import Reader, Sweep, sweep_rows
from tracking.style import STYLE, save

PANEL = (4.2, 3.2)  # inches per (task, frequency) panel


def record_summary(client, reader: Reader, sweep: Sweep, measure: Measure, fit=None) -> None:
    """The parent run's figure, description and summary time (module docstring); `fit` a
    `SweepFit` or None. Nothing for a sweep without a parent run."""
    from mlflow.entities import RunTag

    if sweep.parent is None:
        return
    parent = sweep.parent.run_id
    rows = sweep_rows(sweep)
    histories = {r.run_id: reader.history(r.run_id, measure.loss) for r in finished(rows)}
    with tempfile.TemporaryDirectory() as folder:
        if learning_curves(rows, histories, measure.loss, Path(folder)):
            # The run's location as the store has it now, not MLflow's per-process cache of
            # it: the parent run is written again after each resume and fit, and a moved
            # project folder (`tracking.relocate`) would otherwise get the old path.
            from mlflow.store.artifact.artifact_repository_registry import \
                get_artifact_repository

            get_artifact_repository(client.get_run(parent).info.artifact_uri).log_artifacts(
                folder, PLOTS)
    client.log_batch(parent, tags=[RunTag(NOTE, headline(sweep.name, rows, measure, fit)),
                                   RunTag("summarised_at", iso_time(time.time()))])


def learned_from(rows: list[Row], measure: Measure) -> dict[tuple[str, float], str | None]:
    """(task, frequency) -> the narrowest width at which every finished seed learned the
    rare task (None: no width did)."""
    by_curve: dict[tuple, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for row in finished(rows):
        if measure.score in row.metrics:
            p = row.params
            by_curve[(p["task"], float(p["frequency"]))][p["width"]].append(
                measure.learned(row.metrics[measure.score]))
    return {key: next((w for w in sorted(by_width, key=width_order) if all(by_width[w])), None)
            for key, by_width in sorted(by_curve.items(), key=lambda kv: (kv[0][0], -kv[0][1]))}


def headline(name: str, rows: list[Row], measure: Measure, fit=None) -> str:
    """The parent run's description (Markdown)."""
    done = len(finished(rows))
    rule = f"{measure.score} {'<=' if measure.lower_is_better else '>='} {measure.threshold:g}"
    lines = [f"**{name}**: {done} of {len(rows)} grid points finished."]
    learned = learned_from(rows, measure)
    if learned:
        widest = {task: max((r.params["width"] for r in rows if r.params["task"] == task),
                            key=width_order) for task, _ in learned}
        lines.append(f"Narrowest width that learned the rare task ({rule}, every seed):")
        lines += [f"- {task}, f={frequency:g}: " + (f"width {width}" if width is not None else
                                                     f"none up to width {widest[task]}")
                  for (task, frequency), width in learned.items()]
    if fit is not None:
        lines.append(f"Fit ({fit.finished} of {fit.total} points): critical width N*")
        lines += [f"- {c.curve.task}, f={c.curve.frequency:g}: "
                  + (f"N* = {c.critical.width:.3g}" if c.critical.width is not None
                     else "not reached") + f" ({c.regime})" for c in fit.curves]
        lines += [f"- {law.task}: N*(f) ~ f^-{law.measured.beta:.2f}" for law in fit.laws
                  if law.measured is not None]
    lines.append(f"Learning curves: `{PLOTS}/{LEARNING_CURVES}.png` ({measure.loss} against "
                 "step, a line per width); the grid points are this run's children.")
    return _markdown(lines)


def _markdown(lines: list[str]) -> str:
    """Paragraphs, with list items kept together."""
    out = []
    for line in lines:
        out.append(("\n" if line.startswith("- ") else "\n\n") + line if out else line)
    return "".join(out)


def learning_curves(rows: list[Row], histories: dict[str, list[tuple[int, float]]],
                    metric: str, folder: Path) -> list[Path]:
    """The figure (module docstring) into `folder`; no files when nothing has a history."""
    panels: dict[tuple, list[Row]] = defaultdict(list)
    for row in finished(rows):
        if histories.get(row.run_id):
            panels[(row.params["task"], float(row.params["frequency"]))].append(row)
    if not panels:
        return []
    keys = sorted(panels, key=lambda k: (k[0], -k[1]))
    widths = sorted({r.params["width"] for rs in panels.values() for r in rs}, key=width_order)
    colours = dict(zip(widths, plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(widths)))))
    columns = 2 if len(keys) == 4 else min(len(keys), 3)
    grid = (-(-len(keys) // columns), columns)
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(*grid, figsize=(PANEL[0] * grid[1], PANEL[1] * grid[0]),
                                    squeeze=False, sharey=True, constrained_layout=True)
        for ax, key in zip(axes.flat, keys):
            shown = set()
            for row in sorted(panels[key], key=lambda r: width_order(r.params["width"])):
                steps, values = zip(*histories[row.run_id])
                w = row.params["width"]
                ax.plot(np.maximum(steps, 1), values, color=colours[w], lw=1.2,
                        label=f"width {w}" if w not in shown else None)
                shown.add(w)
            ax.set_xscale("log")
            ax.set_title(f"{key[0]} rare task, f={key[1]:g}")
            ax.set_xlabel("step")
            ax.set_ylabel(metric)
            ax.legend(loc="best", framealpha=0.9)
        for ax in list(axes.flat)[len(keys):]:
            ax.set_visible(False)
        return save(figure, folder, LEARNING_CURVES)
