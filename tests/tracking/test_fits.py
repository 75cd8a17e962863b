"""The numerical fits on generated data whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracking.curves import late_gain
from tracking.fits import critical_width, fit_frequency_law, fit_power_law, power_law


def generated(l_inf, a, alpha, widths, seeds=3, noise=0.03, seed=0):
    """Losses on the law with multiplicative (log-normal) noise, `seeds` per width."""
    n = np.repeat(widths, seeds)
    rng = np.random.default_rng(seed)
    return n, power_law(n, l_inf, a, alpha) * np.exp(rng.normal(0.0, noise, n.size))


LAWS = [  # (L_inf, A, alpha, widths): a synthetic-like and an OLMo-like (parameter counts) one
    (0.05, 3.0, 0.7, np.geomspace(4, 1024, 9)),
    (1.8, 600.0, 0.35, np.geomspace(4e6, 4e9, 8)),
]


@pytest.mark.parametrize("l_inf,a,alpha,widths", LAWS)
def test_power_law_fit_recovers_known_parameters(l_inf, a, alpha, widths):
    """Exactly without noise. With 3% noise: alpha within 0.1, L_inf within 10% of the
    loss range, the amplitude A N0^-alpha at the widths' geometric mean N0 within 10% of the
    loss there (A alone moves with alpha by N0^alpha, the amplitude with L_inf), and each 95%
    bootstrap interval around its estimate."""
    n = np.repeat(widths, 3)
    exact = fit_power_law(n, power_law(n, l_inf, a, alpha), np.random.default_rng(0))
    assert (exact.l_inf, exact.a, exact.alpha) == pytest.approx((l_inf, a, alpha), rel=1e-6)
    assert exact.rmse_log < 1e-9

    fit = fit_power_law(*generated(l_inf, a, alpha, widths), np.random.default_rng(0))
    spread = power_law(widths[0], l_inf, a, alpha) - l_inf
    assert abs(fit.alpha - alpha) < 0.1
    assert abs(fit.l_inf - l_inf) < 0.1 * spread
    n0 = math.exp(np.log(widths).mean())
    amplitude = a * n0 ** -alpha
    assert abs(fit.a * n0 ** -fit.alpha - amplitude) < 0.1 * (l_inf + amplitude)
    for name in ("l_inf", "a", "alpha"):
        low, high = getattr(fit, f"{name}_interval")
        assert low <= getattr(fit, name) <= high and low < high, name
    assert fit.rmse_log == pytest.approx(0.03, rel=0.5)  # the noise it was given


def test_power_law_fit_is_reproducible_and_needs_four_widths():
    n, loss = generated(0.05, 3.0, 0.7, np.geomspace(4, 1024, 9))
    first, again = (fit_power_law(n, loss, np.random.default_rng(7)) for _ in range(2))
    assert first == again
    assert fit_power_law([4, 8, 16], [0.9, 0.5, 0.3], np.random.default_rng(0)) is None


def test_losses_of_zero_are_fitted_at_the_floor():
    n = np.array([4, 8, 16, 32, 64])
    fit = fit_power_law(n, [0.8, 0.4, 0.2, 0.0, 0.0], np.random.default_rng(0))
    assert fit is not None and math.isfinite(fit.alpha) and fit.l_inf <= 0.01


def test_critical_width_interpolates_in_log_width():
    crossing = critical_width([4, 8, 16], [0.9, 0.7, 0.3], threshold=0.5)
    assert (crossing.below, crossing.above) == (8, 16)
    assert crossing.width == pytest.approx(math.sqrt(8 * 16))  # halfway in log width
    assert critical_width([4, 8], [0.7, 0.5], 0.5).width == pytest.approx(8)  # on it: learned


def test_critical_width_outside_the_sweep_is_a_bound():
    learned_everywhere = critical_width([4, 8], [0.4, 0.1], 0.5)
    assert learned_everywhere.width is None and learned_everywhere.bound == "<=4"
    never = critical_width([4, 8], [0.9, 0.6], 0.5)
    assert never.width is None and never.bound == ">8"


def test_critical_width_of_an_accuracy_crosses_upwards():
    crossing = critical_width([1e6, 1e7, 1e8], [0.2, 0.5, 0.95], 0.9, lower_is_better=False)
    assert (crossing.below, crossing.above) == (1e7, 1e8)
    assert 1e7 < crossing.width < 1e8


def test_frequency_law_recovers_its_exponent():
    f = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    law = fit_frequency_law(f, 3.0 * f ** -0.5)
    assert (law.c, law.beta) == pytest.approx((3.0, 0.5))
    assert law.beta_interval == pytest.approx((0.5, 0.5), abs=1e-6)
    noisy = fit_frequency_law(f, 3.0 * f ** -0.5 * np.array([1.1, 0.9, 1.05, 0.95]))
    assert noisy.beta_interval[0] < 0.5 < noisy.beta_interval[1]
    assert fit_frequency_law(f[:2], [10, 30]).beta_interval is None  # two points: no error
    assert fit_frequency_law([0.1], [10]) is None


def test_late_gain_tells_a_flat_curve_from_a_falling_one():
    steps = np.arange(0, 101, 10)
    assert late_gain(steps, np.full(steps.size, 0.7)) == 0.0
    falling = late_gain(steps, 1.0 - steps / 200)  # from 0.6 at step 80 to 0.5 at 100
    assert falling == pytest.approx(0.1)
    assert late_gain(steps, steps / 100, lower_is_better=False) == pytest.approx(0.2)
