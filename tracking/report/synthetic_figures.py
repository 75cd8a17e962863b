"""The synthetic report's figures, drawn from the rows and series `synthetic.build` read: each
function draws one figure, saves it (PNG + PDF) and returns what the page says about it.
Drawn inside `tracking.style.STYLE` (`synthetic.build` sets it for the duration), never set globally:
a fit's plots drawn in the same process keep their own look."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tracking.curves import Row
from tracking import style as look
from tracking.report.claims import Figure
from tracking.report.synthetic_claims import Series, curves, feature_steps, utilities, width

TASKS = ("simple", "complex")
START = 0.5  # where Figure 3 draws a feature aligned from the start (step 0, off a log axis)


def phase(rows: list[Row], folder: Path) -> Figure:
    """Final rare loss over width x frequency per task, the theory's N* as a staircase."""
    name = "fig2-phase"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    image = None
    for ax, task in zip(axes, TASKS):
        lines = {k[1]: line for k, line in curves(rows).items() if k[0] == task and
                 k[2] == min(r.params["seed"] for r in rows)}
        ax.set_title(f"{task} rare task")
        if not lines:
            ax.set_axis_off()
            continue
        widths = sorted({width(r) for line in lines.values() for r in line})
        freqs = sorted(lines)  # rare at the bottom
        loss = np.full((len(freqs), len(widths)), np.nan)
        for i, f in enumerate(freqs):
            for r in lines[f]:
                loss[i, widths.index(width(r))] = r.metrics["rare/loss"]
        # Reversed: bright = learned, as in `sweeps fit`'s phase diagram.
        image = ax.imshow(loss, origin="lower", aspect="auto", cmap="cividis_r", vmin=0,
                          vmax=1)
        for i, f in enumerate(freqs):
            for j in range(len(widths)):
                if np.isfinite(loss[i, j]):
                    ax.text(j, i, f"{max(loss[i, j], 0):.2f}", ha="center", va="center", fontsize=6,
                            color="white" if loss[i, j] > 0.4 else "black")
            theory = lines[f][0].metrics["theory/critical_width"]
            edge = next((j for j, w in enumerate(widths) if w >= theory), len(widths)) - 0.5
            ax.plot([edge, edge], [i - 0.5, i + 0.5], color=look.LINES[5], lw=2.5,
                    label=r"theory $N^*$" if i == 0 else None)
            ax.text(edge + 0.08, i + 0.42, f"$N^*$={theory:g}", color="black", fontsize=7,
                    va="top", ha="left",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        ax.set_xticks(range(len(widths)), widths)
        ax.set_yticks(range(len(freqs)), [f"{f:g}" for f in freqs])
        ax.set_xlabel(r"width $N$")
        ax.set_ylabel(r"rare-task frequency $\pi_r$")
        ax.legend(loc="lower right", framealpha=0.9)
    if image is not None:
        fig.colorbar(image, ax=axes, label="final rare-task loss (1 = nothing learned)")
    look.save(fig, folder, name)
    return Figure(name, "Figure 2: what each width learns, width x frequency",
                  "Final rare-task loss (population training, i.e. the width's converged "
                  "student) for a simple (fast-decaying spectrum) and a complex rare task; "
                  "the vermillion bar left of each row is the theory's critical width N* "
                  "(smallest width whose optimum has rare loss <= the learned threshold). "
                  "The paper: larger widths learn rarer tasks, and complex tasks need more width.")


def utility_order(rows: list[Row], folder: Path) -> Figure:
    """Step each feature was learned against its utility, one run per task."""
    name = "fig3-utility-order"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True, sharey=True)
    for ax, task in zip(axes, TASKS):
        run = _middle_run(rows, task)
        ax.set_title(f"{task} rare task" + (f", width {width(run)}, "
                                            f"f={float(run.params['frequency']):g}" if run
                                            else ""))
        if run is None:
            continue
        u, t = utilities(run.params), feature_steps(run)
        never = t < 0
        top = max(np.nanmax(t), 1) * 3  # "never learned" drawn above the latest step
        for rows_, colour, label in ((slice(None, -1), look.LINES[0], "background tasks"),
                                     (slice(-1, None), look.LINES[5], "rare task")):
            uu, tt, nn = u[rows_].ravel(), t[rows_].ravel(), never[rows_].ravel()
            ax.scatter(uu[~nn], np.where(tt[~nn] > 0, tt[~nn], START), s=14, color=colour,
                       label=label, zorder=3)
            ax.scatter(uu[nn], np.full(nn.sum(), top), s=16, marker="^", facecolors="none",
                       edgecolors=colour, zorder=3)
        ax.axhline(top, color="grey", lw=0.5, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [10.0 ** k for k in range(int(np.log10(top / 3)) + 1)]
        ax.set_yticks([START] + ticks + [top], ["start"] + [f"$10^{{{k}}}$" for k in range(
            len(ticks))] + ["never"])
        ax.minorticks_off()
        ax.set_xlabel(r"utility $\pi_k \lambda_{k,j}$")
        ax.set_ylabel("step learned ($\\|P_U b_{kj}\\|^2 \\geq 1/2$)")
        ax.legend(loc="upper right", framealpha=0.9)
    look.save(fig, folder, name)
    return Figure(name, "Figure 3: features are learned in order of utility",
                  "The first step at which each feature's direction is half inside span(U) "
                  "('start': aligned at initialisation), against its utility pi_k "
                  "lambda_{k,j}, in one population run per task; triangles: never learned, "
                  "the width is spent on larger utilities. The paper's Theorem 3: larger "
                  "utility, learned earlier; a width-N student keeps the top N.")


def _middle_run(rows: list[Row], task: str) -> Row | None:
    """The run at the middle frequency and the middle width: both learned and unlearned
    features, learned over time rather than from the start."""
    mine = [r for r in rows if r.params["task"] == task and r.state == "FINISHED"]
    if not mine:
        return None
    freqs = sorted({float(r.params["frequency"]) for r in mine})
    f = freqs[len(freqs) // 2]
    line = sorted((r for r in mine if float(r.params["frequency"]) == f), key=width)
    return line[len(line) // 2]


def update_and_forget(traces: dict[int, dict[str, Series]], n: int, frequency: float,
                      folder: Path) -> Figure:
    """The rare signal at the narrowest and widest width with the bursts marked, and
    cos(g, G_r) at bursts vs between."""
    name = "fig4-update-and-forget"
    widths = sorted(traces)
    shown = [widths[0], widths[-1]] if len(widths) > 1 else widths
    fig = plt.figure(figsize=(10, 3.4), constrained_layout=True)
    grid = fig.add_gridspec(1, 3, width_ratios=[2, 2, 1.3])
    for i, w in enumerate(shown):
        ax = fig.add_subplot(grid[0, i])
        signal = traces[w]["rare/alignment"]
        bursts = [s for s, v in traces[w]["rare/injected"] if v > 0]
        if signal:
            ax.plot(*zip(*signal), color=look.LINES[0], lw=0.8)
        ax.plot(bursts, [1.06] * len(bursts), "|", color=look.LINES[5], ms=6,
                label=f"bursts ({len(bursts)})")
        ax.set_ylim(-0.02, 1.12)
        ax.set_title(f"width {w}")
        ax.set_xlabel("step")
        ax.set_ylabel(r"rare signal $\|P_U b_r\|^2$")
        ax.legend(loc="lower right", framealpha=0.9)
    ax = fig.add_subplot(grid[0, 2])
    data, positions = [], []
    for k, w in enumerate(widths):
        injected = dict(traces[w]["rare/injected"])
        cos = [(s, v) for s, v in traces[w]["interference/cos_batch"] if np.isfinite(v)]
        data += [[v for s, v in cos if injected.get(s, 0) > 0],
                 [v for s, v in cos if injected.get(s, 0) == 0]]
        positions += [3 * k + 1, 3 * k + 2]
    if all(data):
        box = ax.boxplot(data, positions=positions, showfliers=False, patch_artist=True,
                         medianprops={"color": "black"})
        for k, patch in enumerate(box["boxes"]):
            patch.set_facecolor(look.LINES[5] if k % 2 == 0 else look.LINES[4])
        ax.set_xticks([3 * k + 1.5 for k in range(len(widths))], [str(w) for w in widths])
        ax.set_xlabel(r"width $N$")
        ax.legend(box["boxes"][:2], ["at bursts", "between"], loc="center right",
                  framealpha=0.9)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title(r"$\cos(g, G_r)$ by width")
    look.save(fig, folder, name)
    return Figure(name, "Figure 4: update and forget",
                  f"The rare task arrives {n} samples at a time (long-run frequency f="
                  f"{frequency:g}; ticks at the top mark the bursts). Left: the rare task's "
                  "leading direction inside span(U) at the narrowest and the widest width below "
                  "d (a width-d encoder spans every feature, so it cannot forget); "
                  "right: the cosine between the step's encoder gradient g and the rare "
                  "task's reference gradient G_r at the bursts and between them. The paper: "
                  "the narrow student gains at each injection and loses it before the next, "
                  "the wide one accumulates; cos(g, G_r) is higher at injections in the "
                  "wider student and near zero between.")


def bursts(final: dict[int, dict[int, float]], folder: Path) -> Figure:
    name = "fig6b-bursts"
    fig, ax = plt.subplots(figsize=(4.6, 3.4), constrained_layout=True)
    sizes = sorted(final)
    for w in sorted({w for by_width in final.values() for w in by_width}):
        points = [(n, final[n][w]) for n in sizes if w in final[n]]
        ax.plot(*zip(*points), marker="o", label=f"width {w}")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("rare samples per burst $n$ (one burst every $n/f$ samples)")
    ax.set_ylabel("final rare-task loss")
    ax.set_ylim(bottom=-0.02)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    look.save(fig, folder, name)
    return Figure(name, "Figure 6b (toy): matched-frequency bursts",
                  "Final rare-task loss (mean over the last fifth of training) when the rare "
                  "task comes in bursts of n at the same long-run frequency; n = 1 is i.i.d. "
                  "The paper (Figs 4, 6b): a larger injection gap degrades the task, "
                  "strongly for small models, little for large ones.")


def long_horizon(rows: list[Row], rare_loss: dict[str, Series], factor: int,
                 folder: Path) -> Figure:
    name = "long-horizon"
    fig, ax = plt.subplots(figsize=(5.2, 3.4), constrained_layout=True)
    end = 0
    for colour, row in zip(look.LINES, sorted(rows, key=width)):
        series = rare_loss.get(row.run_id) or []
        if not series:
            continue
        end = max(end, series[-1][0])
        theory = int(row.metrics["theory/critical_width"])
        side = "below" if width(row) < theory else "above"
        ax.plot(*zip(*series), color=colour, lw=0.9,
                label=f"width {width(row)} ({side} $N^*$={theory})")
        ax.axhline(row.metrics["theory/rare/loss"], color=colour, ls=":", lw=0.8)
    if end:
        ax.axvline(end / factor, color="grey", ls="--", lw=0.8)
        ax.text(end / factor, 0.9, f" 1/{factor} of the run", fontsize=7, color="grey",
                va="top")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("step (sampled, i.i.d.)")
    ax.set_ylabel("rare-task loss")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="center right")
    look.save(fig, folder, name)
    return Figure(name, "Long-horizon check: more data does not rescue a narrow student",
                  f"Rare-task loss over {factor}x the steps at which it is read (dashed "
                  "line), at widths below and above the critical width; dotted: the width's "
                  "optimum. The paper (Definition 2): below the critical width the loss "
                  "stays on its plateau however long the student trains.")


def interference(norms: dict[int, list[float]], cosines: dict[int, list[float]],
                 folder: Path) -> Figure:
    name = "interference"
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
    widths = sorted(set(norms) & set(cosines))
    for ax, data, label in ((left, norms, r"$\|\nabla_U L_{\mathrm{background}}\|$"),
                            (right, cosines, r"$\cos(g_{\mathrm{nontask}}, G_r)$")):
        mean = [np.mean(data[w]) if data[w] else np.nan for w in widths]
        std = [np.std(data[w]) if data[w] else np.nan for w in widths]
        ax.errorbar(widths, mean, yerr=std, marker="o", capsize=3)
        ax.set_xscale("log")
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.minorticks_off()
        ax.set_xlabel(r"width $N$")
        ax.set_ylabel(label + " (mean $\\pm$ sd)")
    right.axhline(0, color="grey", lw=0.5)
    left.set_title("background gradient (frequent_norm)")
    right.set_title("non-task part of the batch vs $G_r$")
    look.save(fig, folder, name)
    return Figure(name, "Interference against width (Corollary 5, Figures 4 and 9)",
                  "Second half of i.i.d. sampled runs: mean and standard deviation over the "
                  "logged steps of the background tasks' expected encoder gradient norm, and "
                  "of the cosine between the batch's non-rare part and the rare task's "
                  "reference gradient. The paper: as width grows the frequent tasks' gradients "
                  "weaken and interfere less, more steadily.")
