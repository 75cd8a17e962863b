"""The paper's OLMo claims O1-O5 (CONTRACTS 7), each a plain function of the numbers the runs
logged, so a test can hand it data where the claim holds, data that contradicts it and data
that cannot judge it.

How each is judged (the paper gives orderings, not thresholds; these are our reading):
- differences smaller than the noise are ties: `LOSS_TOL` nats for a task loss read on a few
  hundred instances, twice the binomial standard error for an accuracy;
- an ordering holds when no comparison of neighbours (adjacent sizes, frequencies or gaps)
  goes the wrong way by more than the noise and at least one goes the right way by more;
- a claim is `holds=None` when its runs lack what it needs (fewer than two sizes, nothing
  learned, no injection that lowered the loss), and its evidence says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import mean, median, pstdev

from tracking.curves import width_order
from tracking.report.claims import Claim

LOSS_TOL = 0.02  # nats: two task losses closer than this are a tie
CHANCE = {"cmp": 0.5, "add": 0.01}  # test accuracy of guessing: two labels, 100 sums
SHOWN = 3  # contradictions quoted in an evidence line

TEXT = {
    "O1": "Larger models and higher frequencies learn the task better (lower task training "
          "loss, higher test accuracy).",
    "O2": "Tasks are learned in order of frequency.",
    "O3": "At equal long-run frequency, larger injection gaps (N instances every N batches) "
          "give higher task loss.",
    "O4": "Larger models retain more of the task between injections.",
    "O5": "cos(g_nontask, g_r) is smaller and steadier in larger models.",
}
FIGURE = {"O1": "olmo-fig5-heatmaps", "O2": "olmo-fig6a-order", "O3": "olmo-fig6b-gaps",
          "O4": "olmo-fig8-retention", "O5": "olmo-fig9-interference"}


def _claim(claim_id: str, holds: bool | None, evidence: str) -> Claim:
    return Claim(claim_id, FIGURE[claim_id], TEXT[claim_id], holds, evidence)


@dataclass(frozen=True)
class Cell:
    """One grid point's task at the end of training (seeds averaged)."""

    task: str
    size: str  # ladder name, "20M"
    frequency: float  # instances per training token
    initial_loss: float  # rare/train_loss before the first step
    loss: float  # rare/train_loss at the end
    acc: float  # rare/test_acc at the end
    evaluated: int  # test instances the accuracy was read on


@dataclass(frozen=True)
class Ordering:
    """Neighbour comparisons along one axis: how many went the claimed way by more than the
    noise, and the ones that went the other way (as text)."""

    compared: int = 0
    better: int = 0
    against: tuple[str, ...] = ()
    tol: float = 0.0  # what counted as noise

    def __add__(self, other: "Ordering") -> "Ordering":
        return Ordering(self.compared + other.compared, self.better + other.better,
                        self.against + other.against, max(self.tol, other.tol))

    @property
    def holds(self) -> bool:
        return not self.against and self.better > 0

    def describe(self, what: str) -> str:
        noise = " beyond the noise" if self.tol else ""
        if not self.compared:
            return f"{what}: not compared (one value only)"
        if self.against:
            shown = "; ".join(self.against[:SHOWN])
            more = f" and {len(self.against) - SHOWN} more" if len(self.against) > SHOWN else ""
            return (f"{what}: {len(self.against)} of {self.compared} neighbour comparisons go "
                    f"the other way{noise} ({shown}{more})")
        if not self.better:
            return f"{what}: all {self.compared} neighbour comparisons are ties within the noise"
        return (f"{what}: {self.better} of {self.compared} neighbour comparisons better{noise}, "
                "none worse")


def ordered(values: list[tuple[str, float]], tol: float, lower_is_better: bool,
            where: str) -> Ordering:
    """`values` listed from the smaller to the larger setting (size, frequency, gap), each
    expected to be better (or, with `lower_is_better=False` for a loss that should rise,
    worse) than the one before, beyond `tol`."""
    out = Ordering(tol=tol)
    values = [(name, value) for name, value in values if not math.isnan(value)]  # not logged
    for (a, va), (b, vb) in zip(values, values[1:]):
        gain = 0.0 if va == vb else (va - vb) if lower_is_better else (vb - va)  # inf == inf
        against = () if gain >= -tol else (f"{where}{b} {vb:.3g} vs {a} {va:.3g}",)
        out += Ordering(1, int(gain > tol), against, tol)
    return out


def _sizes(names) -> list[str]:
    return sorted(set(names), key=width_order)


def _acc_tol(cells: list[Cell]) -> float:
    """Twice the standard error of an accuracy near chance, on the fewest evaluated."""
    n = min(c.evaluated for c in cells)
    p = max(CHANCE.get(c.task, 0.5) for c in cells)
    return 2 * math.sqrt(p * (1 - p) / max(n, 1))


