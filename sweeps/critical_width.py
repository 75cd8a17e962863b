"""The critical-width search's boundary logic, pure (numpy; no Ray, no MLflow): which points of one
(task, seed) decide N*(f), which verdicts the others follow from, and what a contradiction is.

A chain is the widths x frequencies of one (task, seed); cell (i, j) is the i-th narrowest
width at the j-th rarest frequency. The science says "learned" is monotone in both (the paper's
C1 and O1): a width that learns at f learns at every higher f, and a wider model learns what a
narrower one learns. So a learned cell implies every cell at least as wide and as frequent, and
a cell not learned implies every cell at most as wide and as frequent. N*(f_j) is the narrowest
width learned at f_j: the boundary is a staircase.

Which cell next (cost first): columns from the most frequent (the narrowest N*, the cheapest
to find) to the rarest, each starting where the previous column's verdicts leave it (a staircase
walk); within a column, the cell of least expected cost to find its boundary, from the
trainable's cost estimate (`probe`: an optimal search tree, uniform over the boundary's
places). Flat costs make that bisection; costs that grow steeply with width (the synthetic
student's steps x N^2, OLMo's 6 N D) make it a walk from narrow to wide, which never trains a
width wider than the boundary. A column with a point in flight passes to the next rarer one.
The cost the search orders by is the estimate's monotone envelope over width (`envelope`: a
wider point never counts as cheaper than a narrower one): an estimate that dips with width
(the synthetic estimate of steps to converge falls where a width learns easily) would otherwise
send the search past the boundary to a wide point, whose verdict the narrower one would have
implied. On the demo that envelope trained 41% of the grid's point-steps instead of 51%.

The prediction (`guess`): where the trainable predicts every verdict before training (the
synthetic theory; `Trainable.predict`), the search first trains the predicted boundary's
corners (`corners`), cheapest first, each while no verdict so far decides it: if the
prediction holds, they are the only points trained, exactly those any correct search must
train. Where a verdict differs, the search goes on over the cells still undecided as it would
without one. It only orders the training: every verdict is trained, and the boundary found is
the same whatever the prediction (tested over every boundary and wrong predictions).

Contradictions (noise near the boundary): two trained verdicts, learned at P and not at Q with
P at most as wide and as frequent as Q. Rule: train P's and Q's grid neighbours (the four
cells beside each), then each of the two is judged by majority: its own verdict is one vote
for it, and every other trained verdict that implies a value for its cell votes for that value.
A point outvoted is an outlier: its verdict stays recorded but is kept out of the inference,
and its cell takes the value the others imply. On a tie both are outliers.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from tracking.curves import width_order
from trainables.points import Point

Cell = tuple[int, int]  # (width index, narrow first; frequency index, rarest first)
TRAINED, INFERRED, OUTLIER, FAILED = "trained", "inferred", "outlier", "failed"
EXACT_LIMIT = 5000  # boundaries enumerated for `estimate`; sampled above this many
SAMPLES = 1000


@dataclass
class Contradiction:
    learned: Cell  # learned here ...
    not_learned: Cell  # ... but not here, though this cell is at least as wide and frequent
    outliers: list[Cell] | None = None  # None while its neighbours train

    @property
    def open(self) -> bool:
        return self.outliers is None


@dataclass
class Chain:
    """The search of one (task, seed): the verdicts trained so far and what they imply.
    `guess`: per frequency (rarest first) the predicted boundary, the index of the narrowest
    width predicted learned (`widths`: none); None: no prediction."""

    widths: int
    frequencies: int
    guess: tuple[int, ...] | None = None
    trained: dict[Cell, bool] = field(default_factory=dict)
    outliers: set[Cell] = field(default_factory=set)
    failed: set[Cell] = field(default_factory=set)
    contradictions: list[Contradiction] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.widths, self.frequencies

    def effective(self) -> dict[Cell, bool]:
        """The trained verdicts the inference rests on: all but the outliers."""
        return {c: v for c, v in self.trained.items() if c not in self.outliers}

    def implied(self) -> tuple[np.ndarray, np.ndarray]:
        """(learned, not learned) per cell as the effective verdicts imply them."""
        yes, no = np.zeros(self.shape, bool), np.zeros(self.shape, bool)
        for cell, learned in self.effective().items():
            (yes if learned else no)[cell] = True
        yes = np.logical_or.accumulate(np.logical_or.accumulate(yes, 0), 1)
        no = np.logical_or.accumulate(np.logical_or.accumulate(no[::-1, ::-1], 0), 1)[::-1, ::-1]
        return yes, no

    def undecided(self) -> np.ndarray:
        yes, no = self.implied()
        out = ~yes & ~no
        for cell in [*self.failed, *self.outliers]:
            out[cell] = False  # trained (or lost): nothing more to learn from it
        return out

    def record(self, cell: Cell, learned: bool) -> None:
        """A trained verdict: contradictions it completes are judged, new ones opened."""
        self.trained[cell] = learned
        self._settle()

    def fail(self, cell: Cell) -> None:
        self.failed.add(cell)
        self._settle()

    def next(self, pending: set[Cell], cost: np.ndarray) -> Cell | None:
        """The cell to train next, or None (nothing to train until a pending one returns, or
        the chain is decided). Open contradictions first: their neighbours, cheapest first."""
        cost = envelope(cost)
        witnesses = [c for k in self.contradictions if k.open for c in self.witnesses(k)
                     if c not in pending and c not in self.failed]
        if witnesses:
            return min(witnesses, key=lambda c: (cost[c], c))
        if any(k.open for k in self.contradictions):
            return None
        undecided = self.undecided()
        if self.guess is not None:
            predicted = [c for c in predicted_corners(self.guess, self.widths) if undecided[c]]
            if predicted:
                free = [c for c in predicted if c not in pending]
                return min(free, key=lambda c: (cost[c], c)) if free else None
        busy = {j for _, j in pending}
        for j in reversed(range(self.frequencies)):  # most frequent first: the cheapest N*
            rows = np.flatnonzero(undecided[:, j])
            if rows.size and j not in busy:
                column = tuple(float(x) for x in cost[:, j])
                i = probe(column, int(rows[0]), int(rows[-1]) + 1)
                return int(min(rows, key=lambda r: abs(r - i))), j  # skips lost cells
        return None

    def done(self, pending: set[Cell]) -> bool:
        return not pending and not self.undecided().any() \
            and not any(k.open for k in self.contradictions)

    def witnesses(self, k: Contradiction) -> list[Cell]:
        """The untrained grid neighbours of a contradiction's two cells."""
        near = {(i + di, j + dj) for i, j in (k.learned, k.not_learned)
                for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))}
        return sorted(c for c in near if 0 <= c[0] < self.widths
                      and 0 <= c[1] < self.frequencies and c not in self.trained)

    def verdicts(self) -> dict[Cell, tuple[bool | None, str | None]]:
        """Every cell's (learned, source): trained, inferred, outlier (trained, overruled:
        the value the others imply, else its own) or failed; (None, None) if undecided."""
        yes, no = self.implied()
        out = {}
        for cell in itertools.product(range(self.widths), range(self.frequencies)):
            implied = bool(yes[cell]) if yes[cell] != no[cell] else None
            if cell in self.outliers:
                out[cell] = (self.trained[cell] if implied is None else implied, OUTLIER)
            elif cell in self.trained:
                out[cell] = (self.trained[cell], TRAINED)
            elif cell in self.failed:
                out[cell] = (implied, FAILED)
            else:
                out[cell] = (implied, INFERRED if implied is not None else None)
        return out

    def critical(self) -> list[int | None]:
        """N*(f) per frequency (rarest first): the narrowest learned width's index, None if
        none is learned or a cell below it is undecided."""
        table = self.verdicts()
        out = []
        for j in range(self.frequencies):
            column = [table[(i, j)][0] for i in range(self.widths)]
            first = next((i for i, v in enumerate(column) if v is not False), None)
            out.append(first if first is not None and column[first] else None)
        return out

    def _settle(self) -> None:
        changed = True
        while changed:
            changed = False
            for k in self.contradictions:
                if k.open and not self.witnesses(k):
                    k.outliers = self._outvoted(k)
                    self.outliers.update(k.outliers)
                    changed = True
            seen = {(k.learned, k.not_learned) for k in self.contradictions}
            for pair in conflicts(self.effective()):
                if pair not in seen:
                    self.contradictions.append(Contradiction(*pair))
                    changed = True

    def _outvoted(self, k: Contradiction) -> list[Cell]:
        votes = {}
        for cell in (k.learned, k.not_learned):
            own = self.trained[cell]
            others = [v for c, v in self.effective().items() if c != cell and implies(c, v, cell)]
            votes[cell] = (1 + sum(v == own for v in others), sum(v != own for v in others))
        lost = [c for c, (won, against) in votes.items() if against > won]
        return lost or [k.learned, k.not_learned]


