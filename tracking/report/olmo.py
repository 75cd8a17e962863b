"""The OLMo half of `sweeps reproduce`: the paper's Figures 5, 6a, 6b, 8 and 9 and claims O1-O5
from the runs of the sweeps `sweeps.studies.olmo` defines, read through a `tracking.query`
Reader (no MLflow import, no training).

Roles: `heat` (sizes x frequencies x tasks), `gap-N` (cmp, N instances every N batches at one
long-run frequency; N is read from each run's `schedule.block`). Figures 8 and 9 come from the
gap sweep with the largest N that measured (`interference/*`, `rare/retained` logged): the
paper's "100 instances every 100 batches" protocol. A role that is missing, or has no finished
run, leaves its figures saying so and its claims `holds=None`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

import matplotlib.pyplot as plt
import numpy as np

from tracking.curves import Row, finished, width_order
from tracking.query import Reader, read_rows
from tracking.report import olmo_claims as claims
from tracking.report.claims import Claim, Figure
from tracking.style import LINES, STYLE, frequency_colours, save

LOSS = "rare/train_loss"
COSINES = {"interference/cos_batch": r"$\cos(g, g_r)$",
           "interference/cos_task": r"$\cos(g_t, g_r)$",
           "interference/cos_nontask": r"$\cos(g_{nt}, g_r)$"}
TASK = {"cmp": r"$T_{\mathrm{CMP}}$", "add": r"$T_{\mathrm{ADD}}$"}
REFERENCE = r"reference task ($R_{\mathrm{cmp}}$, $R_{\mathrm{add}}$)"
History = list[tuple[int, float]]


def _tasks(names) -> list[str]:
    """The paper's order, (a) T_CMP then (b) T_ADD; any other task after them."""
    order = list(TASK)
    return sorted(set(names), key=lambda t: (order.index(t) if t in order else len(order), t))


@dataclass
class Heat:
    """The heat-map sweep: final values per cell, task loss and reference loss over training."""

    cells: list[claims.Cell] = field(default_factory=list)
    loss: dict[tuple[str, str], dict[float, History]] = field(default_factory=dict)
    reference: dict[tuple[str, str], dict[float, History]] = field(default_factory=dict)


@dataclass
class Gaps:
    """The gap sweeps: per size and N, the task loss over training and the instances injected."""

    loss: dict[str, dict[int, History]] = field(default_factory=lambda: defaultdict(dict))
    injected: dict[str, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))


@dataclass
class Mechanism:
    """The measuring sweep, per size: the measured histories, and its N."""

    gap: int = 0
    histories: dict[str, dict[str, History]] = field(default_factory=dict)


def build(reader: Reader, sweeps: dict[str, str], figures: Path
          ) -> tuple[list[Figure], list[Claim]]:
    heat = read_heat(reader, sweeps["heat"]) if "heat" in sweeps else Heat()
    gap_sweeps = [name for role, name in sweeps.items() if role.startswith("gap-")]
    gaps, mechanism = read_gaps(reader, gap_sweeps)
    final = {s: {n: h[-1][1] for n, h in by_n.items()} for s, by_n in gaps.loss.items()}
    initial = {s: mean(h[0][1] for h in by_n.values()) for s, by_n in gaps.loss.items()}
    found = [
        claims.o1_size_and_frequency(heat.cells),
        claims.o2_frequency_order(heat.loss),
        claims.o3_injection_gap(final, initial, gaps.injected),
        claims.o4_retention({s: [v for _, v in h.get("rare/retained", [])]
                             for s, h in mechanism.histories.items()}),
        claims.o5_interference({s: [v for _, v in h.get("interference/cos_nontask", [])]
                                for s, h in mechanism.histories.items()}),
    ]
    with plt.rc_context(STYLE):
        drawn = [heat_maps(heat, figures), frequency_order(heat, figures),
                 gap_curves(gaps, figures), retention(mechanism, figures),
                 interference(mechanism, figures)]
    return drawn, found


# Reading ------------------------------------------------------------------------------------

def _rows(reader: Reader, sweep: str) -> list[Row]:
    return finished(read_rows(reader, sweep))


def _mean_history(histories: list[History]) -> History:
    """Seeds averaged step by step (the steps every seed logged)."""
    if len(histories) == 1:
        return histories[0]
    by_step = [dict(h) for h in histories]
    common = sorted(set.intersection(*(set(h) for h in by_step)))
    return [(step, mean(h[step] for h in by_step)) for step in common]


