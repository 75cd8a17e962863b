"""The paper's OLMo claims O1-O5 (CONTRACTS 7, rev 3), each decided by the shared verdict rules
(`tracking.report.verdict`): a signed effect per independent replicate, its 95% interval and a
null. Each is a plain function of the numbers the runs logged, so a test can hand it data where
the claim holds, data that contradicts it and pure noise.

What each reads, and why (the paper gives orderings, not thresholds; these are our reading):
- O1, O2 on `rare/label_loss` and `rare/label_acc`: the task's loss and accuracy over its label
  tokens alone. A model that learned only which tokens can be labels sits at the floor ln k
  (k = 2 labels for cmp, 100 for add) and at chance, and the full-vocabulary loss falls from
  ln 50,304 to there by that alone. Where no cell is below the floor (or above chance) by more
  than the noise, both are null: only the label vocabulary was learned. O1 is also null where
  the sizes it compares saw different instance counts (`olmo.budget: ladder`): exposure alone
  would then order them.
- O3 on each gap N's task training loss averaged over the last whole cycle of the largest N
  (every N's cycle fits in it a whole number of times): the loss at the last step is, for the
  largest N, read right after its burst, its best moment.
- O4 on `rare/retained` (read in float32), the k-th injection of each size paired with the k-th
  of the next size in the same seed (one token stream: the same injection at the same step).
- O5 on the cosines in units of their noise floor 1/sqrt(D) (D = K x 3 d_model, the measured
  neurons' weights): two independent random directions in D dimensions have cos ~ N(0, 1/D), so
  a raw |cos| falls with width by noise alone. Injection steps and other steps are judged apart.
Replicates are independent runs (seeds, or the grid's cells where one seed ran), or injections
and measured steps paired across sizes where the claim is about those; each claim's evidence
names its unit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tracking.curves import width_order
from tracking.report import verdict
from tracking.report.claims import Cells, Claim

LABELS = {"cmp": 2, "add": 100}  # tokens a LABEL can be: the label-entropy floor is ln of it
LOSS_TOL = 0.02  # nats: a task loss that moved less than this from its start did not move
# Per-instance sd of a label loss near its floor, in nats: a model whose label logits swing
# by about one nat independently of the answer. 2 standard errors of a mean over n instances
# are then 1/sqrt(n) nats; below the floor by more than that is more than the noise.
INSTANCE_SD = 0.5

TEXT = {
    "O1": "Larger models and higher frequencies learn the task better (lower task loss over "
          "the labels, higher accuracy).",
    "O2": "Tasks are learned in order of frequency.",
    "O3": "At equal long-run frequency, larger injection gaps (N instances every N batches) "
          "give higher task loss.",
    "O4": "Larger models retain more of the task between injections.",
    "O5": "cos(g_nontask, g_r) is smaller and steadier in larger models.",
}
FIGURE = {"O1": "olmo-fig5-heatmaps", "O2": "olmo-fig6a-order", "O3": "olmo-fig6b-gaps",
          "O4": "olmo-fig8-retention", "O5": "olmo-fig9-interference"}
ONLY_LABELS = "only the label vocabulary was learned"
History = list[tuple[int, float]]


def floor(task: str) -> float:
    """The label-entropy floor: a uniform guess over the task's labels (ln 2, ln 100)."""
    return math.log(LABELS[task])


def chance(task: str) -> float:
    return 1 / LABELS[task]


def loss_noise(evaluated: int) -> float:
    """Two standard errors of a label loss averaged over `evaluated` instances."""
    return 2 * INSTANCE_SD / math.sqrt(max(evaluated, 1))


def acc_noise(task: str, evaluated: int) -> float:
    """Two binomial standard errors of an accuracy at chance over `evaluated` instances."""
    p = chance(task)
    return 2 * math.sqrt(p * (1 - p) / max(evaluated, 1))


def sizes_of(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=width_order)


def _cells(cells: Cells | None, used: int) -> Cells:
    return cells if cells is not None else Cells(used, used)


