"""The schedule is exact, stateless and deterministic, at any frequency and batch shape."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from injection.errors import InjectionError
from injection.schedule import Schedule, exact_frequency
from injection.tasks import train_mask

TRAIN = train_mask("cmp", 0).nonzero()[0]


@st.composite
def schedules(draw, block: bool = False):
    """Batch shapes from 1 x 4 to 4096 x 8192 and frequencies log-uniform from 1e-12 of the
    largest up to the largest allowed, 1/seq_len."""
    seq_len = draw(st.integers(4, 8192))
    batch_size = draw(st.integers(1, 4096))
    frequency = 10.0 ** draw(st.floats(-12, 0)) / seq_len
    n = draw(st.integers(1, 8)) if block else 0
    if n and n * -(-int(np.ceil(frequency * batch_size * seq_len)) // n) > batch_size:
        n = 1  # a block that cannot fit the batch is refused (tested below)
    return Schedule(frequency, batch_size, seq_len, TRAIN, seed=draw(st.integers(0, 2**32)),
                    block=n)


def exact(schedule: Schedule, batch: int) -> Fraction:
    f = exact_frequency(schedule.frequency, schedule.seq_len)
    return f * batch * schedule.batch_size * schedule.seq_len


@settings(max_examples=200, deadline=None)
@given(schedules(), st.integers(0, 10**15))
def test_cumulative_count_is_round_of_frequency_times_tokens(schedule, batch):
    injected = schedule.injected_before(batch)
    assert abs(injected - exact(schedule, batch)) <= Fraction(1, 2)


@settings(max_examples=60, deadline=None)
@given(schedules(), st.integers(0, 10**12))
def test_plans_add_up_to_the_cumulative_count_batch_by_batch(schedule, start):
    total = schedule.injected_before(start)
    for plan in schedule.plans(start, 30):
        total += plan.count
        assert total == schedule.injected_before(plan.batch + 1)
        assert abs(total - exact(schedule, plan.batch + 1)) <= Fraction(1, 2)


@settings(max_examples=60, deadline=None)
@given(schedules(block=True), st.integers(0, 10**12))
def test_block_schedule_delivers_whole_blocks_at_the_same_long_run_frequency(schedule, start):
    iid = Schedule(schedule.frequency, schedule.batch_size, schedule.seq_len, TRAIN,
                   seed=schedule.seed)
    for plan in schedule.plans(start, 20):
        assert plan.count % schedule.block == 0 and plan.count <= schedule.batch_size
        blocked, free = schedule.injected_before(plan.batch), iid.injected_before(plan.batch)
        assert blocked % schedule.block == 0 and 0 <= free - blocked < schedule.block


@settings(max_examples=60, deadline=None)
@given(schedules(block=True), st.integers(0, 10**12))
def test_rows_are_distinct_and_inside_the_batch_and_instances_are_train(schedule, start):
    for plan in schedule.plans(start, 10):
        assert len(set(plan.rows.tolist())) == plan.count == len(plan.instances)
        assert np.all((plan.rows >= 0) & (plan.rows < schedule.batch_size))
        assert np.isin(plan.instances, TRAIN).all()


@settings(max_examples=40, deadline=None)
@given(schedules(block=True), st.integers(0, 10**9), st.integers(1, 40))
def test_a_plan_started_at_batch_s_is_the_tail_of_the_full_plan(schedule, start, batches):
    twin = Schedule(schedule.frequency, schedule.batch_size, schedule.seq_len, TRAIN.copy(),
                    seed=schedule.seed, block=schedule.block)  # another worker, or a resume
    full = [p.as_json() for p in schedule.plans(start, batches + 5)]
    assert [p.as_json() for p in twin.plans(start + 5, batches)] == full[5:]


def test_plans_depend_on_the_seed():
    plans = [[p.as_json() for p in Schedule(1 / 64, 32, 64, TRAIN, seed=s).plans(0, 5)]
             for s in (0, 1)]
    assert plans[0] != plans[1]


def test_every_train_instance_is_used_once_before_any_is_reused():
    train = np.array([3, 14, 15, 92, 65, 35, 89])
    schedule = Schedule(1 / 8, 3, 8, train, seed=5)  # 3 instances per batch
    drawn = np.concatenate([p.instances for p in schedule.plans(0, 28)])  # 84 = 12 epochs
    for epoch in drawn.reshape(-1, len(train)):
        assert sorted(epoch) == sorted(train)


def test_a_far_batch_costs_what_its_instances_cost():
    # O(count), not O(b): batch 10^15 at the paper's rarest frequency, 4M-token batches
    schedule = Schedule(2.4e-8, 1024, 4096, TRAIN, seed=0)
    counts = [p.count for p in schedule.plans(10**15, 100)]
    assert sum(counts) == schedule.injected_before(10**15 + 100) - schedule.injected_before(10**15)
    assert set(counts) == {0, 1} and 9 <= sum(counts) <= 11  # one every ~10 batches


def test_slices_of_a_plan_partition_it():
    plan = Schedule(1 / 16, 12, 16, TRAIN, seed=2).plan(7)
    parts = [plan.slice(lo, lo + 4) for lo in (0, 4, 8)]
    assert sum(p.count for p in parts) == plan.count == 12
    assert np.array_equal(np.concatenate([p.rows + lo for p, lo in zip(parts, (0, 4, 8))]),
                          plan.rows)
    assert np.array_equal(np.concatenate([p.instances for p in parts]), plan.instances)


@pytest.mark.parametrize("kwargs, words", [
    ({"frequency": 1 / 64 * 1.0001, "seq_len": 64}, "above 1/seq-len"),
    ({"frequency": 0.0}, "> 0"),
    ({"frequency": float("inf")}, "> 0"),
    ({"seq_len": 3, "frequency": 0.1}, "seq-len must be >= 4"),
    ({"batch_size": 0}, "batch-size 0"),
    ({"seed": -1}, "seed -1"),
    ({"block": -1}, "block -1"),
    ({"block": 5, "batch_size": 4, "frequency": 1e-6}, "only 4 rows"),
])
def test_impossible_schedules_are_refused(kwargs, words):
    args = {"frequency": 1e-4, "batch_size": 8, "seq_len": 64, "seed": 0, "block": 0, **kwargs}
    with pytest.raises(InjectionError, match=words):
        Schedule(args.pop("frequency"), args.pop("batch_size"), args.pop("seq_len"), TRAIN,
                 **args)


@pytest.mark.parametrize("frequency, seq_len", [(0.0078125, 128), (0.2, 5), (0.001, 1000)])
def test_the_largest_frequency_fills_every_row(frequency, seq_len):
    # 0.2 and 0.001 are a little above 1/5 and 1/1000 as floats: taken as exactly 1/seq_len
    schedule = Schedule(frequency, 16, seq_len, TRAIN)
    assert all(p.count == 16 for p in schedule.plans(10**15, 5))
