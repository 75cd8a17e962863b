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
from tracking.report.claims import Cells, Claim, Figure
from tracking.style import LINES, STYLE, frequency_colours, save

LOSS = "rare/train_loss"
LABEL_LOSS, LABEL_ACC = "rare/label_loss", "rare/label_acc"
COSINES = {"interference/cos_batch": r"$\cos(g, g_r)$",
           "interference/cos_task": r"$\cos(g_t, g_r)$",
           "interference/cos_nontask": r"$\cos(g_{nt}, g_r)$, tokens",
           "interference/cos_nontask_rows": r"$\cos(g_{nt}, g_r)$, rows"}
# O5's: the background's interference alone. At steps that do not inject it equals
# cos_nontask; at injection steps cos_nontask also holds the injected rows' own other
# positions, which follow the task's tokens and dominate its overlap with g_r (README).
JUDGED_COSINE = "interference/cos_nontask_rows"
TASK = {"cmp": r"$T_{\mathrm{CMP}}$", "add": r"$T_{\mathrm{ADD}}$"}
REFERENCE = r"reference task ($R_{\mathrm{cmp}}$, $R_{\mathrm{add}}$)"
History = claims.History
Run = tuple[str, int]  # (size, seed)


def _tasks(names) -> list[str]:
    """The paper's order, (a) T_CMP then (b) T_ADD; any other task after them."""
    order = list(TASK)
    return sorted(set(names), key=lambda t: (order.index(t) if t in order else len(order), t))


@dataclass
class Heat:
    """The heat-map sweep: each run's final values; per (task, size) the task loss and the
    reference loss over training (seeds averaged); per (task, size, seed) the label loss."""

    cells: list[claims.Cell] = field(default_factory=list)
    loss: dict[tuple[str, str], dict[float, History]] = field(default_factory=dict)
    reference: dict[tuple[str, str], dict[float, History]] = field(default_factory=dict)
    label_loss: dict[tuple[str, str, int], dict[float, History]] = field(default_factory=dict)
    planned: int = 0
    evaluated: int = 0  # test instances the label loss was read on (the fewest of any run)


