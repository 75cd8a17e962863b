"""The fit's pictures, drawn from a `SweepFit` alone, as PNG and PDF files (matplotlib, Agg).

- loss vs width: per task, the rare-task loss against width per frequency (log width), seeds'
  mean and spread, the fitted step L(N), and the theory's optimum at the same widths where
  the runs logged it (synthetic sweeps);
- phase diagram: per task, width x frequency coloured by the share of seeds that learned the
  rare task, with the measured critical widths (censored ones as arrows past the sweep's edge)
  and their power law, and the theory's;
- theory vs measured (synthetic sweeps): N*(f) beside the theory's, and every grid point's
  final rare loss against the optimum's.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from tracking.style import frequency_colours, save  # noqa: E402
from tracking.fit.sweep_fit import CurveFit, SweepFit  # noqa: E402

PANEL = (5.2, 4.2)  # inches per task panel


def write_plots(fit: SweepFit, folder: Path) -> list[Path]:
    """Draw every plot the fit has data for into `folder`, each as PNG and PDF; return the
    files."""
    folder.mkdir(parents=True, exist_ok=True)
    drawers = {"loss-vs-width": loss_vs_width, "phase-diagram": phase_diagram,
               "theory-vs-measured": theory_vs_measured}
    paths = []
    for name, draw in drawers.items():
        figure = draw(fit)
        if figure is not None:
            paths += save(figure, folder, name)
    return paths


def _panels(fit: SweepFit, columns: int | None = None, **kwargs):
    tasks = list(dict.fromkeys(c.curve.task for c in fit.curves))
    n = columns or len(tasks)
    figure, axes = plt.subplots(1, n, figsize=(PANEL[0] * n, PANEL[1]), squeeze=False,
                                layout="constrained", **kwargs)
    return figure, axes[0], tasks


def _frequency_colours(fit: SweepFit) -> dict[float, tuple]:
    return frequency_colours(c.curve.frequency for c in fit.curves)


def loss_vs_width(fit: SweepFit):
    figure, axes, tasks = _panels(fit, sharey=True)
    colours = _frequency_colours(fit)
    for ax, task in zip(axes, tasks):
        theory_drawn = False
        for c in fit.curves_of(task):
            sizes, colour = np.array(c.curve.sizes), colours[c.curve.frequency]
            ax.errorbar(sizes, c.curve.loss_mean, yerr=c.curve.loss_std, fmt="o", ms=4,
                        color=colour, capsize=2, label=f"f = {c.curve.frequency:g}")
            if c.step is not None:
                dense = np.geomspace(sizes.min(), sizes.max(), 200)
                ax.plot(dense, c.step(dense), color=colour, lw=1.2, alpha=0.8)
            theory = np.array(c.curve.theory_loss, dtype=float)
            if np.isfinite(theory).any():  # the optimum is a staircase: exact at each width
                ax.plot(sizes, theory, color=colour, ls=":", lw=1.2, drawstyle="steps-post")
                theory_drawn = True
        ax.axhline(fit.measure.threshold, color="grey", ls="--", lw=1)
        ax.set(xscale="log", title=f"task: {task}", xlabel="width N")
        _width_ticks(ax, fit)
        title = "frequency: data, fit" + (", theory (dotted)" if theory_drawn else "")
        ax.legend(fontsize=8, title=title, title_fontsize=8, loc="center left")
    axes[0].set_ylabel(f"final {fit.measure.loss} (dashed: learned threshold)")
    figure.suptitle(f"{fit.sweep}: rare-task loss vs width\n"
                    "fit: L(N) = low + (high - low) / (1 + (N / N_step)^s)")
    return figure


def phase_diagram(fit: SweepFit):
    figure, axes, tasks = _panels(fit, sharey=True)
    sizes = sorted({s for c in fit.curves for s in c.curve.sizes})
    frequencies = sorted({c.curve.frequency for c in fit.curves})
    learned = np.full((len(frequencies), len(sizes)), np.nan)
    mesh = None
    for ax, task in zip(axes, tasks):
        learned[:] = np.nan
        for c in fit.curves_of(task):
            row = frequencies.index(c.curve.frequency)
            for size, share in zip(c.curve.sizes, c.curve.learned(fit.measure)):
                learned[row, sizes.index(size)] = share
        ax.set_facecolor("white")  # grid points not finished (cividis has grey mid-scale)
        mesh = ax.pcolormesh(_edges(sizes), _edges(frequencies), np.ma.masked_invalid(learned),
                             cmap="cividis", vmin=0, vmax=1)  # colour-blind safe
        _critical_widths(ax, fit, task, frequencies)
        ax.set(xscale="log", yscale="log", title=f"task: {task}", xlabel="width N")
        _width_ticks(ax, fit)
        _ticks(ax.yaxis, frequencies, [f"{f:g}" for f in frequencies])
        ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    axes[0].set_ylabel("rare-task frequency f")
    figure.colorbar(mesh, ax=axes.tolist(), label="share of seeds that learned the rare task")
    figure.suptitle(f"{fit.sweep}: where the rare task is learned (blank: not finished)")
    return figure


def _critical_widths(ax, fit: SweepFit, task: str, frequencies: list[float]) -> None:
    """Measured N*(f) with its power law, and the theory's N*(f), on a width x f panel;
    a censored N* as an arrow at the sweep's edge, pointing to where it lies."""
    curves = fit.curves_of(task)
    measured = [(c.critical.width, c.curve.frequency) for c in curves
                if c.critical.width is not None]
    if measured:
        ax.plot(*zip(*measured), "D", color="#D55E00", mec="k", ms=6, label="measured N*")
    _censored(ax, curves, lambda c: c.curve.frequency)
    dense = np.geomspace(min(frequencies), max(frequencies), 50)
    law = next(t for t in fit.laws if t.task == task)
    if law.measured is not None:
        ax.plot(law.measured(dense), dense, "k-", lw=1.2,
                label=f"N* ~ f^-{law.measured.beta:.2f}")
    theory = [(c.curve.theory_critical, c.curve.frequency) for c in curves
              if c.curve.theory_critical is not None]
    if theory:
        ax.plot(*zip(*theory), "wo", mec="k", ms=6, label="theory N*")


