"""Stopping once converged: the criterion on known curves, and a pack's stop steps exact
through a checkpoint and restore."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.synthetic import stopping
from trainables.synthetic.student import Member, Pack, Setup


def checks(curve, every=10, n=100):
    steps = np.arange(every, every * n + 1, every)
    return steps, np.asarray([curve(t) for t in steps], dtype=float)


def first_stop(curve, rare=lambda t: 0.5, tolerance=0.01, every=10, n=100):
    steps, loss = checks(curve, every, n)
    rare_values = np.array([rare(t) for t in steps])
    for i in range(len(steps)):
        if stopping.converged(steps[:i + 1], loss[:i + 1], rare_values[:i + 1], tolerance):
            return int(steps[i])
    return None


def test_a_flat_loss_has_converged_a_falling_one_has_not():
    assert first_stop(lambda t: 0.3) == 60  # once (t/4, t/2] holds two checks: 20, 30
    assert first_stop(lambda t: 0.3 + 30.0 / t) is None  # halves keep improving by > 1%
    assert first_stop(lambda t: 0.3, tolerance=0) is None  # 0: never (a fixed budget)


def test_exponential_convergence_stops_once_within_tolerance():
    optimum, rate = 0.2, 0.005
    stop = first_stop(lambda t: optimum * (1 + np.exp(-rate * t)))
    assert stop is not None
    assert optimum * np.exp(-rate * stop) <= 0.01 * optimum  # within 1% of where it goes


def test_a_loss_going_to_zero_stops_at_an_absolute_floor():
    stop = first_stop(lambda t: np.exp(-0.01 * t), n=300)
    assert stop is not None and np.exp(-0.01 * stop) < 1e-3


def test_a_moving_rare_loss_keeps_a_flat_total_going():
    """The rare task's loss is a small part of the total: it is checked on its own."""
    assert first_stop(lambda t: 0.3, rare=lambda t: 1.0 - t / 2000) is None


def test_noise_around_a_floor_stops_it():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 1001)
    assert first_stop(lambda t: 0.3 + 0.003 * noise[t // 10], every=10) is not None


def test_stop_steps_survive_a_checkpoint_exactly():
    setup = Setup(6, 6, 10, mode="sampled", batch_size=32, tolerance=0.05)
    members = [Member(0.1, 0.5, 0), Member(0.02, 2.0, 1)]
    steps, every = [20000, 20000], [50, 50]

    def run(pack):
        logged = [(pack.step, due) for _, due in pack.train(steps, every)]
        return logged, [c.converged_at for c in pack.checks]

    straight, stops = run(Pack(setup, members))
    assert all(s is not None and s < 20000 for s in stops), stops
    first = Pack(setup, members)
    for _ in first.train(steps, every):  # interrupted part-way, with checks recorded
        if first.step >= min(stops) // 2:
            break
    assert first.checks[0].steps
    resumed = Pack(setup, members)
    resumed.load_state_dicts(first.state_dicts())
    logged, again = run(resumed)
    assert again == stops
    assert logged == [entry for entry in straight if entry[0] > first.step]


def test_a_stopped_member_is_frozen_and_logged_at_its_stop():
    pack = Pack(Setup(6, 6, 10, tolerance=0.01), [Member(0.3, 2.0, 0), Member(0.01, 0.5, 0)])
    logged = [(pack.step, due) for _, due in pack.train([4000, 4000], [10**6, 10**6])]
    stops = [c.converged_at for c in pack.checks]
    assert stops[0] != stops[1]
    assert logged == [(0, [True, True])] + sorted(
        [(stops[0], [True, False]), (stops[1], [False, True])])
    frozen = Pack(Setup(6, 6, 10), [Member(0.3, 2.0, 0)])
    for _ in range(stops[0]):
        frozen.train_step()
    assert torch.equal(pack.V[0], frozen.V[0]) and torch.equal(pack.D[0], frozen.D[0])
    assert pack.summary(0)["converged"] == 1.0


@pytest.mark.parametrize("mode", ["population", "sampled"])
def test_width_d_trains_its_decoders(mode):
    """At N = d the encoder spans everything from the start: only the decoders learn, and
    the run goes on until they have."""
    pack = Pack(Setup(4, 4, 16, mode=mode, batch_size=64, tolerance=0.01),
                [Member(0.05, 0.5, 0)])
    for metrics, _ in pack.train([20000], [20000]):
        pass
    assert pack.checks[0].converged_at > 100
    assert metrics["rare/loss"].item() == pytest.approx(0.0, abs=1e-5)
    assert metrics["rare/model_loss"].item() < (0.01 if mode == "population" else 0.1)
    assert metrics["model_loss"].item() < (1e-3 if mode == "population" else 0.05)