@dataclass
class Gaps:
    """The gap sweeps: per (size, seed) and N, the task loss over training and the instances
    injected."""

    loss: dict[Run, dict[int, History]] = field(default_factory=lambda: defaultdict(dict))
    injected: dict[Run, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    planned: int = 0


@dataclass
class Mechanism:
    """The measuring sweep: its N, per (size, seed) the measured histories, and per size the
    dimension D of the vectors whose cosines were taken (K neurons x 3 d_model)."""

    gap: int = 0
    histories: dict[Run, dict[str, History]] = field(default_factory=dict)
    dimension: dict[str, int] = field(default_factory=dict)
    planned: int = 0

    def sizes(self) -> list[str]:
        return _sizes(s for s, _ in self.histories)

    def first_seed(self, size: str) -> dict[str, History]:
        """The lowest seed's histories of `size` (the traces a figure draws)."""
        return self.histories[min(k for k in self.histories if k[0] == size)]


def build(reader: Reader, sweeps: dict[str, str], figures: Path
          ) -> tuple[list[Figure], list[Claim]]:
    heat = read_heat(reader, sweeps["heat"]) if "heat" in sweeps else Heat()
    gap_sweeps = [name for role, name in sweeps.items() if role.startswith("gap-")]
    gaps, mechanism = read_gaps(reader, gap_sweeps)
    measured = Cells(mechanism.planned, len(mechanism.histories))
    found = [
        claims.o1_size_and_frequency(heat.cells, Cells(heat.planned, len(heat.cells))),
        claims.o2_frequency_order(heat.label_loss, heat.evaluated,
                                  Cells(heat.planned, len(heat.cells))),
        claims.o3_injection_gap(gaps.loss, gaps.injected,
                                Cells(gaps.planned, sum(len(v) for v in gaps.loss.values()))),
        claims.o4_retention({k: [v for _, v in h["rare/retained"]]
                             for k, h in mechanism.histories.items()}, measured),
        claims.o5_interference(cosines(mechanism, JUDGED_COSINE), mechanism.dimension,
                               measured, JUDGED_COSINE),
    ]
    with plt.rc_context(STYLE):
        drawn = [heat_maps(heat, figures), frequency_order(heat, figures),
                 gap_curves(gaps, figures), retention(mechanism, figures),
                 interference(mechanism, figures)]
    return drawn, found


def cosines(mechanism: Mechanism, key: str) -> dict[Run, list[claims.Cosine]]:
    """Each run's measured cosines, each step marked by whether its batch injected."""
    out = {}
    for run, h in mechanism.histories.items():
        injected = {step for step, value in h["rare/injected"] if value > 0}
        out[run] = [claims.Cosine(step, value, step in injected)
                    for step, value in measured(h[key])]
    return out


def measured(history: History) -> History:
    """A cosine's history without its exact zeros: a zero vector's guard value, not a
    measurement (e.g. the rows variant where every row of the batch holds an instance,
    quick's N = 16 of 16 rows). The claim, the figure and its CSV all read this."""
    return [(step, value) for step, value in history if value != 0.0]


# Reading ------------------------------------------------------------------------------------

def _rows(reader: Reader, sweep: str) -> tuple[list[Row], int]:
    """The sweep's finished rows, and how many grid points it has."""
    rows = read_rows(reader, sweep)
    return finished(rows), len(rows)


def _mean_history(histories: list[History]) -> History:
    """Seeds averaged step by step (the steps every seed logged)."""
    histories = [h for h in histories if h]
    if len(histories) <= 1:
        return histories[0] if histories else []
    by_step = [dict(h) for h in histories]
    common = sorted(set.intersection(*(set(h) for h in by_step)))
    return [(step, mean(h[step] for h in by_step)) for step in common]


def read_heat(reader: Reader, sweep: str) -> Heat:
    rows, planned = _rows(reader, sweep)
    groups: dict[tuple[str, str, float], list[Row]] = defaultdict(list)
    for row in rows:
        p = row.params
        groups[p["task"], p["width"], float(p["frequency"])].append(row)
    heat = Heat(planned=planned, evaluated=min((int(r.params["eval_instances"]) for r in rows),
                                               default=0))
    for (task, size, frequency), group in sorted(groups.items()):
        loss = _mean_history([reader.history(r.run_id, LOSS) for r in group])
        if not loss:
            continue
        heat.loss.setdefault((task, size), {})[frequency] = loss
        heat.reference.setdefault((task, size), {})[frequency] = _mean_history(
            [reader.history(r.run_id, "ref/loss") for r in group])
        for r in group:
            seed = int(r.params["seed"])
            label = reader.history(r.run_id, LABEL_LOSS)
            heat.label_loss.setdefault((task, size, seed), {})[frequency] = label
            heat.cells.append(claims.Cell(
                task, size, frequency, seed,
                label_loss=r.metrics.get(LABEL_LOSS, float("nan")),
                label_acc=r.metrics.get(LABEL_ACC, float("nan")),
                evaluated=int(r.params["eval_instances"]),
                instances=int(float(r.params.get("injection.total_instances", -1)))))
    return heat


def gap_of(params: dict) -> int:
    """N of `schedule: {block: N}`; the i.i.d. schedule is N = 1."""
    return int(params.get("schedule.block", 1))


def read_gaps(reader: Reader, sweeps: list[str]) -> tuple[Gaps, Mechanism]:
    gaps, mechanism = Gaps(), Mechanism()
    for sweep in sweeps:
        rows, planned = _rows(reader, sweep)
        gaps.planned += planned
        for row in rows:
            run, n = (row.params["width"], int(row.params["seed"])), gap_of(row.params)
            loss = reader.history(row.run_id, LOSS)
            if not loss:
                continue
            gaps.loss[run][n] = loss
            gaps.injected[run][n] = sum(v for _, v in reader.history(row.run_id,
                                                                       "rare/injected"))
        measured = [r for r in rows if JUDGED_COSINE in r.metrics]
        if measured and gap_of(measured[0].params) > mechanism.gap:
            mechanism = Mechanism(gap_of(measured[0].params), {
                (r.params["width"], int(r.params["seed"])): {
                    key: reader.history(r.run_id, key) for key in
                    [*COSINES, "rare/retained", "rare/test_loss", "rare/injected"]}
                for r in measured}, {
                r.params["width"]: int(r.params["interference_neurons"]) * 3
                * int(r.params["model.d_model"]) for r in measured}, planned)
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


def _row(size: str, frequency: float | str, task: str, seed: int | str, n: int, step: int | str,
         metric: str, value: float, **extra) -> dict:
    """One plotted value in the long format of CONTRACTS 7 (`claims.DATA_COLUMNS`)."""
    return {"width": size, "frequency": frequency, "task": task, "seed": seed, "n": n,
            "step": step, "metric": metric, "value": value, **extra}


def _history_rows(history: History, size, frequency, task, seed, n, metric, **extra) -> list:
    return [_row(size, frequency, task, seed, n, step, metric, value, **extra)
            for step, value in history]


def heat_maps(heat: Heat, folder: Path) -> Figure:
    tasks = _tasks(c.task for c in heat.cells) or ["cmp"]
    data = tuple(_row(c.size, c.frequency, c.task, c.seed, 1, "final", metric, value)
                 for c in heat.cells for metric, value in ((LABEL_LOSS, c.label_loss),
                                                           (LABEL_ACC, c.label_acc)))
    figure = Figure("olmo-fig5-heatmaps", "Figure 5: larger models learn rare tasks",
                    "The task's loss (top; lower is brighter) and accuracy (bottom; higher is "
                    "brighter) over its label tokens alone (rare/label_loss, rare/label_acc; "
                    "seeds averaged) per model size and injection frequency, one column per "
                    "task. A model that learned only which tokens can be labels sits at ln 2 "
                    "(cmp) or ln 100 (add) and at chance (1/2, 1/100): the colour scale is "
                    "centred on that floor. The paper: larger models learn lower-frequency "
                    "tasks; smaller models do not.", data)
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.2 * len(tasks), 6.2), squeeze=False)
    for col, task in enumerate(tasks):
        cells = [c for c in heat.cells if c.task == task]
        if not cells:
            for ax in axes[:, col]:
                _empty(ax, "no finished run")
            continue
        sizes = _sizes(c.size for c in cells)
        freqs = sorted({c.frequency for c in cells})
        # At least three times the noise: cells within it stay pale (at the floor).
        spread = max([3 * claims.loss_noise(min(c.evaluated for c in cells))]
                     + [abs(c.label_loss - claims.floor(task)) for c in cells
                        if np.isfinite(c.label_loss)])
        for row, (what, label, cmap, limits) in enumerate([
                ("label_loss", "label loss (nats)", "RdBu",  # the floor is white
                 (claims.floor(task) - spread, claims.floor(task) + spread)),
                ("label_acc", "label accuracy", "viridis", (0, 1))]):  # one scale
            grid = np.full((len(sizes), len(freqs)), np.nan)
            for i, size in enumerate(sizes):
                for j, f in enumerate(freqs):
                    values = [getattr(c, what) for c in cells
                              if (c.size, c.frequency) == (size, f)]
                    grid[i, j] = np.mean(values) if values else np.nan
            ax = axes[row, col]
            # Cells as vector patches (imshow would put a raster image in the PDF).
            image = ax.pcolormesh(np.arange(len(freqs) + 1) - 0.5,
                                  np.arange(len(sizes) + 1) - 0.5, np.ma.masked_invalid(grid),
                                  cmap=cmap, vmin=limits[0], vmax=limits[1])
            low, high = image.get_clim()
            for (i, j), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    dark = (abs(value - (low + high) / 2) > 0.3 * (high - low) if row == 0
                            else value < (low + high) / 2)  # RdBu's ends, viridis's low half
                    ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
            ax.set_xticks(range(len(freqs)), [_power(f) for f in freqs], rotation=45,
                          ha="right")
            ax.set_yticks(range(len(sizes)), sizes)
            ax.set_xlabel("injection frequency $f$ (instances per token)")
            ax.set_ylabel("model size (non-embedding parameters)")
            ax.set_title(f"{TASK.get(task, task)}: {label}")
            bar = fig.colorbar(image, ax=ax, label=label)
            if row == 0:
                bar.ax.axhline(claims.floor(task), color="black", linewidth=0.8)
    fig.tight_layout()
    save(fig, folder, figure.name)
    return figure