def theory_vs_measured(fit: SweepFit):
    """None for sweeps without the synthetic theory's metrics."""
    if not any(c.curve.theory_critical is not None for c in fit.curves):
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(2 * PANEL[0], PANEL[1]),
                                         layout="constrained")
    markers = dict(zip(dict.fromkeys(c.curve.task for c in fit.curves), "osD^v"))
    for task, marker in markers.items():
        curves = fit.curves_of(task)
        f = np.array([c.curve.frequency for c in curves])
        theory = np.array([c.curve.theory_critical or np.nan for c in curves])
        left.plot(f, theory, "--", color="grey", lw=1)
        left.scatter(f, theory, marker=marker, facecolors="none", edgecolors="k",
                     label=f"{task}: theory")
        for c in curves:  # the bracket (last width not learning, first learning) and N*
            lo, hi = c.critical.below or np.nan, c.critical.above or np.nan
            left.plot([c.curve.frequency] * 2, [lo, hi], color="tab:blue", lw=3, alpha=0.35)
        measured = [(c.curve.frequency, c.critical.width) for c in curves
                    if c.critical.width is not None]
        if measured:
            left.scatter(*zip(*measured), marker=marker, color="tab:blue",
                         label=f"{task}: measured")
        _censored(left, curves, lambda c: c.curve.frequency, transpose=True)
        for c in curves:
            ok = [t is not None for t in c.curve.theory_loss]
            right.scatter(np.array(c.curve.theory_loss, dtype=float)[ok],
                          c.curve.loss_mean[ok], marker=marker, s=18, alpha=0.7,
                          color=_frequency_colours(fit)[c.curve.frequency])
        right.scatter([], [], marker=marker, color="k", label=task)
    for frequency, colour in _frequency_colours(fit).items():
        right.scatter([], [], marker="s", color=colour, label=f"f = {frequency:g}")
    left.set(xscale="log", yscale="log", xlabel="rare-task frequency f",
             ylabel="critical width N* (bar: swept widths around it)",
             title="critical width: measured vs theory")
    frequencies = sorted({c.curve.frequency for c in fit.curves})
    _ticks(left.xaxis, frequencies, [f"{f:g}" for f in frequencies])
    _width_ticks(left, fit, left.yaxis)
    left.legend(fontsize=8)
    right.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
    right.set(xlabel="theory: optimum's rare loss", ylabel=f"measured final {fit.measure.loss}",
              title="every grid point (colour: frequency)", xlim=(-0.03, 1.03),
              ylim=(-0.03, 1.03))
    right.legend(fontsize=8, loc="upper left")
    figure.suptitle(f"{fit.sweep}: theory vs measured")
    return figure


def _censored(ax, curves: list[CurveFit], frequency, transpose: bool = False) -> None:
    """N* outside the sweep: '>' past the widest width (never learned), '<' before the
    narrowest (always learned); on a (frequency, width) panel they point up and down."""
    for c in curves:
        if c.critical.width is not None:
            continue
        never = c.critical.below is not None
        edge = c.critical.below if never else c.critical.above
        if edge is None:
            continue
        marker = ("^" if never else "v") if transpose else (">" if never else "<")
        xy = (frequency(c), edge) if transpose else (edge, frequency(c))
        ax.plot(*xy, marker=marker, color="k", ms=7, ls="none", mfc="none")
    if any(c.critical.width is None for c in curves):
        ax.plot([], [], marker=">" if not transpose else "^", color="k", mfc="none", ls="none",
                label="N* beyond the swept widths")


def _width_ticks(ax, fit: SweepFit, axis=None) -> None:
    """The swept widths as ticks, named as in the grid ("16", "20M")."""
    names = {s: w for c in fit.curves for s, w in zip(c.curve.sizes, c.curve.widths)}
    sizes = sorted(names)
    _ticks(axis or ax.xaxis, sizes, [names[s] for s in sizes])


def _ticks(axis, values: list[float], labels: list[str], min_ratio: float = 1.15) -> None:
    """Label the given values on a log axis, skipping any closer than `min_ratio` to the last
    one labelled, so that labels never overlap."""
    kept, last = [], None
    for value, label in zip(values, labels):
        if last is None or value / last >= min_ratio:
            kept.append((value, label))
            last = value
    axis.set_ticks([v for v, _ in kept], [label for _, label in kept])
    axis.set_minor_formatter(NullFormatter())


def _edges(values: list[float]) -> np.ndarray:
    """Cell edges around values on a log axis: geometric midpoints, one step beyond the ends."""
    v = np.log(np.asarray(values, dtype=float))
    step = np.diff(v) if v.size > 1 else np.array([np.log(2.0)])
    mids = (v[:-1] + v[1:]) / 2
    return np.exp(np.concatenate([[v[0] - step[0] / 2], mids, [v[-1] + step[-1] / 2]]))