def o1_size_and_frequency(cells: list[Cell]) -> Claim:
    """Figure 5: in each task's size x frequency map, a larger size (same frequency) and a
    higher frequency (same size) have no higher loss and, where any cell's accuracy is above
    chance, no lower accuracy."""
    if not cells:
        return _claim("O1", None, "no finished grid point of the heat-map sweep")
    if max(abs(c.initial_loss - c.loss) for c in cells) <= LOSS_TOL:
        return _claim("O1", None, "no run moved its task loss from where it started (by more "
                                  f"than {LOSS_TOL} nats): nothing was learned to compare")
    by_size, by_freq, acc_size, acc_freq = Ordering(), Ordering(), Ordering(), Ordering()
    acc_tol = _acc_tol(cells)
    tasks = sorted({c.task for c in cells})
    for task in tasks:
        grid = {(c.size, c.frequency): c for c in cells if c.task == task}
        sizes = _sizes(s for s, _ in grid)
        freqs = sorted({f for _, f in grid})
        for f in freqs:
            row = [(s, grid[s, f]) for s in sizes if (s, f) in grid]
            where = f"{task} f={f:.3g}: "
            by_size += ordered([(s, c.loss) for s, c in row], LOSS_TOL, True, where)
            acc_size += ordered([(s, c.acc) for s, c in row], acc_tol, False, where)
        for s in sizes:
            col = [(f"f={f:.3g}", grid[s, f]) for f in freqs if (s, f) in grid]
            where = f"{task} {s}: "
            by_freq += ordered([(f, c.loss) for f, c in col], LOSS_TOL, True, where)
            acc_freq += ordered([(f, c.acc) for f, c in col], acc_tol, False, where)
    if not by_size.compared or not by_freq.compared:
        half, other, seen = (("size", "frequencies", by_freq) if not by_size.compared
                             else ("frequency", "sizes", by_size))
        return _claim("O1", None, f"one {half} per task: that half of the claim cannot be "
                                  f"judged; " + seen.describe(f"task loss across {other}"))
    above = [c for c in cells if c.acc > CHANCE.get(c.task, 0.5) + acc_tol]
    parts = [by_size.describe("task loss across sizes"),
             by_freq.describe("task loss across frequencies")]
    judged = [by_size, by_freq]
    if above:
        parts += [acc_size.describe("test accuracy across sizes"),
                  acc_freq.describe("test accuracy across frequencies")]
        judged += [acc_size, acc_freq]
    else:
        best = max(cells, key=lambda c: c.acc - CHANCE.get(c.task, 0.5))
        parts.append(f"test accuracy at chance in every cell (best {best.acc:.3f}, {best.task} "
                     f"{best.size} f={best.frequency:.3g}, chance "
                     f"{CHANCE.get(best.task, 0.5)} + {acc_tol:.3f}): not judged on accuracy")
    holds = all(o.holds for o in judged)
    return _claim("O1", holds, f"final rare/train_loss (ties within {LOSS_TOL} nats) and "
                               f"rare/test_acc (ties within {acc_tol:.3f}): " + "; ".join(parts))


def reached(history: list[tuple[int, float]], level: float) -> float:
    """First step at which the loss is at or below `level` (inf if never)."""
    return next((float(step) for step, value in history if value <= level), math.inf)


def o2_frequency_order(curves: dict[tuple[str, str], dict[float, list[tuple[int, float]]]]
                       ) -> Claim:
    """Figure 6a: per (task, size), the step at which each frequency's task loss first reaches
    halfway from where it started to the lowest any of them reached; a higher frequency gets
    there no later."""
    order, levels, skipped = Ordering(), [], []
    for (task, size), by_freq in sorted(curves.items()):
        runs = {f: h for f, h in by_freq.items() if h}
        if len(runs) < 2:
            continue
        start = mean(h[0][1] for h in runs.values())
        lowest = min(v for h in runs.values() for _, v in h)
        if start - lowest <= LOSS_TOL:
            skipped.append(f"{task} {size}")
            continue
        level = (start + lowest) / 2
        steps = {f: reached(h, level) for f, h in runs.items()}
        # Later is worse: compare steps as a loss, from the rarest to the most frequent.
        order += ordered([(f"f={f:.3g}", steps[f]) for f in sorted(steps)], 0.0, True,
                         f"{task} {size}: step reaching {level:.3g} at ")
        levels.append(f"{task} {size} (level {level:.3g}): " + ", ".join(
            f"f={f:.3g} at {'never' if math.isinf(t) else int(t)}"
            for f, t in sorted(steps.items(), reverse=True)))
    if not order.compared:
        why = (f"no loss moved (by more than {LOSS_TOL} nats) in {', '.join(skipped)}"
               if skipped else "no task and size with two or more frequencies")
        return _claim("O2", None, why)
    if not order.against and not order.better:
        return _claim("O2", None, "every frequency reached its level at the same evaluation: "
                                  "evaluate more often (olmo.eval_every) to order them; "
                      + "; ".join(levels))
    return _claim("O2", order.holds, order.describe("higher frequency reaches the level sooner")
                  + ". " + "; ".join(levels))


