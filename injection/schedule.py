"""The injection schedule: which rows of global batch b get which train instances.

Stateless and exact. Everything about batch b is a pure function of (frequency, batch size,
sequence length, seed, schedule, b), so every worker and every resumed run computes the same
injection without shared state, and computing it costs O(instances in b), not O(b):

- count: instances injected before batch b = round(frequency x tokens before b), computed in
  integers from the float's exact value (`exact_frequency`; round half up), so the running
  total is never off by more than half an instance, at any frequency and after any number of
  batches.
  Under `{block: n}` the total is n x floor(that / n): a block of n arrives in the batch where
  the i.i.d. schedule delivers its n-th instance, so the long-run frequency is the same.
- rows: distinct rows of the batch, drawn from (seed, b).
- instances: the k-th injected instance of a run is train instance perm_e[k mod n_train],
  perm_e a permutation drawn from (seed, e = k div n_train): every train instance is used
  once before any is used again, and instance k is found without the k - 1 before it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from injection.errors import InjectionError

INSTANCE_TOKENS = 4  # TOK1 TOK2 LABEL EOS, at the start of a row
STREAM_ROWS, STREAM_INSTANCES = 3, 4  # random streams of the seed (tasks use 1 and 2)


@dataclass(frozen=True)
class BatchPlan:
    batch: int
    rows: np.ndarray  # (count,) distinct row indices, ascending
    instances: np.ndarray  # (count,) task instance ids; instances[i] goes to rows[i]

    @property
    def count(self) -> int:
        return len(self.rows)

    def slice(self, start: int, stop: int) -> "BatchPlan":
        """The plan of rows start..stop-1 alone, renumbered from 0: a worker's share of the
        global batch, or a micro-batch."""
        keep = (self.rows >= start) & (self.rows < stop)
        return BatchPlan(self.batch, self.rows[keep] - start, self.instances[keep])

    def as_json(self) -> dict:
        """CONTRACTS 2's line for this batch."""
        return {"batch": self.batch, "count": self.count, "rows": self.rows.tolist(),
                "instances": self.instances.tolist()}


@dataclass(frozen=True, eq=False)
class Schedule:
    frequency: float  # instances per training token
    batch_size: int  # rows (sequences) per global batch
    seq_len: int
    train_ids: np.ndarray  # the task's train instance ids, what is drawn from
    seed: int = 0
    block: int = 0  # 0: i.i.d.; n: instances arrive n at a time

    def __post_init__(self) -> None:
        check(self.frequency, self.batch_size, self.seq_len, self.seed, self.block)
        if len(self.train_ids) == 0:
            raise InjectionError("the task has no train instances to inject")

    @property
    def tokens_per_batch(self) -> int:
        return self.batch_size * self.seq_len

    def injected_before(self, batch: int) -> int:
        """Instances in batches 0..batch-1."""
        return injected(self.frequency, self.seq_len, batch * self.tokens_per_batch, self.block)

    def plan(self, batch: int) -> BatchPlan:
        if batch < 0:
            raise InjectionError(f"batch {batch}: batches are numbered from 0")
        first, last = self.injected_before(batch), self.injected_before(batch + 1)
        count = last - first
        if count == 0:
            return BatchPlan(batch, np.empty(0, np.int64), np.empty(0, np.int64))
        rng = np.random.default_rng([self.seed, STREAM_ROWS, batch])
        rows = np.sort(rng.choice(self.batch_size, count, replace=False)).astype(np.int64)
        return BatchPlan(batch, rows, self._instances(first, last))

    def plans(self, start: int, batches: int) -> Iterator[BatchPlan]:
        return (self.plan(b) for b in range(start, start + batches))

    def _instances(self, first: int, last: int) -> np.ndarray:
        n = len(self.train_ids)
        k = np.arange(first, last, dtype=np.int64)
        epochs, positions = np.divmod(k, n)
        ordinals = np.empty_like(k)
        for epoch in np.unique(epochs):
            here = epochs == epoch
            ordinals[here] = _permutation(self.seed, int(epoch), n)[positions[here]]
        return np.asarray(self.train_ids, dtype=np.int64)[ordinals]


def check(frequency: float, batch_size: int, seq_len: int, seed: int = 0, block: int = 0) -> None:
    """Refuse a schedule that cannot be run, naming the value and the rule."""
    if seq_len < INSTANCE_TOKENS:
        raise InjectionError(f"seq-len {seq_len}: an instance takes the first "
                             f"{INSTANCE_TOKENS} tokens of a row, so seq-len must be >= "
                             f"{INSTANCE_TOKENS}")
    if batch_size < 1:
        raise InjectionError(f"batch-size {batch_size}: must be >= 1 row")
    if seed < 0:
        raise InjectionError(f"seed {seed}: must be an integer >= 0")
    if not (math.isfinite(frequency) and frequency > 0):
        raise InjectionError(f"frequency {frequency!r}: must be a number > 0 "
                             "(instances per training token)")
    if exact_frequency(frequency, seq_len) * seq_len > 1:
        raise InjectionError(
            f"frequency {frequency:g} is above 1/seq-len = 1/{seq_len} = {1 / seq_len:.4g}: "
            "at most one instance fits in a row; lower the frequency or raise seq-len")
    if block < 0:
        raise InjectionError(f"block {block}: must be >= 1 (or 0 for the i.i.d. schedule)")
    if block:
        # A batch receives at most ceil(f B L) i.i.d. instances, so at most this many in blocks.
        most = block * -(-math.ceil(exact_frequency(frequency, seq_len) * batch_size * seq_len)
                         // block)
        if most > batch_size:
            raise InjectionError(
                f"block {block}: at frequency {frequency:g} a batch can receive {most} "
                f"instances in blocks of {block} but has only {batch_size} rows; use a smaller "
                "block, a lower frequency or a larger batch")


def injected(frequency: float, seq_len: int, tokens: int, block: int = 0) -> int:
    """Instances in the first `tokens` training tokens: round(frequency x tokens) (half up, in
    integers from the float's exact value), or whole blocks of it."""
    num, den = _ratio(frequency, seq_len)
    exact = (2 * num * tokens + den) // (2 * den)  # floor(f t + 1/2), in integers
    return exact if block == 0 else block * (exact // block)


def exact_frequency(frequency: float, seq_len: int) -> Fraction:
    """The float's exact binary value, except that a frequency equal to 1/seq_len up to the
    float's rounding (0.2 for seq_len 5) is exactly 1/seq_len: every row, never one more."""
    return Fraction(1, seq_len) if frequency * seq_len == 1.0 else Fraction(frequency)


@functools.lru_cache(maxsize=64)
def _ratio(frequency: float, seq_len: int) -> tuple[int, int]:
    return exact_frequency(frequency, seq_len).as_integer_ratio()


@functools.lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    order = np.random.default_rng([seed, STREAM_INSTANCES, epoch]).permutation(n)
    order.flags.writeable = False
    return order
