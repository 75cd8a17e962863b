"""The OLMo claims O1-O5 on constructed data: each holds where the data show it, fails with
evidence naming what contradicts it, and is `holds=None` where the data cannot judge it."""

from __future__ import annotations

import math

import pytest

from tracking.report.olmo_claims import (Cell, LOSS_TOL, o1_size_and_frequency,
                                         o2_frequency_order, o3_injection_gap, o4_retention,
                                         o5_interference)

SIZES, FREQS = ["4M", "20M", "300M"], [1e-4, 1e-3, 1e-2]


def cells(loss, acc=lambda size, f: 0.5, task="cmp", evaluated=1000) -> list[Cell]:
    """A full size x frequency map; `loss(i, j)` of the i-th size and j-th frequency."""
    return [Cell(task, size, f, initial_loss=10.8, loss=loss(i, j), acc=acc(i, j),
                 evaluated=evaluated)
            for i, size in enumerate(SIZES) for j, f in enumerate(FREQS)]


def learned_better_when_larger_and_frequent(i, j):
    return 0.7 - 0.1 * i - 0.1 * j


def test_o1_holds_when_larger_and_more_frequent_learn_better():
    claim = o1_size_and_frequency(cells(learned_better_when_larger_and_frequent))
    assert claim.holds is True, claim.evidence
    assert "not judged on accuracy" in claim.evidence  # every accuracy at chance


def test_o1_fails_when_a_larger_model_learns_worse():
    def loss(i, j):
        return learned_better_when_larger_and_frequent(i, j) + (0.5 if (i, j) == (2, 1) else 0)

    claim = o1_size_and_frequency(cells(loss))
    assert claim.holds is False
    assert "cmp f=0.001: 300M" in claim.evidence and "other way" in claim.evidence


def test_o1_fails_on_accuracy_falling_with_size_where_the_task_is_learned():
    claim = o1_size_and_frequency(cells(learned_better_when_larger_and_frequent,
                                        acc=lambda i, j: 0.95 - 0.2 * i))
    assert claim.holds is False
    assert "test accuracy across sizes" in claim.evidence and "300M" in claim.evidence


def test_o1_fails_when_size_changes_nothing():
    claim = o1_size_and_frequency(cells(lambda i, j: 0.7 - 0.1 * j))
    assert claim.holds is False
    assert "across sizes: all 6 neighbour comparisons are ties" in claim.evidence


def test_o1_cannot_judge_runs_that_learned_nothing():
    frozen = [Cell("cmp", s, f, 10.8, 10.8, 0.5, 200) for s in SIZES for f in FREQS]
    assert o1_size_and_frequency(frozen).holds is None
    assert o1_size_and_frequency([]).holds is None
    one_size = [Cell("cmp", "4M", f, 10.8, 0.7 - 0.1 * j, 0.5, 200) for j, f in enumerate(FREQS)]
    claim = o1_size_and_frequency(one_size)
    assert claim.holds is None and "one size per task" in claim.evidence
    assert "across frequencies: 2 of 2" in claim.evidence


def curve(reach_at: int, steps: int = 100, every: int = 10, start=10.8, end=0.7):
    """A loss that drops from `start` to `end` at step `reach_at`."""
    return [(s, start if s < reach_at else end) for s in range(0, steps + 1, every)]


def test_o2_holds_when_frequent_tasks_are_learned_first():
    curves = {("cmp", "4M"): {1e-2: curve(20), 1e-3: curve(50), 1e-4: curve(1000)}}
    claim = o2_frequency_order(curves)
    assert claim.holds is True, claim.evidence
    assert "f=0.0001 at never" in claim.evidence


def test_o2_fails_when_a_rarer_task_is_learned_first():
    curves = {("cmp", "4M"): {1e-2: curve(20), 1e-3: curve(50)},
              ("add", "4M"): {1e-2: curve(60), 1e-3: curve(30)}}
    claim = o2_frequency_order(curves)
    assert claim.holds is False
    assert "add 4M" in claim.evidence and "other way" in claim.evidence


def test_o2_cannot_judge_flat_losses_or_ties_at_one_evaluation():
    flat = {("cmp", "4M"): {1e-2: curve(0, start=0.7), 1e-3: curve(0, start=0.7)}}
    assert o2_frequency_order(flat).holds is None
    tied = {("cmp", "4M"): {1e-2: curve(20), 1e-3: curve(20)}}
    claim = o2_frequency_order(tied)
    assert claim.holds is None and "eval_every" in claim.evidence
    assert o2_frequency_order({("cmp", "4M"): {1e-2: curve(20)}}).holds is None