def neighbour_gain(values: Sequence[float], lower_is_better: bool) -> float:
    """Mean improvement from each setting to the next larger one (nan if fewer than two):
    one replicate's trend along an axis (sizes, frequencies), positive when it goes the
    claimed way."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if len(v) < 2:
        return math.nan
    steps = np.diff(v)
    return float(-steps.mean() if lower_is_better else steps.mean())


Verdict = tuple[str, verdict.Estimate, float]  # (what, estimate, null), direction "greater"
RANK = {False: 0, None: 1, True: 2}


def weakest(claim_id: str, parts: list[Verdict], evidence: str, cells: Cells) -> Claim:
    """A claim made of several halves holds only if every half does: it is False if one is
    False, else null if one is; the claim shows the deciding half's statistic, and every
    half's in its evidence."""
    decided = [(verdict.decide(est, null, "greater"), what, est, null)
               for what, est, null in parts]
    (holds, reason), what, est, null = min(decided, key=lambda d: RANK[d[0][0]])
    lines = "; ".join(f"{w}: {e.describe()} (null {n:.3g}) -> "
                      f"{ {True: 'holds', False: 'the other way', None: 'undecided'}[d[0]] }"
                      for d, w, e, n in decided)
    claim = verdict.judge(claim_id, FIGURE[claim_id], TEXT[claim_id], est, null, "greater",
                          f"{evidence}; deciding: {what}; {lines}", cells)
    assert claim.holds is holds
    return claim


def _undecided(claim_id: str, reason: str, cells: Cells, evidence: str = "") -> Claim:
    return verdict.undecided(claim_id, FIGURE[claim_id], TEXT[claim_id], reason, cells,
                             evidence)


# O1 -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One run of the heat-map sweep at the end of training."""

    task: str
    size: str  # ladder name, "20M"
    frequency: float  # instances per training token
    seed: int
    label_loss: float  # rare/label_loss: cross-entropy over the labels, test split
    label_acc: float  # rare/label_acc
    evaluated: int  # test instances both were read on
    instances: int  # injection.total_instances: task instances the run saw

    def below_floor(self) -> bool:
        """Learned more than the label vocabulary, beyond the noise."""
        return (self.label_loss < floor(self.task) - loss_noise(self.evaluated)
                or self.label_acc > chance(self.task) + acc_noise(self.task, self.evaluated))


def learned_nothing_beyond_labels(cells: list[Cell]) -> str | None:
    """The null's reason where no cell is below the floor (or above chance) beyond the noise."""
    if any(c.below_floor() for c in cells):
        return None
    best = min(cells, key=lambda c: c.label_loss - floor(c.task))
    return (f"{ONLY_LABELS}: no cell's rare/label_loss is below the floor ln k by more than "
            f"the noise (2 s.e. of a mean over {best.evaluated} instances, "
            f"{loss_noise(best.evaluated):.3f} nats), nor its rare/label_acc above chance by "
            f"more than 2 binomial s.e. (closest: {best.task} {best.size} f={best.frequency:.3g}"
            f" seed {best.seed}: {best.label_loss:.4f} against {floor(best.task):.4f}, "
            f"accuracy {best.label_acc:.3f})")