def frequency_order(heat: Heat, folder: Path) -> Figure:
    data = [*(row for (task, size), by_f in heat.loss.items() for f, h in by_f.items()
              for row in _history_rows(h, size, f, task, "mean", 0, LOSS)),
            *(row for (task, size), by_f in heat.reference.items() for f, h in by_f.items()
              for row in _history_rows(h, size, f, task, "mean", 0, "ref/loss")),
            *(row for (task, size, seed), by_f in heat.label_loss.items()
              for f, h in by_f.items()
              for row in _history_rows(h, size, f, task, seed, 1, LABEL_LOSS))]
    figure = Figure("olmo-fig6a-order", "Figure 6a: tasks are learned in order of frequency",
                    "Per task, top row: the task's training loss over the whole vocabulary, one "
                    "line per injection frequency (solid; seeds averaged), and the loss on the "
                    "corpus's own statements of the same kind (dashed, the reference task, from "
                    "the rarest frequency's run), as the paper draws it. Bottom row: the task's "
                    "test loss over its labels alone (rare/label_loss, the lowest seed), which "
                    "O2 judges, and its floor ln k (dotted): above it only the label vocabulary "
                    "was learned. One panel per task and model size. The paper: tasks are "
                    "learned in the order of frequency.", tuple(data))
    tasks = _tasks(t for t, _ in heat.loss) or ["cmp"]
    sizes = _sizes(s for _, s in heat.loss) or ["-"]
    colours = frequency_colours(f for by_f in heat.loss.values() for f in by_f)  # one key
    fig, axes = plt.subplots(2 * len(tasks), len(sizes), figsize=(3.4 * len(sizes),
                                                                  2.6 * 2 * len(tasks)),
                             squeeze=False, sharex=True)
    for (i, task), (j, size) in ((a, b) for a in enumerate(tasks) for b in enumerate(sizes)):
        top, bottom = axes[2 * i, j], axes[2 * i + 1, j]
        by_freq = heat.loss.get((task, size))
        if not by_freq:
            _empty(top, "no finished run")
            _empty(bottom, "no finished run")
            continue
        for frequency in sorted(by_freq, reverse=True):
            steps, values = zip(*by_freq[frequency])
            top.plot(steps, values, color=colours[frequency], label=f"$f$ = {_power(frequency)}")
        reference = heat.reference.get((task, size), {}).get(min(by_freq))
        if reference:
            steps, values = zip(*reference)
            top.plot(steps, values, "--", color="black", label=REFERENCE)
        _log_loss(top, "task training loss (nats)" if j == 0 else "")
        top.set_title(f"{TASK.get(task, task)}, {size}")
        seed = min(k[2] for k in heat.label_loss if k[:2] == (task, size))
        for frequency, history in sorted(heat.label_loss[task, size, seed].items(),
                                         reverse=True):
            if history:
                steps, values = zip(*history)
                bottom.plot(steps, values, color=colours[frequency])
        bottom.axhline(claims.floor(task), color="black", linestyle=":", linewidth=0.8,
                       label="label-vocabulary floor ln $k$")
        bottom.set_ylabel("label loss (nats)" if j == 0 else "")
        bottom.set_title(f"{TASK.get(task, task)}, {size}: over its labels")
        if i == len(tasks) - 1:
            bottom.set_xlabel("training step")
    _one_legend(fig, axes)
    handles, labels = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower left", bbox_to_anchor=(1.0, 0.1), frameon=False)
    fig.tight_layout()
    save(fig, folder, figure.name)
    return figure