def implies(cell: Cell, learned: bool, other: Cell) -> bool:
    """Whether a verdict at `cell` implies one at `other` (the same verdict)."""
    at_least = other[0] >= cell[0] and other[1] >= cell[1]
    at_most = other[0] <= cell[0] and other[1] <= cell[1]
    return at_least if learned else at_most


def conflicts(verdicts: dict[Cell, bool]) -> list[tuple[Cell, Cell]]:
    """(learned at P, not learned at Q) pairs with Q at least as wide and frequent as P."""
    yes = [c for c, v in verdicts.items() if v]
    no = [c for c, v in verdicts.items() if not v]
    return sorted((p, q) for p in yes for q in no if q[0] >= p[0] and q[1] >= p[1])


def envelope(cost: np.ndarray) -> np.ndarray:
    """Each cell's cost as the search orders by it: the most of its own and every narrower
    width's at its frequency, so cost never falls as width rises (cheap points first)."""
    return np.maximum.accumulate(cost, axis=0)


def probe(cost: tuple[float, ...], a: int, b: int) -> int:
    """The cell of column cells [a, b) (undecided, narrow first) to train next: the one of
    least expected cost to find the column's boundary, uniform over its b - a + 1 places."""
    return _plan(cost)[1][a][b]


@functools.lru_cache(maxsize=256)
def _plan(cost: tuple[float, ...]):
    """Optimal search tree over one column (O(n^3)): expected[a][b], best probe[a][b]."""
    n = len(cost)
    expected = [[0.0] * (n + 1) for _ in range(n + 1)]
    choice = [[-1] * (n + 1) for _ in range(n + 1)]
    for length in range(1, n + 1):
        for a in range(n - length + 1):
            b = a + length
            options = [(cost[i] + ((i - a + 1) * expected[a][i]
                                   + (b - i) * expected[i + 1][b]) / (length + 1), cost[i], i)
                       for i in range(a, b)]
            expected[a][b], _, choice[a][b] = min(options)
    return expected, choice