EQUAL = {"4M": {1: 2000, 10: 2000, 100: 2000}, "20M": {1: 2000, 10: 2000, 100: 2000}}


def test_o3_holds_when_larger_gaps_hurt():
    final = {"4M": {1: 0.70, 10: 0.71, 100: 0.9}, "20M": {1: 0.5, 10: 0.5, 100: 0.51}}
    claim = o3_injection_gap(final, {"4M": 10.8, "20M": 10.8}, EQUAL)
    assert claim.holds is True, claim.evidence
    assert "4M: N=1 0.7, N=10 0.71, N=100 0.9" in claim.evidence


def test_o3_fails_when_larger_gaps_give_lower_loss():
    final = {"4M": {1: 0.9, 10: 0.8, 100: 0.7}, "20M": {1: 0.5, 10: 0.5, 100: 0.5}}
    claim = o3_injection_gap(final, {"4M": 10.8, "20M": 10.8}, EQUAL)
    assert claim.holds is False
    assert "4M: N=10 0.8 vs N=1 0.9" in claim.evidence


def test_o3_fails_when_no_gap_makes_a_difference():
    final = {"4M": {1: 0.7, 10: 0.7, 100: 0.71}}
    claim = o3_injection_gap(final, {"4M": 10.8}, EQUAL)
    assert claim.holds is False and f"within {LOSS_TOL}" in claim.evidence


def test_o3_cannot_judge_one_gap_unequal_frequencies_or_nothing_learned():
    assert o3_injection_gap({"4M": {1: 0.7}}, {"4M": 10.8}, EQUAL).holds is None
    unequal = o3_injection_gap({"4M": {1: 0.7, 100: 0.9}}, {"4M": 10.8},
                               {"4M": {1: 128, 100: 100}})
    assert unequal.holds is None and "N=1 128, N=100 100" in unequal.evidence
    frozen = o3_injection_gap({"4M": {1: 10.8, 100: 10.8}}, {"4M": 10.8}, EQUAL)
    assert frozen.holds is None and "nothing was learned" in frozen.evidence


def test_o4_holds_when_larger_models_retain_more():
    claim = o4_retention({"20M": [0.1, -0.2, 0.3, 0.0], "300M": [0.6, 0.8, 0.7],
                          "1B": [0.9, 0.95, 1.2]})
    assert claim.holds is True, claim.evidence
    assert "300M: 0.7 (n=3" in claim.evidence


def test_o4_fails_when_the_larger_model_forgets_more():
    claim = o4_retention({"4M": [0.5, 0.6, 0.7], "20M": [0.1, 0.2, 0.0]})
    assert claim.holds is False
    assert "median retained: 20M 0.1 vs 4M 0.6" in claim.evidence


def test_o4_cannot_judge_without_two_retained_injections_per_size():
    claim = o4_retention({"4M": [0.5, 0.6], "20M": [0.3]})
    assert claim.holds is None and "20M (1)" in claim.evidence
    assert o4_retention({"4M": [0.5, 0.6]}).holds is None


def noisy(scale: float, centre: float = 0.0, n: int = 40) -> list[float]:
    return [centre + scale * math.sin(1.7 * k) for k in range(n)]


def test_o5_holds_when_interference_is_smaller_and_steadier_in_larger_models():
    claim = o5_interference({"20M": noisy(0.09, 0.10), "300M": noisy(0.04, 0.01),
                             "1B": noisy(0.02)})
    assert claim.holds is True, claim.evidence
    assert "20M: 0.1" in claim.evidence


@pytest.mark.parametrize("larger", [noisy(0.3), noisy(0.01, 0.5)], ids=["noisier", "larger"])
def test_o5_fails_when_the_larger_model_interferes_more(larger):
    claim = o5_interference({"4M": noisy(0.05, 0.05), "20M": larger})
    assert claim.holds is False
    assert "other way" in claim.evidence


def test_o5_cannot_judge_one_size_or_too_few_measured_steps():
    assert o5_interference({"20M": noisy(0.1)}).holds is None
    claim = o5_interference({"4M": [0.1, 0.2], "20M": noisy(0.1)})
    assert claim.holds is None and "measure_every" in claim.evidence


def test_o1_skips_a_cell_whose_accuracy_was_not_logged():
    def acc(i, j):
        return math.nan if (i, j) == (1, 1) else 0.6 + 0.1 * i + 0.05 * j

    claim = o1_size_and_frequency(cells(learned_better_when_larger_and_frequent, acc=acc))
    assert claim.holds is True, claim.evidence
