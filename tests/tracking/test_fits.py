"""The numerical fits on generated data whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracking.curves import late_gain
from tracking.fit.laws import critical_width, fit_frequency_law, fit_step, step

WIDTHS = np.array([4, 6, 8, 12, 16, 24, 32, 40, 48, 56])


def generated(high, low, n_step, steepness, widths=WIDTHS, seeds=3, noise=0.02, seed=0):
    """Losses on the step with additive noise, `seeds` per width."""
    n = np.repeat(widths, seeds)
    rng = np.random.default_rng(seed)
    return n, step(n, high, low, n_step, steepness) + rng.normal(0.0, noise, n.size)


STEPS = [  # (high, low, n_step, steepness): a sharp step (a simple task), a gradual fall
    (1.0, 0.05, 20.0, 8.0),
    (0.95, 0.1, 14.0, 1.5),
]


@pytest.mark.parametrize("high,low,n_step,steepness", STEPS)
def test_step_fit_recovers_known_parameters(high, low, n_step, steepness):
    """Exactly without noise; with noise, the step's place within a swept-width gap, its
    levels within the noise, and each 95% bootstrap interval around its estimate."""
    n = np.repeat(WIDTHS, 3)
    exact = fit_step(n, step(n, high, low, n_step, steepness), np.random.default_rng(0))
    assert (exact.high, exact.low) == pytest.approx((high, low), abs=1e-4)
    assert exact.n_step == pytest.approx(n_step, rel=0.02)
    assert exact.rmse < 1e-4 and exact.points == 30 and not exact.censored

    fit = fit_step(*generated(high, low, n_step, steepness), np.random.default_rng(0))
    assert abs(fit.high - high) < 0.05 and abs(fit.low - low) < 0.05
    assert n_step / 1.4 < fit.n_step < n_step * 1.4
    for name in ("high", "low", "n_step", "steepness"):
        low_, high_ = getattr(fit, f"{name}_interval")
        assert low_ <= getattr(fit, name) <= high_ and low_ < high_, name
    assert fit.rmse == pytest.approx(0.02, rel=0.5)  # the noise it was given


def test_a_step_is_described_better_than_a_power_law_could():
    """The demo's shape: rare loss 1 below the critical width, ~0 above. The step fits it to
    within the noise (a power law with L_inf >= 0 missed such data by up to 3x)."""
    n = np.repeat(WIDTHS, 1)
    loss = np.where(n < 24, 1.0, 0.01)
    fit = fit_step(n, loss, np.random.default_rng(0))
    assert fit.rmse < 0.01
    assert 16 < fit.n_step < 24 and fit.steepness > 10
    assert np.allclose(fit(n), loss, atol=0.02)


def test_step_fit_is_reproducible_needs_five_widths_and_marks_a_step_outside():
    n, loss = generated(1.0, 0.05, 20.0, 8.0)
    first, again = (fit_step(n, loss, np.random.default_rng(7)) for _ in range(2))
    assert first == again
    assert fit_step([4, 8, 16, 32], [0.9, 0.5, 0.3, 0.1], np.random.default_rng(0)) is None
    flat = fit_step(WIDTHS, np.full(WIDTHS.size, 0.98), np.random.default_rng(0))
    assert flat.rmse < 1e-6 and flat.censored  # no step within the sweep


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


def test_frequency_law_recovers_its_exponent_from_three_frequencies_on():
    f = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    law = fit_frequency_law(f, 3.0 * f ** -0.5)
    assert (law.c, law.beta) == pytest.approx((3.0, 0.5))
    assert law.beta_interval == pytest.approx((0.5, 0.5), abs=1e-6)
    assert law.rmse_log < 1e-9 and law.frequency_range == (1e-4, 1e-1)
    noisy = fit_frequency_law(f, 3.0 * f ** -0.5 * np.array([1.1, 0.9, 1.05, 0.95]))
    assert noisy.beta_interval[0] < 0.5 < noisy.beta_interval[1]
    assert noisy.rmse_log == pytest.approx(0.07, abs=0.03)
    assert fit_frequency_law(f[:2], [10, 30]) is None  # two points lie on a line whatever


def test_late_gain_tells_a_flat_curve_from_a_falling_one():
    steps = np.arange(0, 101, 10)
    assert late_gain(steps, np.full(steps.size, 0.7)) == 0.0
    falling = late_gain(steps, 1.0 - steps / 200)  # from 0.6 at step 80 to 0.5 at 100
    assert falling == pytest.approx(0.1)
    assert late_gain(steps, steps / 100, lower_is_better=False) == pytest.approx(0.2)


def test_critical_table_is_open_where_a_narrower_point_has_no_verdict():
    from tracking.curves import OPEN, Measure, Row, critical_table

    measure = Measure(loss="rare/loss", score="rare/loss", threshold=0.5, lower_is_better=True)

    def row(width: int, frequency: float, state: str, loss: float | None = None,
            inferred: bool | None = None) -> Row:
        return Row(key=f"{width}-{frequency}", run_id="", state=state, step=1,
                   params={"width": str(width), "frequency": frequency, "task": "complex",
                           "seed": 0}, trainable="synthetic",
                   metrics={} if loss is None else {"rare/loss": loss}, inferred=inferred)

    rows = [row(4, 0.1, "FINISHED", 0.9), row(8, 0.1, "FINISHED", 0.1),  # N* = 8
            row(4, 0.03, "FAILED"), row(8, 0.03, "FINISHED", 0.1),  # 4 could learn it too
            row(4, 0.01, "FINISHED", 0.9), row(8, 0.01, "FINISHED", 0.9),  # none learned
            row(4, 0.003, "INFERRED", inferred=False), row(8, 0.003, "SCHEDULED")]
    table = critical_table(rows, measure)
    assert table == {("complex", 0, 0.1): "8", ("complex", 0, 0.03): OPEN,
                     ("complex", 0, 0.01): None, ("complex", 0, 0.003): OPEN}
    # the failed point finished and learned: the next width no longer stands in for it
    rows[2] = row(4, 0.03, "FINISHED", 0.2)
    assert critical_table(rows, measure)[("complex", 0, 0.03)] == "4"