def o1_size_and_frequency(cells: list[Cell], planned: Cells | None = None) -> Claim:
    """Figure 5: per (task, frequency, seed), the label loss falls (and the label accuracy
    rises) from each size to the next; per (task, size, seed) from each frequency to the next
    higher one. Each is a replicate; every half must hold."""
    used = _cells(planned, len(cells))
    if not cells:
        return _undecided("O1", "no finished grid point of the heat-map sweep", used)
    unequal = []
    for key in sorted({(c.task, c.frequency, c.seed) for c in cells}):
        counts = {c.size: c.instances for c in cells if (c.task, c.frequency, c.seed) == key}
        if len(set(counts.values())) > 1:
            unequal.append(f"{key[0]} f={key[1]:.3g}: " + ", ".join(
                f"{s} {counts[s]:,}" for s in sizes_of(counts)))
    if unequal:
        return _undecided("O1", "the sizes compared saw different numbers of task instances "
                                "(olmo.budget: ladder), so exposure alone orders them: "
                          + "; ".join(unequal[:3]), used)
    nothing = learned_nothing_beyond_labels(cells)
    if nothing:
        return _undecided("O1", nothing, used)
    size_rows: dict[str, list[Cell]] = {}
    freq_rows: dict[str, list[Cell]] = {}
    for c in cells:
        size_rows.setdefault(f"{c.task} f={c.frequency:.3g} seed {c.seed}", []).append(c)
        freq_rows.setdefault(f"{c.task} {c.size} seed {c.seed}", []).append(c)
    by_size = {k: sorted(v, key=lambda c: width_order(c.size)) for k, v in size_rows.items()}
    by_freq = {k: sorted(v, key=lambda c: c.frequency) for k, v in freq_rows.items()}
    parts: list[Verdict] = []
    for what, rows, unit in (("sizes", by_size, "(task, frequency, seed) runs"),
                             ("frequencies", by_freq, "(task, size, seed) runs")):
        parts.append((f"label loss across {what}", verdict.mean_of(
            {k: neighbour_gain([c.label_loss for c in v], True) for k, v in rows.items()},
            unit), 0.0))
    if any(c.label_acc > chance(c.task) + acc_noise(c.task, c.evaluated) for c in cells):
        for what, rows, unit in (("sizes", by_size, "(task, frequency, seed) runs"),
                                 ("frequencies", by_freq, "(task, size, seed) runs")):
            parts.append((f"label accuracy across {what}", verdict.mean_of(
                {k: neighbour_gain([c.label_acc for c in v], False) for k, v in rows.items()},
                unit), 0.0))
    if not all(math.isfinite(est.effect) for _, est, _ in parts):
        missing = [what for what, est, _ in parts if not math.isfinite(est.effect)]
        return _undecided("O1", f"one value per row along {', '.join(missing)}: that half "
                                "cannot be compared", used)
    return weakest("O1", parts, "final rare/label_loss (and rare/label_acc where a cell is "
                                "above chance), each replicate the mean gain from one setting "
                                "to the next", used)


# O2 -----------------------------------------------------------------------------------------

def reached(history: History, level: float) -> float:
    """First step at which the loss is at or below `level` (inf if never)."""
    return next((float(step) for step, value in history if value <= level), math.inf)


def o2_frequency_order(curves: dict[tuple[str, str, int], dict[float, History]],
                       evaluated: int, planned: Cells | None = None) -> Claim:
    """Figure 6a: per (task, size, seed), the step at which each frequency's label loss first
    falls below the floor by more than the noise; a replicate is Spearman's rho of frequency
    against how early (never: after the end, tied), positive when frequent tasks come first."""
    runs = sum(len(by_f) for by_f in curves.values())
    used = _cells(planned, runs)
    level = {task: floor(task) - loss_noise(evaluated) for task, _, _ in curves}
    firsts = {key: {f: reached(h, level[key[0]]) for f, h in by_f.items() if h}
              for key, by_f in curves.items()}
    if not any(math.isfinite(t) for steps in firsts.values() for t in steps.values()):
        return _undecided("O2", f"{ONLY_LABELS}: no run's rare/label_loss fell below the floor "
                                f"ln k by more than the noise ({loss_noise(evaluated):.3f} "
                                "nats)", used)
    rho, lines = {}, []
    for (task, size, seed), steps in sorted(firsts.items()):
        if len(steps) < 2:
            continue
        end = max((s for h in curves[task, size, seed].values() for s, _ in h), default=0) + 1
        early = {f: -(t if math.isfinite(t) else end) for f, t in steps.items()}
        label = f"{task} {size} seed {seed}"
        rho[label] = verdict.rank_correlation(list(early), list(early.values()))
        lines.append(f"{label}: " + ", ".join(
            f"f={f:.3g} at {'never' if math.isinf(t) else int(t)}"
            for f, t in sorted(steps.items(), reverse=True)))
    est = verdict.mean_of(rho, "(task, size, seed) runs")
    if est.n == 0:
        return _undecided("O2", "every frequency reached the level at the same evaluation (or "
                                "none did) in every run: evaluate more often (olmo.eval_every)",
                          used, "; ".join(lines))
    return verdict.judge("O2", FIGURE["O2"], TEXT["O2"], est, 0.0, "greater",
                         "per (task, size, seed), Spearman's rho of frequency against how early "
                         "rare/label_loss first fell below ln k by more than "
                         f"{loss_noise(evaluated):.3f} nats: " + "; ".join(lines), used)


