"""The critical-width search's boundary logic, without Ray: the walk trains only what its
verdicts do not decide, every inferred cell is what a full grid would say, contradictions are
met, judged by majority and kept out of the inference, the estimate counts what it trains, and
a predicted boundary only orders the training: right, it trains the least any search must;
wrong, it finds the same boundary."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sweeps import critical_width as cw

W, F = 10, 3


def grid_critical(truth: np.ndarray) -> list[int | None]:
    """N* per frequency, read off every cell as a full grid would."""
    return [next((i for i in range(truth.shape[0]) if truth[i, j]), None)
            for j in range(truth.shape[1])]


def run(truth: np.ndarray, cost: np.ndarray, guess=None) -> cw.Chain:
    chain = cw.Chain(*truth.shape, guess)
    while (cell := chain.next(set(), cost)) is not None:
        assert cell not in chain.trained  # never a point twice
        chain.record(cell, bool(truth[cell]))
    return chain


def test_every_monotone_boundary_is_found_exactly_and_only_undecided_points_train():
    cost = np.add.outer(np.arange(1, W + 1) ** 2, np.zeros(F)) + 1.0  # wider costs more
    rng = np.random.default_rng(0)
    for critical in cw.boundaries(W, F, rng):
        truth = cw.staircase(critical, W)
        chain = run(truth, cost)
        assert chain.done(set()) and not chain.contradictions
        table = chain.verdicts()
        assert all(table[c][0] == bool(truth[c]) for c in table)  # inference = the grid's
        assert chain.critical() == grid_critical(truth)
        assert len(chain.trained) <= W + F - 1  # never more than a staircase walk's


def test_inferred_cells_follow_both_monotonicities():
    chain = cw.Chain(4, 3)
    chain.record((1, 1), True)
    chain.record((2, 0), False)
    table = chain.verdicts()
    assert table[(3, 2)] == (True, cw.INFERRED)  # wider and more frequent: learned
    assert table[(1, 2)] == (True, cw.INFERRED)
    assert table[(0, 0)] == (False, cw.INFERRED)  # narrower and rarer: not learned
    assert table[(2, 0)] == (False, cw.TRAINED)
    assert table[(0, 2)] == (None, None)  # neither decides a narrower, more frequent cell
    assert table[(3, 0)] == (None, None)


def test_cheap_points_go_first_where_they_decide_as_much():
    chain = cw.Chain(3, 1)
    flat = np.ones((3, 1))
    assert chain.next(set(), flat) == (1, 0)  # the middle splits the column
    skewed = np.array([[1.0], [100.0], [100.0]])
    assert chain.next(set(), skewed) == (0, 0)  # ... unless it costs 100x the narrowest


def test_a_planted_contradiction_trains_the_neighbours_and_the_majority_decides():
    truth = cw.staircase([6, 4, 3], W)  # N* index per frequency, rarest first
    planted = (5, 2)  # learned in truth (5 >= 3); reported as not learned
    chain = cw.Chain(W, F)
    chain.record((4, 2), True)
    chain.record(planted, False)  # both trained (in flight together): they contradict
    assert [(k.learned, k.not_learned) for k in chain.contradictions] == [((4, 2), planted)]
    neighbours = set(chain.witnesses(chain.contradictions[0]))
    assert neighbours == {(3, 2), (6, 2), (4, 1), (5, 1)}
    trained = []
    while (cell := chain.next(set(), np.ones((W, F)))) is not None:
        trained.append(cell)
        chain.record(cell, bool(truth[cell]))
    assert neighbours <= set(trained)
    assert chain.contradictions[0].outliers == [planted]
    assert chain.outliers == {planted}
    assert chain.verdicts()[planted] == (True, cw.OUTLIER)  # the others' verdict stands
    assert chain.critical() == grid_critical(truth)


def test_a_tie_keeps_both_points_out_of_the_inference():
    chain = cw.Chain(2, 1)
    chain.record((0, 0), True)
    chain.record((1, 0), False)  # no neighbour left to ask: one vote each
    assert chain.contradictions[0].outliers == [(0, 0), (1, 0)]
    assert chain.done(set())


def test_a_failed_point_is_not_suggested_again():
    chain = cw.Chain(3, 1)
    cost = np.ones((3, 1))
    first = chain.next(set(), cost)
    chain.fail(first)
    assert chain.next(set(), cost) not in (first, None)


def test_points_in_flight_are_not_suggested_twice():
    chain = cw.Chain(W, F)
    cost = np.ones((W, F))
    a = chain.next(set(), cost)
    b = chain.next({a}, cost)
    assert a != b


def test_the_estimate_is_the_walk_over_every_boundary():
    cost = np.ones((4, 2))
    estimate = cw.estimate([cost, cost])
    counts = [len(cw.simulate(cw.staircase(b, 4), cost))
              for b in cw.boundaries(4, 2, np.random.default_rng(0))]
    assert estimate.exact and estimate.points == 16
    assert estimate.worst == 2 * max(counts)
    assert estimate.expected == pytest.approx(2 * np.mean(counts))
    assert estimate.worst_share == pytest.approx(max(counts) / 8)
    assert len(counts) == 15  # C(4 + 2, 2) boundaries
    assert all(list(b) == sorted(b, reverse=True) for b in
               itertools.islice(cw.boundaries(4, 2, np.random.default_rng(0)), 15))


def test_a_cost_estimate_that_dips_with_width_never_sends_the_search_past_narrower_points():
    dipping = np.array([[1.0], [2.0], [3.0], [4.0], [0.1]])  # the widest "cheapest"
    assert cw.probe(tuple(dipping[:, 0]), 0, 5) == 4  # the raw estimate would train it first
    assert cw.envelope(dipping)[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 4.0]
    assert cw.Chain(5, 1).next(set(), dipping)[0] < 4  # the envelope: a narrower one first


STEEP = np.add.outer(np.arange(1, W + 1) ** 2, np.zeros(F)) + 1.0  # wider costs more


def needed(truth: np.ndarray) -> set:
    """The cells no other cell's verdict implies, by brute force over every pair."""
    cells = list(itertools.product(*map(range, truth.shape)))
    return {c for c in cells if not any(o != c and truth[o] == truth[c]
                                        and cw.implies(o, bool(truth[o]), c) for o in cells)}


