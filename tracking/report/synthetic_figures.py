"""The synthetic report's figures, drawn from what `synthetic.build` read: each function draws
one figure (PNG + PDF) and returns it with every plotted value as data (long format,
CONTRACTS 7: `data/<figure>.csv`). Values over seeds are drawn as their mean with a 95%
interval (Student's t, `verdict.mean_of`); the data holds each seed's value and the mean.
Drawn inside `tracking.style.STYLE` (`synthetic.build` sets it for the duration), never set
globally: a fit's plots drawn in the same process keep their own look."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tracking.curves import Row
from tracking import style as look
from tracking.report.claims import Figure
from tracking.report.synthetic_claims import (Key, Series, critical_width, curves, feature_steps,
                                              key, utilities, width)
from tracking.report.verdict import mean_of

TASKS = ("simple", "complex")
START = 0.5  # where Figure 3 draws a feature aligned from the start (step 0, off a log axis)


def value(k: Key | None, metric: str, v: float, step: int | str = "", seed="", n: int = 1,
          **extra) -> dict:
    """One plotted value: the grid point's axes, seed, n (replicates behind it), step."""
    axes = {"width": k.width, "frequency": k.frequency, "task": k.task} if k else {}
    return {**axes, "seed": k.seed if (k and seed == "") else seed, "n": n, "step": step,
            "metric": metric, "value": v, **extra}


def over_seeds(values: dict[int, float]) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of per-seed values; the interval collapses to the mean for one."""
    est = mean_of({str(s): v for s, v in values.items()}, "seeds")
    lo, hi = est.interval or (est.effect, est.effect)
    return est.effect, lo, hi, est.n


def mean_rows(k: Key, metric: str, values: dict[int, float], step: int | str = "",
              **extra) -> list[dict]:
    """Each seed's value, then the mean over seeds with its 95% interval (`lo`, `hi`)."""
    mean, lo, hi, n = over_seeds(values)
    return [*(value(k._replace(seed=s), metric, v, step, **extra) for s, v in values.items()),
            value(k, metric, mean, step, seed="mean", n=n, lo=lo, hi=hi, **extra)]


def phase(rows: list[Row], folder: Path) -> Figure:
    """Final rare loss over width x frequency per task (mean over seeds), the theory's N* as
    a staircase."""
    name = "fig2-phase"
    data: list[dict] = []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    image, lines = None, curves(rows)
    for ax, task in zip(axes, TASKS):
        mine = {k: line for k, line in lines.items() if k[0] == task}
        ax.set_title(f"{task} rare task")
        if not mine:
            ax.set_axis_off()
            continue
        widths = sorted({width(r) for line in mine.values() for r in line})
        freqs = sorted({k[1] for k in mine})  # rare at the bottom
        loss = np.full((len(freqs), len(widths)), np.nan)
        seeds = sorted({k[2] for k in mine})
        for i, f in enumerate(freqs):
            for j, w in enumerate(widths):
                per_seed = {r_key.seed: r.metrics["rare/loss"] for line in mine.values()
                            for r in line if (r_key := key(r))[:2] == (w, f)}
                if per_seed:
                    data += mean_rows(Key(w, f, task, seeds[0]), "rare/loss", per_seed)
                    loss[i, j] = np.mean(list(per_seed.values()))
        image = ax.imshow(loss, origin="lower", aspect="auto", cmap="cividis_r", vmin=0, vmax=1)
        for i, f in enumerate(freqs):
            for j in range(len(widths)):
                if np.isfinite(loss[i, j]):
                    ax.text(j, i, f"{max(loss[i, j], 0):.2f}", ha="center", va="center",
                            fontsize=6, color="white" if loss[i, j] > 0.4 else "black")
            theory = critical_width(next(line for k, line in mine.items() if k[1] == f)[0])
            data.append({"frequency": f, "task": task, "metric": "theory/critical_width",
                         "value": theory, "n": 1})
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
        ax.set_title(f"{task} rare task (mean of {len(seeds)} seed(s))")
        ax.legend(loc="lower right", framealpha=0.9)
    if image is not None:
        fig.colorbar(image, ax=axes, label="final rare-task loss (1 = nothing learned)")
    look.save(fig, folder, name)
    return Figure(name, "Figure 2: what each width learns, width x frequency",
                  "Final rare-task loss (population training, i.e. the width's converged "
                  "student; mean over seeds) for a simple (fast-decaying spectrum) and a "
                  "complex rare task; the vermillion bar left of each row is the theory's "
                  "critical width N* (smallest width whose optimum has rare loss <= the "
                  "learned threshold). The paper: larger widths learn rarer tasks, and complex "
                  "tasks need more width.", tuple(data))