def read_heat(reader: Reader, sweep: str) -> Heat:
    groups: dict[tuple[str, str, float], list[Row]] = defaultdict(list)
    for row in _rows(reader, sweep):
        p = row.params
        groups[p["task"], p["width"], float(p["frequency"])].append(row)
    heat = Heat()
    for (task, size, frequency), rows in sorted(groups.items()):
        loss = _mean_history([reader.history(r.run_id, LOSS) for r in rows])
        reference = _mean_history([reader.history(r.run_id, "ref/loss") for r in rows])
        if not loss:
            continue
        heat.loss.setdefault((task, size), {})[frequency] = loss
        heat.reference.setdefault((task, size), {})[frequency] = reference
        heat.cells.append(claims.Cell(
            task, size, frequency, initial_loss=loss[0][1], loss=loss[-1][1],
            acc=mean(r.metrics.get("rare/test_acc", float("nan")) for r in rows),
            evaluated=min(int(r.params["eval_instances"]) for r in rows)))
    return heat


def gap_of(params: dict) -> int:
    """N of `schedule: {block: N}`; the i.i.d. schedule is N = 1."""
    return int(params.get("schedule.block", 1))


def read_gaps(reader: Reader, sweeps: list[str]) -> tuple[Gaps, Mechanism]:
    gaps, mechanism = Gaps(), Mechanism()
    for sweep in sweeps:
        by_size: dict[str, list[Row]] = defaultdict(list)
        for row in _rows(reader, sweep):
            by_size[row.params["width"]].append(row)
        for size, rows in by_size.items():
            n = gap_of(rows[0].params)
            loss = _mean_history([reader.history(r.run_id, LOSS) for r in rows])
            if not loss:
                continue
            gaps.loss[size][n] = loss
            gaps.injected[size][n] = mean(sum(v for _, v in reader.history(r.run_id,
                                                                           "rare/injected"))
                                          for r in rows)
        measured = [r for rows in by_size.values() for r in rows
                    if "interference/cos_nontask" in r.metrics]
        if measured and gap_of(measured[0].params) > mechanism.gap:
            mechanism = Mechanism(gap_of(measured[0].params), {
                r.params["width"]: {key: reader.history(r.run_id, key) for key in
                                    [*COSINES, "rare/retained", "rare/test_loss",
                                     "rare/injected"]}
                for r in measured if r.params["seed"] == measured[0].params["seed"]})
    return gaps, mechanism


# Figures ------------------------------------------------------------------------------------

def _sizes(names) -> list[str]:
    return sorted(set(names), key=width_order)


def _power(value: float) -> str:
    """0.125 as $0.125$, 2.4e-08 as $2.4\\times10^{-8}$ (mathtext)."""
    if value >= 0.01:
        return f"${value:.3g}$"
    mantissa, exponent = f"{value:.1e}".split("e")
    return rf"${float(mantissa):g}\times10^{{{int(exponent)}}}$"


def _log_loss(ax, label: str) -> None:
    """A loss falls from ~ln(vocabulary) to near chance: a log axis, with plain numbers."""
    from matplotlib.ticker import FuncFormatter

    def some(value, _) -> str:  # minor ticks: 2, 3 and 5 of a decade; all in less than one
        low, high = ax.get_ylim()
        lead = round(value / 10 ** np.floor(np.log10(value)))
        return f"{value:g}" if lead in (2, 3, 5) or high < 10 * low else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(some))
    ax.set_ylabel(label)


def _one_legend(fig, axes) -> None:
    """The panels share their lines' meaning: one legend, right of them all."""
    for ax in axes.flat:
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5),
                       frameon=False)
            return


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def heat_maps(heat: Heat, folder: Path) -> Figure:
    figure = Figure("olmo-fig5-heatmaps", "Figure 5: larger models learn rare tasks",
                    "Task training loss (top; lower is brighter) and test accuracy (bottom; "
                    "higher is brighter) per model size and injection frequency, one column per "
                    "task. The paper: larger models learn lower-frequency tasks; smaller models "
                    "do not.")
    tasks = _tasks(c.task for c in heat.cells) or ["cmp"]
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.2 * len(tasks), 6.2), squeeze=False)
    for col, task in enumerate(tasks):
        cells = [c for c in heat.cells if c.task == task]
        if not cells:
            for ax in axes[:, col]:
                _empty(ax, "no finished run")
            continue
        sizes = _sizes(c.size for c in cells)
        freqs = sorted({c.frequency for c in cells})
        for row, (what, label, cmap, limits) in enumerate([
                ("loss", "task training loss (nats)", "viridis_r", (None, None)),
                ("acc", "test accuracy", "viridis", (0, 1))]):  # accuracy on one scale
            grid = np.full((len(sizes), len(freqs)), np.nan)
            for c in cells:
                grid[sizes.index(c.size), freqs.index(c.frequency)] = getattr(c, what)
            ax = axes[row, col]
            # Cells as vector patches (imshow would put a raster image in the PDF).
            image = ax.pcolormesh(np.arange(len(freqs) + 1) - 0.5,
                                  np.arange(len(sizes) + 1) - 0.5, np.ma.masked_invalid(grid),
                                  cmap=cmap, vmin=limits[0], vmax=limits[1])
            middle = sum(image.get_clim()) / 2
            for (i, j), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    bright = (value < middle) if cmap.endswith("_r") else (value > middle)
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if bright else "white")
            ax.set_xticks(range(len(freqs)), [_power(f) for f in freqs], rotation=45,
                          ha="right")
            ax.set_yticks(range(len(sizes)), sizes)
            ax.set_xlabel("injection frequency $f$ (instances per token)")
            ax.set_ylabel("model size (non-embedding parameters)")
            ax.set_title(f"{TASK.get(task, task)}: {label}")
            fig.colorbar(image, ax=ax, label=label)
    fig.tight_layout()
    save(fig, folder, figure.name)
    return figure