# O3 -----------------------------------------------------------------------------------------

def cycle_mean(history: History, cycle: int) -> tuple[float, int]:
    """Mean loss over the last `cycle` steps (end - cycle, end], and how many reads it had."""
    if not history:
        return math.nan, 0
    end = history[-1][0]
    values = [v for s, v in history if end - cycle < s <= end]
    return (float(np.mean(values)) if values else math.nan), len(values)


def o3_injection_gap(losses: dict[tuple[str, int], dict[int, History]],
                     injected: dict[tuple[str, int], dict[int, float]],
                     planned: Cells | None = None) -> Claim:
    """Figure 6b: per (size, seed), the least-squares slope of the task loss (averaged over the
    last cycle of the largest N) against log2 N; positive when larger gaps hurt. `injected`
    (instances in all per N) must be equal across N: the same long-run frequency."""
    used = _cells(planned, sum(len(v) for v in losses.values()))
    keys = [k for k in sorted(losses, key=lambda k: (width_order(k[0]), k[1]))
            if len(losses[k]) >= 2]
    if not keys:
        return _undecided("O3", "no size was run at two or more gaps N", used)
    unequal = [f"{s} seed {seed}: " + ", ".join(f"N={n} {int(v)}" for n, v in
                                                 sorted(injected[s, seed].items()))
               for s, seed in keys if len(set(injected.get((s, seed), {}).values())) > 1]
    if unequal:
        return _undecided("O3", "the gaps did not inject the same instances in all, so the "
                                "frequencies differ: " + "; ".join(unequal), used)
    cycle = max(n for k in keys for n in losses[k])
    means = {k: {n: cycle_mean(h, cycle) for n, h in losses[k].items()} for k in keys}
    thin = sorted({(n, reads) for k in keys for n, (_, reads) in means[k].items()
                   if reads < 2 and cycle > 1})
    if thin:
        return _undecided("O3", f"fewer than two loss reads in the last cycle of N={cycle} "
                                "steps: evaluate more often (olmo.eval_every at most "
                                f"{cycle // 2})", used)
    if all(abs(h[0][1] - m) <= LOSS_TOL for k in keys for n, h in losses[k].items()
           for m in [means[k][n][0]]):
        return _undecided("O3", "no run moved its task loss from where it started: nothing "
                                "was learned to forget", used)
    slopes = {f"{s} seed {seed}": verdict.slope([math.log2(n) for n in sorted(means[s, seed])],
                                                 [means[s, seed][n][0]
                                                  for n in sorted(means[s, seed])])
              for s, seed in keys}
    lines = "; ".join(f"{s} seed {seed}: " + ", ".join(
        f"N={n} {means[s, seed][n][0]:.4g}" for n in sorted(means[s, seed])) for s, seed in keys)
    return verdict.judge("O3", FIGURE["O3"], TEXT["O3"],
                         verdict.mean_of(slopes, "(size, seed) runs"), 0.0, "greater",
                         f"rare/train_loss averaged over the last {cycle} steps (one cycle of "
                         f"the largest N), its slope against log2 N per (size, seed): {lines}",
                         used)


# O4 -----------------------------------------------------------------------------------------