def _by_size(runs) -> dict[str, list[int]]:
    """size -> its seeds, sizes small to large."""
    out: dict[str, list[int]] = {}
    for size, seed in sorted(runs, key=lambda k: (width_order(k[0]), k[1])):
        out.setdefault(size, []).append(seed)
    return out


def gap_curves(gaps: Gaps, folder: Path) -> Figure:
    all_n = sorted({n for by_n in gaps.loss.values() for n in by_n})
    cycle = max(all_n, default=1)
    means = {run: {n: claims.cycle_mean(h, cycle)[0] for n, h in by_n.items()}
             for run, by_n in gaps.loss.items()}
    data = [*(row for (size, seed), by_n in gaps.loss.items() for n, h in by_n.items()
              for row in _history_rows(h, size, "", "cmp", seed, 1, LOSS, gap=n)),
            *(_row(size, "", "cmp", seed, 1, f"last {cycle}", f"{LOSS} cycle mean", v, gap=n)
              for (size, seed), by_n in means.items() for n, v in by_n.items())]
    figure = Figure("olmo-fig6b-gaps", "Figure 6b: matched-frequency injection",
                    r"$T_{\mathrm{CMP}}$ injected N instances every N batches at one long-run "
                    "frequency: task training loss over training per N (one panel per model "
                    "size, seeds averaged; grey band: the last cycle of the largest N), and "
                    "that loss averaged over the band against N (one marker per seed, the line "
                    "their mean), which O3 judges: the loss at the last step would read the "
                    "largest N right after its burst. The paper: a larger injection gap N "
                    "degrades task loss, while a smaller gap gives almost identical loss.",
                    tuple(data))
    seeds = _by_size(gaps.loss)
    sizes = list(seeds) or ["-"]
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(3.4 * (len(sizes) + 1), 3.0),
                             squeeze=False)
    colour = {n: LINES[i % len(LINES)] for i, n in enumerate(all_n)}
    for ax, size in zip(axes[0], sizes):
        if size not in seeds:
            _empty(ax, "no finished run")
            continue
        for n in all_n:
            history = _mean_history([gaps.loss[size, s].get(n, []) for s in seeds[size]])
            if history:
                steps, values = zip(*history)
                ax.plot(steps, values, color=colour[n], label=f"$N$ = {n}")
                end = steps[-1]
        ax.axvspan(end - cycle, end, color="0.9", zorder=0)
        _log_loss(ax, "task training loss (nats)")
        ax.set_title(f"{TASK['cmp']}, {size}")
        ax.set_xlabel("training step")
        ax.legend(frameon=False, title="$N$ examples / $N$ batches")
    ax = axes[0, -1]
    if gaps.loss:
        for i, size in enumerate(sizes):
            for s in seeds[size]:
                by_n = sorted(means[size, s].items())
                ax.plot([n for n, _ in by_n], [v for _, v in by_n], "o", markersize=3,
                        color=LINES[i % len(LINES)], alpha=0.6)
            line = [(n, np.mean(v)) for n in all_n
                    for v in [[means[size, s][n] for s in seeds[size] if n in means[size, s]]]
                    if v]
            ax.plot(*zip(*line), "-", color=LINES[i % len(LINES)], label=size)
        ax.set_xscale("log")
        ax.set_xticks(all_n, [str(n) for n in all_n])
        ax.minorticks_off()
        ax.set_xlabel("injection gap $N$ (batches; $N$ instances each)")
        ax.set_ylabel(f"task loss, mean of the last {cycle} steps")
        ax.set_title("loss over the last cycle against $N$")
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