def corners(truth: np.ndarray) -> set[Cell]:
    """A monotone boundary's certificate: the cells whose verdicts imply every other's and
    whose own no other implies (the learned cells with no learned neighbour narrower or rarer,
    the others with none wider or more frequent); any correct search trains all of them."""
    pad = functools.partial(np.pad, mode="constant")
    narrower = pad(truth, ((1, 0), (0, 0)), constant_values=False)[:-1]
    rarer = pad(truth, ((0, 0), (1, 0)), constant_values=False)[:, :-1]
    wider = pad(truth, ((0, 1), (0, 0)), constant_values=True)[1:]
    frequent = pad(truth, ((0, 0), (0, 1)), constant_values=True)[:, 1:]
    found = (truth & ~narrower & ~rarer) | (~truth & wider & frequent)
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(found))}


@functools.lru_cache(maxsize=256)
def predicted_corners(guess: tuple[int, ...], widths: int) -> tuple[Cell, ...]:
    """The corners of a predicted boundary (`Chain.guess`), in order."""
    return tuple(sorted(corners(staircase(list(guess), widths))))


def simulate(truth: np.ndarray, cost: np.ndarray,
             guess: tuple[int, ...] | None = None) -> list[Cell]:
    """The cells the search trains, one at a time, where `truth` is every cell's verdict."""
    chain = Chain(*truth.shape, guess=guess)
    order = []
    while (cell := chain.next(set(), cost)) is not None:
        order.append(cell)
        chain.record(cell, bool(truth[cell]))
    return order


def staircase(critical: list[int], widths: int) -> np.ndarray:
    """The verdicts of a monotone boundary: learned from index critical[j] up (widths: never)."""
    return np.arange(widths)[:, None] >= np.asarray(critical)[None, :]


@dataclass(frozen=True)
class Estimate:
    """Trained points of a search against the grid, over every monotone boundary (or a uniform
    sample of them, where there are more than EXACT_LIMIT): worst case and mean; and where the
    trainable predicts every boundary, those if the prediction holds."""

    points: int
    worst: int
    expected: float
    worst_share: float  # of the grid's cost
    expected_share: float
    exact: bool
    predicted: int | None = None
    predicted_share: float | None = None


def boundaries(widths: int, frequencies: int, rng: np.random.Generator):
    """Every monotone boundary (N* index non-increasing as frequency rises), or a uniform
    sample: a multiset of F values in 0..W, as F bars among W + F slots."""
    total = math.comb(widths + frequencies, frequencies)
    if total <= EXACT_LIMIT:
        for bars in itertools.combinations(range(widths + frequencies), frequencies):
            yield [b - k for k, b in enumerate(bars)][::-1]
        return
    for _ in range(SAMPLES):
        bars = np.sort(rng.choice(widths + frequencies, frequencies, replace=False))
        yield [int(b - k) for k, b in enumerate(bars)][::-1]