def test_the_corners_are_the_cells_no_other_verdict_implies_and_every_search_trains_them():
    for critical in cw.boundaries(W, F, np.random.default_rng(0)):
        truth = cw.staircase(critical, W)
        assert cw.corners(truth) == needed(truth)
        assert cw.corners(truth) <= set(cw.simulate(truth, STEEP))  # uniform trains them too


def test_a_right_prediction_trains_only_the_corners():
    fewer = 0
    for critical in cw.boundaries(W, F, np.random.default_rng(0)):
        truth = cw.staircase(critical, W)
        trained = cw.simulate(truth, STEEP, tuple(critical))
        assert sorted(trained) == sorted(cw.corners(truth))  # each once, nothing else
        fewer += len(trained) < len(cw.simulate(truth, STEEP))
    assert fewer > 0  # ... where the search without it trains more


def test_a_wrong_prediction_finds_the_same_boundary():
    boundaries = list(cw.boundaries(4, F, np.random.default_rng(0)))  # every pair of them
    steep = STEEP[:4]
    for critical, guess in itertools.product(boundaries, boundaries):
        truth = cw.staircase(critical, 4)
        chain = run(truth, steep, tuple(guess))
        assert chain.done(set()) and not chain.contradictions
        assert all(chain.verdicts()[c][0] == bool(truth[c]) for c in chain.verdicts())
        assert chain.critical() == grid_critical(truth)


def test_the_estimate_counts_what_a_right_prediction_trains():
    guess = (6, 4, 3)
    e = cw.estimate([STEEP, STEEP], [guess, None])
    assert e.predicted is None  # a chain without a prediction: no such line
    e = cw.estimate([STEEP, STEEP], [guess, guess])
    corners = cw.corners(cw.staircase(list(guess), W))
    assert e.predicted == 2 * len(corners)
    assert e.predicted_share == pytest.approx(sum(STEEP[c] for c in corners) / STEEP.sum())


def test_the_synthetic_prediction_is_the_theorys_critical_width():
    from sweeps.plan import plan
    from sweeps.spec import load_spec
    from trainables.synthetic.trainable import spectrum, theory

    spec = load_spec(cw.__file__.replace("critical_width.py", "presets/demo.yaml"))
    planned = plan(spec)
    geometry = cw.Geometry.of(spec.grid)
    for (task, seed), guess in zip(geometry.chains, cw.guesses(geometry, spec.runs_as, planned)):
        for f, index in zip(geometry.frequencies, guess):
            p = next(p for p in planned if (p.point.task, p.point.frequency) == (task, f))
            section = spec.runs_as.section.model_validate(p.section)
            n_star = theory.critical_width(spectrum(section, p.point),
                                           section.learned_threshold)
            assert geometry.widths[index] == min(w for w in geometry.widths if w >= n_star)