def o3_injection_gap(final: dict[str, dict[int, float]], initial: dict[str, float],
                     injected: dict[str, dict[int, float]]) -> Claim:
    """Figure 6b: per size, the final task loss does not fall as the gap N grows (within the
    noise) and is higher at the largest N than at the smallest. `injected` (size -> N ->
    instances in all) must be equal across N: the same long-run frequency."""
    sizes = [s for s in _sizes(final) if len(final[s]) >= 2]
    if not sizes:
        return _claim("O3", None, "no size was run at two or more gaps N")
    unequal = [f"{s}: " + ", ".join(f"N={n} {int(v)}" for n, v in sorted(injected[s].items()))
               for s in sizes if len(set(injected.get(s, {}).values())) > 1]
    if unequal:
        return _claim("O3", None, "the gaps did not inject the same instances in all, so the "
                                  "frequencies differ: " + "; ".join(unequal))
    if all(abs(initial[s] - v) <= LOSS_TOL for s in sizes for v in final[s].values()):
        return _claim("O3", None, "no run moved its task loss from where it started: nothing "
                                  "was learned to forget")
    order, lines = Ordering(), []
    for size in sizes:
        gaps = sorted(final[size])
        # Expected to rise with N: as a loss that should be lower at the smaller N.
        rising = ordered([(f"N={n}", final[size][n]) for n in gaps], LOSS_TOL, False,
                         f"{size}: ")
        widest = final[size][gaps[-1]] - final[size][gaps[0]]
        order += Ordering(rising.compared, int(widest > LOSS_TOL), rising.against, LOSS_TOL)
        lines.append(f"{size}: " + ", ".join(f"N={n} {final[size][n]:.3g}" for n in gaps))
    holds = not order.against and order.better > 0
    verdict = ("the loss never falls as N grows beyond the noise and is higher at the largest N "
               f"in {order.better} of {len(sizes)} sizes" if holds else
               order.describe("loss rising with N") if order.against else
               f"the loss at the largest N is within {LOSS_TOL} nats of the smallest N's at "
               "every size")
    return _claim("O3", holds, f"final rare/train_loss ({verdict}): " + "; ".join(lines))


def _spread(values: list[float]) -> str:
    return f"{median(values):.3g} (n={len(values)}, range {min(values):.3g}..{max(values):.3g})"


def o4_retention(retained: dict[str, list[float]]) -> Claim:
    """Figure 8: the median share of an injection's drop in test loss still there before the
    next (`rare/retained`) rises with size."""
    sizes = _sizes(retained)
    few = [f"{s} ({len(retained[s])})" for s in sizes if len(retained[s]) < 2]
    if len(sizes) < 2 or few:
        why = (f"fewer than two injections that lowered the task loss in {', '.join(few)}"
               if few else "one size only")
        return _claim("O4", None, f"retention needs two sizes with two or more: {why}")
    medians = [(s, median(retained[s])) for s in sizes]
    order = ordered(medians, 0.0, False, "median retained: ")
    lines = "; ".join(f"{s}: {_spread(retained[s])}" for s in sizes)
    return _claim("O4", order.holds, order.describe("median rare/retained rising with size")
                  + f": {lines}")


def o5_interference(cosines: dict[str, list[float]]) -> Claim:
    """Figure 9: the mean |cos(g_nontask, g_r)| and its standard deviation over the measured
    steps both fall with size."""
    sizes = [s for s in _sizes(cosines) if len(cosines[s]) >= 3]
    if len(sizes) < 2:
        return _claim("O5", None, "needs two sizes with three or more measured steps "
                                  "(interference/cos_nontask; olmo.measure_every > 0)")
    size_ = [(s, mean(abs(c) for c in cosines[s])) for s in sizes]
    steady = [(s, pstdev(cosines[s])) for s in sizes]
    smaller = ordered(size_, 0.0, True, "mean |cos|: ")
    steadier = ordered(steady, 0.0, True, "sd: ")
    lines = "; ".join(f"{s}: {mean(cosines[s]):.3g} +- {pstdev(cosines[s]):.3g}, mean |cos| "
                      f"{m:.3g} (n={len(cosines[s])})" for (s, m) in size_)
    return _claim("O5", smaller.holds and steadier.holds,
                  smaller.describe("smaller in larger models") + "; "
                  + steadier.describe("steadier in larger models") + f". {lines}")