def estimate(costs: list[np.ndarray], guesses: list | None = None, seed: int = 0) -> Estimate:
    """`costs`: one (widths x frequencies) array per chain; `guesses`: each chain's `guess`.
    Chains are searched independently, so the worst case is the sum of theirs."""
    rng = np.random.default_rng(seed)
    guesses = guesses or [None] * len(costs)
    worst = expected = worst_cost = expected_cost = 0.0
    exact = True
    for cost, guess in zip(costs, guesses):
        w, f = cost.shape
        exact &= math.comb(w + f, f) <= EXACT_LIMIT
        runs = [simulate(staircase(b, w), cost, guess) for b in boundaries(w, f, rng)]
        spent = [sum(cost[c] for c in cells) for cells in runs]
        worst += max(map(len, runs))
        expected += float(np.mean([len(r) for r in runs]))
        worst_cost += max(spent)
        expected_cost += float(np.mean(spent))
    total = float(sum(c.sum() for c in costs))
    predicted = predicted_cost = None
    if all(g is not None for g in guesses):
        runs = [simulate(staircase(list(g), c.shape[0]), c, g) for c, g in zip(costs, guesses)]
        predicted = sum(map(len, runs))
        predicted_cost = sum(c[cell] for c, cells in zip(costs, runs) for cell in cells) / total
    return Estimate(points=sum(c.size for c in costs), worst=int(worst), expected=expected,
                    worst_share=worst_cost / total, expected_share=expected_cost / total,
                    exact=exact, predicted=predicted, predicted_share=predicted_cost)


@dataclass(frozen=True)
class Geometry:
    """Where each grid point sits: its chain (task, seed) and its cell."""

    widths: list  # narrow first
    frequencies: list[float]  # rarest first
    chains: list[tuple[str, int]]  # (task, seed), grid order

    @classmethod
    def of(cls, grid) -> "Geometry":
        return cls(sorted(grid.width, key=lambda w: width_order(str(w))),
                   sorted(grid.frequency), [(t, s) for t in grid.task for s in grid.seed])

    def point(self, chain: int, cell: Cell) -> Point:
        task, seed = self.chains[chain]
        return Point(self.widths[cell[0]], self.frequencies[cell[1]], task, seed)

    def locate(self, point: Point) -> tuple[int, Cell]:
        return (self.chains.index((point.task, point.seed)),
                (self.widths.index(point.width), self.frequencies.index(point.frequency)))


def costs(geometry: Geometry, trainable, planned) -> list[np.ndarray]:
    """Per chain, each cell's estimated compute (`Trainable.cost`), widths x frequencies."""
    out = [np.zeros((len(geometry.widths), len(geometry.frequencies)))
           for _ in geometry.chains]
    for p in planned:
        chain, cell = geometry.locate(p.point)
        out[chain][cell] = max(trainable.cost(p.params), 1e-12)
    return out


def guesses(geometry: Geometry, trainable, planned) -> list[tuple[int, ...] | None]:
    """Per chain, each column's predicted boundary (`Chain.guess`) from the trainable's
    prediction of every verdict (`Trainable.predict`): the narrowest width predicted learned;
    None for a chain with a point the trainable cannot predict."""
    predicted = [np.zeros((len(geometry.widths), len(geometry.frequencies)), bool)
                 for _ in geometry.chains]
    unknown = set()
    for p in planned:
        chain, cell = geometry.locate(p.point)
        verdict = trainable.predict(trainable.section.model_validate(p.section), p.point)
        if verdict is None:
            unknown.add(chain)
        predicted[chain][cell] = bool(verdict)
    return [None if c in unknown else
            tuple(int(np.argmax(column)) if column.any() else len(column) for column in table.T)
            for c, table in enumerate(predicted)]


def describe(spec, planned) -> str:
    """`sweeps validate`'s line on a searched sweep: trained points and their share of the
    grid's estimated compute (`Trainable.cost`), worst case and expected (`estimate`)."""
    geometry = Geometry.of(spec.grid)
    e = estimate(costs(geometry, spec.runs_as, planned), chain_guesses(spec, geometry, planned))
    over = "every monotone boundary" if e.exact else f"{SAMPLES} random monotone boundaries"
    line = (f"search    critical_width, one point per trial: trains at most {e.worst} and "
            f"{e.expected:.1f} expected of the {e.points} points ({e.worst_share:.0%} and "
            f"{e.expected_share:.0%} of the grid's estimated compute; over {over}, uniform, "
            "without contradictions)")
    if e.predicted is not None:
        line += (f"; {e.predicted} ({e.predicted_share:.0%}) if the trainable's predicted "
                 "N*(f) holds")
    return line


def chain_guesses(spec, geometry: Geometry, planned) -> list | None:
    """The spec's prior: the trainable's predictions (`search_prior: trainable`) or none."""
    return guesses(geometry, spec.runs_as, planned) if spec.search_prior == "trainable" else None