def frequency_order(heat: Heat, folder: Path) -> Figure:
    figure = Figure("olmo-fig6a-order", "Figure 6a: tasks are learned in order of frequency",
                    "Task training loss over training, one line per injection frequency (solid), "
                    "and the loss on the corpus's own statements of the same kind (dashed, the "
                    "reference task, from the rarest frequency's run); one panel per task and "
                    "model size. The paper: tasks are learned in the order of frequency.")
    tasks = _tasks(t for t, _ in heat.loss) or ["cmp"]
    sizes = _sizes(s for _, s in heat.loss) or ["-"]
    fig, axes = plt.subplots(len(tasks), len(sizes), figsize=(3.4 * len(sizes),
                                                              2.8 * len(tasks)),
                             squeeze=False, sharex=True)
    for (i, task), (j, size) in ((a, b) for a in enumerate(tasks) for b in enumerate(sizes)):
        ax = axes[i, j]
        by_freq = heat.loss.get((task, size))
        if not by_freq:
            _empty(ax, "no finished run")
            continue
        colours = frequency_colours(by_freq)
        for frequency in sorted(by_freq, reverse=True):
            steps, values = zip(*by_freq[frequency])
            ax.plot(steps, values, color=colours[frequency], label=f"$f$ = {_power(frequency)}")
        reference = heat.reference.get((task, size), {}).get(min(by_freq))
        if reference:
            steps, values = zip(*reference)
            ax.plot(steps, values, "--", color="black", label=REFERENCE)
        _log_loss(ax, "task training loss (nats)" if j == 0 else "")
        ax.set_title(f"{TASK.get(task, task)}, {size}")
        if i == len(tasks) - 1:
            ax.set_xlabel("training step")
    _one_legend(fig, axes)
    fig.tight_layout()
    save(fig, folder, figure.name)
    return figure


def gap_curves(gaps: Gaps, folder: Path) -> Figure:
    figure = Figure("olmo-fig6b-gaps", "Figure 6b: matched-frequency injection",
                    r"$T_{\mathrm{CMP}}$ injected N instances every N batches at one long-run "
                    "frequency: task training loss over training per N (one panel per model "
                    "size), and the final loss against N. The paper: a larger injection gap N "
                    "degrades task loss, while a smaller gap gives almost identical loss.")
    sizes = _sizes(gaps.loss) or ["-"]
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(3.4 * (len(sizes) + 1), 3.0),
                             squeeze=False)
    all_n = sorted({n for by_n in gaps.loss.values() for n in by_n})
    colour = {n: LINES[i % len(LINES)] for i, n in enumerate(all_n)}
    for ax, size in zip(axes[0], sizes):
        if size not in gaps.loss:
            _empty(ax, "no finished run")
            continue
        for n, history in sorted(gaps.loss[size].items()):
            steps, values = zip(*history)
            ax.plot(steps, values, color=colour[n], label=f"$N$ = {n}")
        _log_loss(ax, "task training loss (nats)")
        ax.set_title(f"{TASK['cmp']}, {size}")
        ax.set_xlabel("training step")
        ax.legend(frameon=False, title="$N$ examples / $N$ batches")
    ax = axes[0, -1]
    if gaps.loss:
        for i, size in enumerate(sizes):
            by_n = sorted(gaps.loss[size].items())
            ax.plot([n for n, _ in by_n], [h[-1][1] for _, h in by_n], "o-",
                    color=LINES[i % len(LINES)], label=size)
        ax.set_xscale("log")
        ax.set_xticks(all_n, [str(n) for n in all_n])
        ax.minorticks_off()
        ax.set_xlabel("injection gap $N$ (batches; $N$ instances each)")
        ax.set_ylabel("final task training loss (nats)")
        ax.set_title("final loss against $N$")
        ax.legend(frameon=False)
    else:
        _empty(ax, "no gap sweep")
    fig.tight_layout()
    save(fig, folder, figure.name)
    return figure