def utility_order(rows: list[Row], folder: Path) -> Figure:
    """Step each feature was learned against its utility, one run per task."""
    name = "fig3-utility-order"
    data: list[dict] = []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True, sharey=True)
    for ax, task in zip(axes, TASKS):
        run = _middle_run(rows, task)
        ax.set_title(f"{task} rare task" + (f", width {width(run)}, f="
                                            f"{float(run.params['frequency']):g}, seed "
                                            f"{key(run).seed}" if run else ""))
        if run is None:
            continue
        u, t = utilities(run.params), feature_steps(run)
        data += [value(key(run), "feature_step", float(t[k, j]), feature=f"{k}/{j}",
                       utility=float(u[k, j]))
                 for k in range(u.shape[0]) for j in range(u.shape[1])]
        never = t < 0
        top = max(np.nanmax(t), 1) * 3  # "never learned" drawn above the latest step
        for part, colour, label in ((slice(None, -1), look.LINES[0], "background tasks"),
                                    (slice(-1, None), look.LINES[5], "rare task")):
            uu, tt, nn = u[part].ravel(), t[part].ravel(), never[part].ravel()
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
                  "utility, learned earlier; a width-N student keeps the top N. C6 and C8 are "
                  "judged on every run of the sweep.", tuple(data))


def _middle_run(rows: list[Row], task: str) -> Row | None:
    """The first seed's run at the middle frequency and the middle width: both learned and
    unlearned features, learned over time rather than from the start."""
    mine = [r for r in rows if r.params["task"] == task and r.state == "FINISHED"]
    if not mine:
        return None
    seed = min(key(r).seed for r in mine)
    mine = [r for r in mine if key(r).seed == seed]
    freqs = sorted({float(r.params["frequency"]) for r in mine})
    f = freqs[len(freqs) // 2]
    line = sorted((r for r in mine if float(r.params["frequency"]) == f), key=width)
    return line[len(line) // 2]


def update_and_forget(traces: dict[Key, dict[str, Series]], n: int, theory: int,
                      folder: Path) -> Figure:
    """The rare signal at a width below N* and one above with the bursts marked, and
    cos(g, G_r) at bursts vs between, per width."""
    name = "fig4-update-and-forget"
    data: list[dict] = []
    keys = sorted(traces)
    below = [k for k in keys if k.width < theory]
    above = [k for k in keys if k.width >= theory]
    shown = ([below[-1]] if below else []) + ([above[-1]] if above else [])
    fig = plt.figure(figsize=(10, 3.4), constrained_layout=True)
    grid = fig.add_gridspec(1, 3, width_ratios=[2, 2, 1.3])
    for i, k in enumerate(shown):
        ax = fig.add_subplot(grid[0, i])
        signal = traces[k]["rare/alignment"]
        bursts = [s for s, v in traces[k]["rare/injected"] if v > 0]
        data += [value(k, "rare/alignment", v, s, burst=n) for s, v in signal]
        data += [value(k, "burst", 1.0, s, burst=n) for s in bursts]
        for s in bursts:
            ax.axvline(s, color=look.LINES[5], lw=0.3, alpha=0.35)
        if signal:
            ax.plot(*zip(*signal), color=look.LINES[0], lw=0.8)
            _zoom(ax, signal, bursts)
        ax.plot([], [], color=look.LINES[5], lw=0.8, label=f"bursts of {n} ({len(bursts)})")
        ax.set_ylim(-0.02, 1.05)
        side = "below" if k.width < theory else "above"
        ax.set_title(f"width {k.width}, {side} $N^*$={theory} (seed {k.seed})")
        ax.set_xlabel("step")
        ax.set_ylabel(r"rare signal $\|P_U b_r\|^2$")
        ax.legend(loc="lower left", framealpha=0.9)
    ax = fig.add_subplot(grid[0, 2])
    box, positions = [], []
    for j, k in enumerate(keys):
        injected = dict(traces[k]["rare/injected"])
        cos = [(s, v) for s, v in traces[k]["interference/cos_batch"] if np.isfinite(v)]
        for at, keep in (("burst", lambda s: injected.get(s, 0) > 0),
                         ("between", lambda s: injected.get(s, 0) == 0)):
            values = [(s, v) for s, v in cos if keep(s)]
            data += [value(k, "interference/cos_batch", v, s, burst=n, at=at)
                     for s, v in values]
            box.append([v for _, v in values])
        positions += [3 * j + 1, 3 * j + 2]
    if box and all(box):
        drawn = ax.boxplot(box, positions=positions, showfliers=False, patch_artist=True,
                           medianprops={"color": "black"})
        for j, patch in enumerate(drawn["boxes"]):
            patch.set_facecolor(look.LINES[5] if j % 2 == 0 else look.LINES[4])
        ax.set_xticks([3 * j + 1.5 for j in range(len(keys))], [str(k.width) for k in keys])
        ax.set_xlabel(r"width $N$")
        ax.legend(drawn["boxes"][:2], ["at bursts", "between"], loc="center right",
                  framealpha=0.9)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title(r"$\cos(g, G_r)$ by width")
    look.save(fig, folder, name)
    frequency = keys[0].frequency if keys else 0.0
    return Figure(name, "Figure 4: update and forget",
                  f"The rare task arrives {n} samples at a time (long-run frequency f="
                  f"{frequency:g}; vertical ticks mark the bursts). Left: the rare task's "
                  f"leading direction inside span(U) at a width below the critical width "
                  f"N*={theory} and one above it (insets: the last cycles on their own "
                  "scale); right: the cosine between the step's "
                  "encoder gradient g and the rare task's reference gradient G_r (tangent "
                  "parts) at the bursts and between them. The paper: the narrow student gains "
                  "at each injection and loses it before the next, the wide one accumulates; "
                  "cos(g, G_r) is higher at injections in the wider student and near zero "
                  "between.", tuple(data))


def _zoom(ax, signal: Series, bursts: list[int], cycles: int = 4) -> None:
    """An inset of the last few burst cycles on their own scale: near zero the narrow
    student's spike at each burst and its fall back are too small for the full axis."""
    if len(bursts) < cycles + 1:
        return
    start = bursts[-cycles - 1]
    window = [(s, v) for s, v in signal if s >= start]
    inset = ax.inset_axes([0.5, 0.3, 0.46, 0.36])
    inset.plot(*zip(*window), color=look.LINES[0], lw=0.8)
    for s in bursts[-cycles - 1:]:
        inset.axvline(s, color=look.LINES[5], lw=0.6)
    inset.tick_params(labelsize=6)
    inset.set_title("the last bursts, own scale", fontsize=6, pad=2)


def bursts(final: dict[int, dict[Key, float]], folder: Path) -> Figure:
    """Final rare loss against burst size n per width: mean over seeds, 95% interval."""
    name = "fig6b-bursts"
    data: list[dict] = []
    fig, ax = plt.subplots(figsize=(4.8, 3.4), constrained_layout=True)
    sizes = sorted(final)
    widths = sorted({k.width for by_key in final.values() for k in by_key})
    for w in widths:
        points = []
        for n in sizes:
            per_seed = {k.seed: v for k, v in final[n].items() if k.width == w}
            if per_seed:
                k = next(k for k in final[n] if k.width == w)
                rows = mean_rows(k, "rare/loss final", per_seed, burst=n)
                data += rows
                points.append((n, rows[-1]["value"], rows[-1]["lo"], rows[-1]["hi"]))
        if points:
            n_, m, lo, hi = map(np.array, zip(*points))
            ax.errorbar(n_, m, yerr=[m - lo, hi - m], marker="o", capsize=3,
                        label=f"width {w}")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("rare samples per burst $n$ (one burst every $n/f$ samples)")
    ax.set_ylabel("final rare-task loss (mean, 95% interval)")
    ax.set_ylim(bottom=-0.02)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    look.save(fig, folder, name)
    return Figure(name, "Figure 6b (toy): matched-frequency bursts",
                  "Final rare-task loss (mean over whole burst cycles in the last fifth of "
                  "training; mean over seeds with its 95% interval) when the rare task comes "
                  "in bursts of n at the same long-run frequency; n = 1 is i.i.d. The paper "
                  "(Figs 4, 6b): a larger injection gap degrades the task, strongly for small "
                  "models, little for large ones.", tuple(data))


def long_horizon(rows: list[Row], rare_loss: dict[str, Series], factor: int,
                 folder: Path) -> Figure:
    """Rare loss over the long run per width: mean over seeds with a 95% band."""
    name = "long-horizon"
    data: list[dict] = []
    fig, ax = plt.subplots(figsize=(5.4, 3.4), constrained_layout=True)
    end = 0
    by_width: dict[int, list[Row]] = {}
    for row in rows:
        if rare_loss.get(row.run_id):
            by_width.setdefault(width(row), []).append(row)
    for colour, (w, runs) in zip(look.LINES, sorted(by_width.items())):
        steps = sorted({s for r in runs for s, _ in rare_loss[r.run_id]})
        per = {r.run_id: dict(rare_loss[r.run_id]) for r in runs}
        band = []
        for s in steps:
            per_seed = {key(r).seed: per[r.run_id][s] for r in runs if s in per[r.run_id]}
            rows_ = mean_rows(key(runs[0]), "rare/loss", per_seed, s)
            data += rows_
            band.append((s, rows_[-1]["value"], rows_[-1]["lo"], rows_[-1]["hi"]))
        end = max(end, steps[-1])
        theory = critical_width(runs[0])
        side = "below" if w < theory else "above"
        s_, m, lo, hi = map(np.array, zip(*band))
        ax.plot(s_, m, color=colour, lw=0.9,
                label=f"width {w} ({side} $N^*$={theory}, {len(runs)} seeds)")
        ax.fill_between(s_, lo, hi, color=colour, alpha=0.25, lw=0)
        ax.axhline(runs[0].metrics["theory/rare/loss"], color=colour, ls=":", lw=0.8)
    if end:
        ax.axvline(end / factor, color="grey", ls="--", lw=0.8)
        ax.text(end / factor, 0.9, f" 1/{factor} of the run", fontsize=7, color="grey",
                va="top")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("step (sampled, i.i.d.)")
    ax.set_ylabel("rare-task loss (mean, 95% band)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="center right", fontsize=7)
    look.save(fig, folder, name)
    return Figure(name, "Long-horizon check: more data does not rescue a narrow student",
                  f"Rare-task loss over {factor}x the steps at which it is first read (dashed "
                  "line), at widths below (N* - 1 included) and above the critical width; "
                  "mean over seeds with its 95% band; dotted: the width's optimum. The paper "
                  "(Definition 2): below the critical width the loss stays on its plateau "
                  "however long the student trains.", tuple(data))


def interference(rows: list[Row], norms: dict[str, list[float]],
                 cosines: dict[str, list[float]], folder: Path) -> Figure:
    """Per width, mean over seeds (95% interval) of each run's second-half mean
    frequent_norm, |mean cos(g_nontask, G_r)| and its standard deviation."""
    name = "interference"
    data: list[dict] = []
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), constrained_layout=True)
    panels = (("interference/frequent_norm", r"$\|(I-UU^T)\nabla_U L_{\mathrm{bg}}\|$",
               lambda r: np.mean(norms[r.run_id])),
              ("|mean cos_nontask|", r"$|\mathrm{mean}\ \cos(g_{\mathrm{nontask}}, G_r)|$",
               lambda r: abs(np.mean(cosines[r.run_id]))),
              ("sd cos_nontask", r"sd of $\cos(g_{\mathrm{nontask}}, G_r)$",
               lambda r: np.std(cosines[r.run_id])))
    runs = [r for r in rows if norms.get(r.run_id) and len(cosines.get(r.run_id) or []) > 1]
    widths = sorted({width(r) for r in runs})
    for ax, (metric, label, read) in zip(axes, panels):
        points = []
        for w in widths:
            mine = [r for r in runs if width(r) == w]
            rows_ = mean_rows(key(mine[0]), metric, {key(r).seed: float(read(r))
                                                     for r in mine})
            data += rows_
            points.append((w, rows_[-1]["value"], rows_[-1]["lo"], rows_[-1]["hi"]))
        if points:
            w_, m, lo, hi = map(np.array, zip(*points))
            ax.errorbar(w_, m, yerr=[m - lo, hi - m], marker="o", capsize=3)
        ax.set_xscale("log")
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.minorticks_off()
        ax.set_xlabel(r"width $N$")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
    axes[0].set_title("background gradient (frequent_norm)")
    axes[1].set_title("non-task part of the batch vs $G_r$")
    axes[2].set_title("its spread over steps")
    look.save(fig, folder, name)
    return Figure(name, "Interference against width (Corollary 5, Figures 4 and 9)",
                  "Second half of i.i.d. sampled runs, tangent vectors ((I - UU^T) g): per run "
                  "the mean of the background tasks' expected encoder gradient norm, and the "
                  "|mean| and standard deviation over logged steps of the cosine between the "
                  "batch's non-rare part and the rare task's reference gradient; mean over "
                  "seeds with its 95% interval. The paper: as width grows the frequent tasks' "
                  "gradients weaken and interfere less, more steadily.", tuple(data))


def two_directions(traces: dict[Key, dict[str, Series]], folder: Path) -> Figure:
    """Per step, the change of the rare alignment split into the rare samples' push and the
    rest's pull, at each width (the paper's one-frequent, one-rare picture: N = 1, 2)."""
    name = "two-directions"
    data: list[dict] = []
    keys = sorted(traces)
    fig, axes = plt.subplots(2, max(len(keys), 1), figsize=(4.2 * max(len(keys), 1), 4.6),
                             constrained_layout=True, sharex=True, squeeze=False)
    for j, k in enumerate(keys):
        top, bottom = axes[0, j], axes[1, j]
        alignment = traces[k].get("rare/alignment") or []
        data += [value(k, "rare/alignment", v, s) for s, v in alignment]
        if alignment:
            top.plot(*zip(*alignment), color=look.LINES[0], lw=0.9)
        top.set_ylim(-0.02, 1.05)
        top.set_title(f"width {k.width} (seed {k.seed})")
        top.set_ylabel(r"rare alignment $\|P_U b_r\|^2$")
        for metric, colour, label in (("rare/alignment_push", look.LINES[2],
                                       "push (rare samples)"),
                                      ("rare/alignment_pull", look.LINES[5],
                                       "pull (the rest)")):
            series = [(s, v) for s, v in traces[k].get(metric) or [] if np.isfinite(v)]
            data += [value(k, metric, v, s) for s, v in series]
            if series:
                bottom.plot(*zip(*series), color=colour, lw=0.7, label=label)
        bottom.axhline(0, color="grey", lw=0.5)
        bottom.set_xlabel("step")
        bottom.set_ylabel("change of the alignment per step")
        if bottom.get_legend_handles_labels()[0]:
            bottom.legend(loc="lower right", framealpha=0.9)
    look.save(fig, folder, name)
    return Figure(name, "The two-direction picture: frequent pull, rare push",
                  "One frequent and one rare direction. Top: the rare alignment. Bottom: its "
                  "first-order change per step split into the rare samples' part (push) and "
                  "the rest's (pull). The paper: at width 1 the frequent task pulls the rare "
                  "alignment down between the rare task's pushes; at width 2 both directions "
                  "fit and the pull vanishes.", tuple(data))