def o4_retention(retained: dict[tuple[str, int], list[float]],
                 planned: Cells | None = None) -> Claim:
    """Figure 8: the k-th injection's `rare/retained` in each size against the next size's in
    the same seed; the median of the paired gains (larger minus smaller) with a bootstrap
    interval over the pairs."""
    used = _cells(planned, len(retained))
    sizes = sizes_of(s for s, _ in retained)
    if len(sizes) < 2:
        return _undecided("O4", "retention needs two sizes", used)
    pairs = {}
    for seed in sorted({seed for _, seed in retained}):
        rows = [retained.get((s, seed), []) for s in sizes]
        for k in range(min(len(r) for r in rows)):
            pairs[f"seed {seed} injection {k}"] = neighbour_gain([r[k] for r in rows], False)
    est = verdict.bootstrap(pairs, np.median, "injections paired across sizes")
    spread = "; ".join(f"{s} seed {seed}: median {np.median(v):.3g} over {len(v)}"
                       for (s, seed), v in sorted(retained.items(),
                                                  key=lambda kv: (width_order(kv[0][0]),
                                                                  kv[0][1])) if v)
    if est.n < verdict.MIN_REPLICATES:
        return _undecided("O4", "fewer than two injections that lowered the task loss in "
                                "every size of a seed", used, spread)
    return verdict.judge("O4", FIGURE["O4"], TEXT["O4"], est, 0.0, "greater",
                         "rare/retained (float32), the k-th injection of each size against the "
                         f"next size's in the same seed: {spread}", used)


# O5 -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cosine:
    """One measured step of one run."""

    step: int
    value: float  # interference/cos_nontask (or its rows variant)
    injected: bool  # the step's batch held task instances


def noise_floor(dimension: int) -> float:
    """The sd of the cosine of two independent random directions in `dimension` dimensions."""
    return 1 / math.sqrt(dimension)


def o5_interference(cosines: dict[tuple[str, int], list[Cosine]], dimension: dict[str, int],
                    planned: Cells | None = None, metric: str = "interference/cos_nontask"
                    ) -> Claim:
    """Figure 9: on steps measured in every size of a seed, z = cos x sqrt(D) (the cosine in
    units of its noise floor). Smaller: per step, |z| falls from each size to the next;
    steadier: per step, the squared deviation of z from its run's mean falls (the mean of
    those is the variance's fall). Injection steps and other steps are judged apart; every
    judged part must hold. Pure noise gives z ~ N(0, 1) at every size: both effects 0."""
    used = _cells(planned, len(cosines))
    sizes = sizes_of(s for s, _ in cosines)
    if len(sizes) < 2:
        return _undecided("O5", f"needs two sizes with measured steps ({metric}; "
                                "olmo.measure_every > 0)", used)
    parts: list[Verdict] = []
    described = []
    for group, injected in (("other steps", False), ("injection steps", True)):
        smaller, steadier = {}, {}
        for seed in sorted({seed for _, seed in cosines}):
            runs = [{c.step: c.value * math.sqrt(dimension[s])
                     for c in cosines.get((s, seed), []) if c.injected is injected}
                    for s in sizes]
            common = sorted(set.intersection(*(set(r) for r in runs)))
            if not common:
                continue
            centre = [np.mean([r[t] for t in common]) for r in runs]
            for t in common:
                smaller[f"seed {seed} step {t}"] = neighbour_gain(
                    [abs(r[t]) for r in runs], True)
                steadier[f"seed {seed} step {t}"] = neighbour_gain(
                    [(r[t] - m) ** 2 for r, m in zip(runs, centre)], True)
        if len(smaller) < 3:
            described.append(f"{group}: {len(smaller)} step(s) measured in every size, not "
                             "judged")
            continue
        unit = f"{group} paired across sizes"
        parts += [(f"|cos| in noise units falls with size ({group})",
                   verdict.mean_of(smaller, unit), 0.0),
                  (f"variance in noise units falls with size ({group})",
                   verdict.mean_of(steadier, unit), 0.0)]
    floors = ", ".join(f"{s}: D={dimension[s]:,}, 1/sqrt(D)={noise_floor(dimension[s]):.2g}"
                       for s in sizes)
    if not parts:
        return _undecided("O5", "fewer than three steps measured in every size of a seed "
                                f"({metric}; olmo.measure_every > 0)", used,
                          "; ".join(described))
    return weakest("O5", parts, f"{metric} as z = cos x sqrt(D) ({floors})"
                   + ("; " + "; ".join(described) if described else ""), used)