def _injections(history: History) -> list[int]:
    """Training steps whose batch held task instances (`rare/injected` at step k: step k's)."""
    return [step for step, value in history if value > 0]


def _mark_injections(ax, steps: list[int]) -> None:
    for step in steps:
        ax.axvline(step, color="0.85", linewidth=0.6, zorder=0)


def retention(mechanism: Mechanism, folder: Path) -> Figure:
    n = mechanism.gap
    figure = Figure("olmo-fig8-retention", "Figure 8: rare-task retention",
                    f"{TASK['cmp']} injected {n or 'N'} instances every {n or 'N'} batches. "
                    "Left: the task's test loss read just before, just after and just before the "
                    "next injection (grey lines: injection steps). Right: the share of each "
                    "injection's drop in test loss still there before the next (rare/retained; "
                    "1, dashed: nothing forgotten; 0: all of it; above 1: the loss fell further "
                    "between injections). "
                    "The paper: larger models retain the injected task better.")
    sizes = _sizes(mechanism.histories)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.2))
    if not sizes:
        _empty(left, "no measured run")
        _empty(right, "no measured run")
    for i, size in enumerate(sizes):
        h = mechanism.histories[size]
        if h["rare/test_loss"]:
            steps, values = zip(*h["rare/test_loss"])
            left.plot(steps, values, ".-", markersize=3, color=LINES[i % len(LINES)],
                      label=size)
        values = [v for _, v in h["rare/retained"]]
        if values:
            jitter = np.linspace(-0.15, 0.15, len(values))
            right.scatter(i + jitter, values, s=10, color=LINES[i % len(LINES)], alpha=0.7)
            right.hlines(np.median(values), i - 0.3, i + 0.3, color="black")
    if sizes:
        _mark_injections(left, _injections(mechanism.histories[sizes[0]]["rare/injected"]))
        left.set_xlabel("training step")
        left.set_ylabel("task test loss (nats)")
        left.legend(frameon=False)
        right.axhline(0, color="0.6", linewidth=0.6)  # all of the drop forgotten
        right.axhline(1, color="0.6", linewidth=0.6, linestyle="--")  # none of it
        right.set_xticks(range(len(sizes)), sizes)
        right.set_xlabel("model size")
        right.set_ylabel("share of the drop retained (median: bar)")
    fig.tight_layout()
    save(fig, folder, figure.name)
    return figure


def interference(mechanism: Mechanism, folder: Path) -> Figure:
    n = mechanism.gap
    figure = Figure("olmo-fig9-interference", "Figure 9: gradient interference",
                    f"{TASK['cmp']} injected {n or 'N'} instances every {n or 'N'} batches; on "
                    "the first-layer MLP's top neurons by |g_r|: the batch gradient g (top), its "
                    "task part (middle; injection steps only) and its non-task part (bottom) "
                    "against the task's reference gradient g_r. Grey lines: injection steps. The "
                    "paper: at 1B cos(g, g_r) = 0.08 +- 0.02 at injections and near zero between; "
                    "cos(g_nt, g_r) = 0.10 +- 0.09 at 20M and ~0 +- 0.02 at 1B.")
    sizes = _sizes(mechanism.histories)
    fig, axes = plt.subplots(3, 1, figsize=(6.4, 6.4), sharex=True)
    for ax, (key, label) in zip(axes, COSINES.items()):
        if not sizes:
            _empty(ax, "no measured run")
            continue
        for i, size in enumerate(sizes):
            history = mechanism.histories[size][key]
            if history:
                steps, values = zip(*history)
                ax.plot(steps, values, ".-", markersize=3, linewidth=0.8,
                        color=LINES[i % len(LINES)], label=size)
        _mark_injections(ax, _injections(mechanism.histories[sizes[0]]["rare/injected"]))
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.set_ylabel(label)
    if sizes:
        axes[0].legend(frameon=False, ncol=len(sizes))
    axes[-1].set_xlabel("training step")
    fig.tight_layout()
    save(fig, folder, figure.name)
    return figure
