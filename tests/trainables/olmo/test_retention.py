"""Retention between injections (Figure 8) on constructed loss histories whose answer is known."""

from __future__ import annotations

import pytest

from trainables.olmo.retention import Retention, retained


def test_retained_is_the_share_of_the_drop_still_there():
    assert retained(before=5.0, after=3.0, later=3.0) == 1.0  # nothing forgotten
    assert retained(before=5.0, after=3.0, later=5.0) == 0.0  # all of it
    assert retained(before=5.0, after=3.0, later=4.5) == pytest.approx(0.25)
    assert retained(before=5.0, after=3.0, later=6.0) == pytest.approx(-0.5)  # worse than before
    assert retained(before=5.0, after=5.5, later=5.0) is None  # no drop, nothing to retain


def test_a_drop_within_float32_rounding_is_not_a_drop():
    assert retained(before=5.0, after=5.0 - 1e-6, later=4.0) is None  # 2e-7 of the loss
    assert retained(before=5.0, after=5.0 - 1e-3, later=5.0 - 5e-4) == pytest.approx(0.5)


# Batches 2, 5 and 8 hold instances (training steps 3, 6, 9); the task's test loss at each
# state after `step` steps, falling by 2 at every injection and recovering 1.5 in between.
INJECTS = {2, 5, 8}
LOSS = {0: 9.0, 1: 9.0, 2: 8.0, 3: 6.0, 4: 7.0, 5: 7.5, 6: 5.5, 7: 6.0, 8: 7.0, 9: 5.0, 10: 5.5}


def observe(retention: Retention, steps, read: list) -> dict[int, dict]:
    def at(step):
        def loss():
            read.append(step)
            return LOSS[step]
        return loss

    return {step: m for step in steps if (m := retention.observe(
        at(step), injected_last=step - 1 in INJECTS, injects_next=step in INJECTS))}


def test_each_injection_is_measured_against_the_next_and_only_next_to_injections():
    read = []
    logged = observe(Retention(), range(11), read)
    assert read == [2, 3, 5, 6, 8, 9]  # the states just before and just after each injection
    assert logged[3]["rare/injection_drop"] == 2.0 and logged[6]["rare/injection_drop"] == 2.0
    # Before the second injection 7.5: of the drop 8 -> 6, (8 - 7.5) / 2 is still there.
    assert logged[5]["rare/retained"] == pytest.approx(0.25)
    assert logged[8]["rare/retained"] == pytest.approx((7.5 - 7.0) / 2.0)
    assert "rare/retained" not in logged[2]  # no injection before the first
    assert {step: m["rare/test_loss"] for step, m in logged.items()} == {s: LOSS[s] for s in read}


def test_a_resumed_retention_continues_exactly():
    straight = observe(Retention(), range(11), [])
    first = Retention()
    before = observe(first, range(5), [])
    resumed = Retention()
    resumed.load_state_dict(first.state_dict())
    assert {**before, **observe(resumed, range(5, 11), [])} == straight
