"""The closed-form optimum of the synthetic student."""

from __future__ import annotations

import numpy as np
import pytest

from trainables.synthetic import theory


def make(frequency=0.05, rare_decay=0.5, tasks=8, r=8):
    return theory.Spectrum.build(tasks, r, 1.0, 2.0, rare_decay, frequency)


def test_frequencies_and_spectra_are_normalised():
    spec = make(frequency=0.01)
    assert spec.pi.sum() == pytest.approx(1.0) and spec.pi[-1] == 0.01
    assert np.all(np.diff(spec.pi[:-1]) < 0)  # Zipf: background tasks ever rarer
    assert np.allclose(spec.lam.sum(axis=1), 1.0)
    assert spec.lam[0, 0] / spec.lam[0, 1] == pytest.approx(2.0 ** 2.0)


@pytest.mark.parametrize("width", [1, 5, 17, 63, 64])
def test_optimum_keeps_the_largest_utilities(width):
    spec = make()
    best = theory.optimum(spec, width)
    top = np.sort(spec.utilities.ravel())[::-1][:width].sum()
    assert best.loss == pytest.approx(1.0 - top)
    assert np.all((best.task_losses >= -1e-12) & (best.task_losses <= 1 + 1e-12))


def test_optimum_loss_falls_with_width_and_vanishes_at_d():
    spec = make()
    losses = [theory.optimum(spec, n).loss for n in range(1, spec.dim + 1)]
    assert all(a >= b for a, b in zip(losses, losses[1:]))
    assert losses[-1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("frequency", [0.2, 0.05, 0.01, 1e-4])
@pytest.mark.parametrize("rare_decay", [2.0, 0.5])
def test_critical_width_is_where_the_rare_task_becomes_learned(frequency, rare_decay):
    spec = make(frequency, rare_decay)
    n_star = theory.critical_width(spec, 0.5)
    assert theory.optimum(spec, n_star).rare_loss <= 0.5
    if n_star > 1:
        assert theory.optimum(spec, n_star - 1).rare_loss > 0.5


def test_rarer_and_more_complex_tasks_need_wider_models():
    widths = {(f, a): theory.critical_width(make(f, a), 0.5)
              for f in (0.1, 0.01) for a in (2.0, 0.5)}
    assert widths[(0.01, 2.0)] > widths[(0.1, 2.0)]
    assert widths[(0.01, 0.5)] > widths[(0.1, 0.5)]
    assert widths[(0.1, 0.5)] > widths[(0.1, 2.0)]  # complex needs more than simple


def test_steps_grow_as_the_boundary_gap_shrinks():
    spec = make()
    lr = theory.default_lr(spec)
    assert (theory.steps_to_converge(spec, 8, lr, 0.5)
            < theory.steps_to_converge(spec, 8, lr / 10, 0.5))


def test_at_width_d_the_decoders_set_the_steps():
    """U spans everything from the start; the rarest task's decoder, trained from zero at a
    rate 4 lr pi_min, is what takes time."""
    for frequency in (0.05, 0.005):
        spec = make(frequency)
        lr = theory.default_lr(spec)
        steps = theory.steps_to_converge(spec, spec.dim, lr, 0.5)
        assert steps == pytest.approx(2 * np.log(100) / (4 * lr * spec.pi.min()), abs=1)


def test_critical_width_first_counts_the_utilities_above_the_rare_leading_one():
    for frequency, rare_decay in [(0.2, 2.0), (0.01, 0.5), (1e-4, 2.0)]:
        spec = make(frequency, rare_decay)
        leading = spec.pi[-1] * spec.lam[-1].max()
        above = int((spec.utilities[:-1] > leading).sum())
        assert theory.critical_width_first(spec) == 1 + above
        assert theory.optimum(spec, 1 + above).task_losses[-1] < 1.0  # it keeps a rare feature
        if above:
            assert theory.optimum(spec, above).task_losses[-1] == pytest.approx(1.0)
        # The learned reading needs the leading feature, and maybe more of them.
        assert theory.critical_width(spec, 0.5) >= theory.critical_width_first(spec)


@pytest.mark.parametrize("block", [0, 16, 256, 1024])
def test_default_lr_is_one_for_every_width_and_keeps_a_full_batch_of_one_task_stable(block):
    """The step is the same whatever the width (it takes none), and a batch holding
    min(block, B) samples of one task moves that task's decoder with curvature at most
    (2/B)(sqrt(n) + sqrt(N))^2 <= (2/B)(sqrt(n) + sqrt(d))^2 < 2 / lr: stable at every
    width N <= d."""
    spec = make(frequency=0.01, tasks=8, r=8)
    B = 256
    lr = theory.default_lr(spec, "sampled", B, block)
    n = min(block, B) if block else 0
    assert lr * (2 / B) * (np.sqrt(max(n, 1)) + np.sqrt(spec.dim)) ** 2 <= 1.0 + 1e-12
    assert lr <= theory.default_lr(spec)  # never above the population step
    if block >= B:  # a block fills whole batches: capped below the i.i.d. step
        assert lr < theory.default_lr(spec, "sampled", B, 0)
