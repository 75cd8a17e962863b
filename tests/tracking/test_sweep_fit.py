"""A sweep's fit from curves with known answers: laws, N*(f), regimes and predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracking.curves import Curve, Measure
from tracking.fit.laws import step
from tracking.fit.sweep_fit import DATA, MODEL, UNDECIDED, fit_sweep, regime

MEASURE = Measure(loss="rare/loss", score="rare/loss", threshold=0.5, lower_is_better=True)
WIDTHS = [4, 8, 16, 32, 64, 128]


def curve(frequency: float, steepness: float = 3.0, gain: float | None = 0.0,
          task: str = "simple") -> Curve:
    """A step from 0.98 to 0.02 whose middle, where L = 0.5, is N* = 0.5 f^-0.5."""
    n_star = 0.5 * frequency ** -0.5
    loss = [float(step(n, 0.98, 0.02, n_star, steepness)) for n in WIDTHS]
    return Curve(task=task, frequency=frequency, widths=[str(n) for n in WIDTHS],
                 sizes=WIDTHS, losses=[[v] for v in loss], scores=[[v] for v in loss],
                 late_gain=[gain] * len(WIDTHS), theory_loss=[None] * len(WIDTHS),
                 theory_critical=None)


@pytest.fixture(scope="module")
def fit():
    curves = [curve(f) for f in (1e-2, 1e-3, 1e-4)]
    return fit_sweep("s", "synthetic", MEASURE, curves, total=20, missing=["x", "y"])


def test_critical_widths_follow_the_power_law_in_frequency(fit):
    for c in fit.curves:  # the interpolated crossing sits near N* (the curve is not a line)
        assert c.critical.width == pytest.approx(0.5 * c.curve.frequency ** -0.5, rel=0.1)
    (law,) = fit.laws
    assert law.measured.beta == pytest.approx(0.5, abs=0.02) and law.theory is None
    assert fit.critical_width(1e-3, "simple") == pytest.approx(law.measured(1e-3))
    assert math.isnan(fit.critical_width(1e-3, "complex"))  # a task the sweep did not run
    assert (fit.finished, fit.total, fit.missing) == (18, 20, ["x", "y"])


def test_rare_loss_is_the_fit_at_a_swept_frequency_and_between_them(fit):
    for c in fit.curves:
        assert fit.rare_loss(16, c.curve.frequency, "simple") == pytest.approx(
            c.curve.loss_mean[WIDTHS.index(16)], abs=1e-4)
    at = [fit.rare_loss(16, f, "simple") for f in (1e-2, 10 ** -2.5, 1e-3)]
    assert at[0] < at[1] < at[2]  # rarer is harder, also between swept frequencies
    assert fit.rare_loss("16", 1.0, "simple") == fit.rare_loss(16, 1e-2, "simple")  # clamped


def test_answers_outside_the_sweep_are_flagged_extrapolated(fit):
    assert not fit.extrapolated(16, 1e-2, "simple") and not fit.extrapolated(100, 3e-3, "simple")
    assert fit.extrapolated(16, 1e-5, "simple")  # a decade rarer than any swept frequency
    assert fit.extrapolated(16, 0.1, "simple")
    assert fit.extrapolated(512, 1e-3, "simple") and fit.extrapolated("2", 1e-3, "simple")
    assert fit.extrapolated(16, 1e-3, "complex")  # a task the sweep did not run


def test_censored_critical_widths_stay_out_of_the_law():
    """Learned at every swept width (N* <= 4) and at none (N* > 128): bounds, not points."""
    curves = [curve(f) for f in (1e-2, 1e-3, 1e-4)] + [curve(1.0), curve(1e-7)]
    fit = fit_sweep("s", "synthetic", MEASURE, curves, total=30, missing=[])
    bounds = {c.curve.frequency: c.critical.bound for c in fit.curves}
    assert bounds[1.0] == "<=4" and bounds[1e-7] == ">128"
    (law,) = fit.laws
    assert law.measured.frequencies == 3 and law.measured.frequency_range == (1e-4, 1e-2)
    assert law.measured.beta == pytest.approx(0.5, abs=0.02)
    two = fit_sweep("s", "synthetic", MEASURE, curves[:2], total=12, missing=[])
    assert two.laws[0].measured is None  # two uncensored N*: no law


def test_the_fit_survives_its_json(fit):
    from tracking.fit.sweep_fit import SweepFit

    again = SweepFit.model_validate_json(fit.model_dump_json())
    assert again == fit
    assert again.rare_loss(20, 3e-3, "simple") == fit.rare_loss(20, 3e-3, "simple")


def test_regimes_from_the_training_curves():
    assert regime([True, True], [0.0, 0.0]) == DATA  # the smallest width learns it
    assert regime([False, True], [0.001, 0.0]) == MODEL  # flat above the threshold
    assert regime([False, False], [0.2, 0.05]) == DATA  # still improving everywhere
    assert regime([False, True], [None, 0.0]) == UNDECIDED  # no history to tell
    assert regime([], []) == UNDECIDED


def test_each_curve_gets_its_regime():
    flat, falling = curve(1e-3, gain=0.0), curve(1e-3, gain=0.3)
    fit = fit_sweep("s", "synthetic", MEASURE, [flat], total=6, missing=[])
    assert fit.curves[0].regime == MODEL
    fit = fit_sweep("s", "synthetic", MEASURE, [falling], total=6, missing=[])
    assert fit.curves[0].regime == DATA
    assert np.all(fit.curves[0].curve.learned(MEASURE) == [0, 0, 1, 1, 1, 1])