def _mechanism_rows(mechanism: Mechanism, keys) -> tuple[dict, ...]:
    return tuple(row for (size, seed), h in mechanism.histories.items() for key in keys
                 for row in _history_rows(measured(h[key]) if key in COSINES else h[key],
                                          size, "", "cmp", seed, 1, key, gap=mechanism.gap))


def retention(mechanism: Mechanism, folder: Path) -> Figure:
    n = mechanism.gap
    figure = Figure("olmo-fig8-retention", "Figure 8: rare-task retention",
                    f"{TASK['cmp']} injected {n or 'N'} instances every {n or 'N'} batches. "
                    "Left: the task's test loss read just before, just after and just before the "
                    "next injection (the lowest seed; grey lines: injection steps). Right: the "
                    "share of each injection's drop in test loss still there before the next "
                    "(rare/retained, float32; every seed; 1, dashed: nothing forgotten; 0: all "
                    "of it; above 1: the loss fell further between injections). "
                    "The paper: larger models retain the injected task better.",
                    _mechanism_rows(mechanism, ["rare/test_loss", "rare/retained"]))
    sizes = mechanism.sizes()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.2))
    if not sizes:
        _empty(left, "no measured run")
        _empty(right, "no measured run")
    for i, size in enumerate(sizes):
        h = mechanism.first_seed(size)
        if h["rare/test_loss"]:
            steps, values = zip(*h["rare/test_loss"])
            left.plot(steps, values, ".-", markersize=3, color=LINES[i % len(LINES)],
                      label=size)
        values = [v for (s, _), hs in mechanism.histories.items() if s == size
                  for _, v in hs["rare/retained"]]
        if values:
            jitter = np.linspace(-0.15, 0.15, len(values))
            right.scatter(i + jitter, values, s=10, color=LINES[i % len(LINES)], alpha=0.7)
            right.hlines(np.median(values), i - 0.3, i + 0.3, color="black")
    if sizes:
        _mark_injections(left, _injections(mechanism.first_seed(sizes[0])["rare/injected"]))
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
                    "the first-layer MLP's top K neurons by |g_r|: the batch gradient g, its "
                    "task part g_t (injection steps only) and its non-task part g_nt against "
                    "the task's reference gradient g_r (the lowest seed; grey lines: injection "
                    "steps; dotted: +-2/sqrt(D), two sd of the cosine of independent random "
                    "directions in the D = 3 K d_model dimensions). Two non-task parts: g_nt "
                    "counts only the instances' LABEL tokens as task (cos_nontask, the paper's "
                    "split by tokens), 'rows' counts every position of the injected rows as task "
                    "(cos_nontask_rows: the rest of the data alone, which O5 judges); they differ "
                    "only at injection steps, where the injected rows' other positions dominate "
                    "cos_nontask. The paper: at 1B cos(g, g_r) = 0.08 +- 0.02 at "
                    "injections and near zero between; cos(g_nt, g_r) = 0.10 +- 0.09 at 20M "
                    "and ~0 +- 0.02 at 1B.", _mechanism_rows(mechanism, COSINES))
    sizes = mechanism.sizes()
    fig, axes = plt.subplots(len(COSINES), 1, figsize=(6.4, 2.1 * len(COSINES)), sharex=True)
    for ax, (key, label) in zip(axes, COSINES.items()):
        if not sizes:
            _empty(ax, "no measured run")
            continue
        for i, size in enumerate(sizes):
            history = measured(mechanism.first_seed(size)[key])
            colour = LINES[i % len(LINES)]
            if history:
                steps, values = zip(*history)
                ax.plot(steps, values, ".-", markersize=3, linewidth=0.8, color=colour,
                        label=size)
            if size in mechanism.dimension:
                band = 2 * claims.noise_floor(mechanism.dimension[size])
                for y in (-band, band):
                    ax.axhline(y, color=colour, linestyle=":", linewidth=0.8)
        _mark_injections(ax, _injections(mechanism.first_seed(sizes[0])["rare/injected"]))
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.set_ylabel(label)
    if sizes:
        axes[0].legend(frameon=False, ncol=len(sizes))
    axes[-1].set_xlabel("training step")
    fig.tight_layout()
    save(fig, folder, figure.name)
    return figure
