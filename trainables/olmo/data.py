"""Global batches of the OLMo trainable: corpus rows and injected instances from (seed, b).

Global batch b is a pure function of (corpus, seq_len, batch size, seed, b): its rows are the
corpus chunks at sample positions b*B .. b*B+B-1 of a seeded shuffle, and the injection
schedule's plan for b writes the task's instances over them. So the data position of a run
*is* its step: a resumed run continues at the batch after its checkpoint's step without any
saved reader state, and any world size trains on the same global batches (each worker reads
only its rows of each batch).

The shuffle is an affine bijection per epoch, k -> (a k + c) mod n with a coprime to n, drawn
from (seed, epoch): O(1) memory and time per row at any corpus size (a full permutation of a
Dolma-sized corpus's chunks would not fit), every chunk once per epoch.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from injection import corpus as corpora
from injection.corpus import Corpus
from injection.place import Placed, place
from injection.schedule import Schedule
from injection.tasks import TaskSet

STREAM_SHUFFLE = 6  # random stream of the seed (tasks use 1, 2; the schedule 3, 4)


@dataclass(frozen=True, eq=False)
class GlobalBatches:
    corpus: Corpus
    schedule: Schedule
    instance_tokens: np.ndarray  # the task's (N, 4) TOK1 TOK2 LABEL EOS table
    seed: int = 0

    @functools.cached_property
    def dataset(self):
        return self.corpus.dataset(self.schedule.seq_len)

    @functools.cached_property
    def chunks(self) -> int:
        return len(self.dataset)

    @property
    def batch_size(self) -> int:
        return self.schedule.batch_size

    def chunk_ids(self, batch: int, start: int, stop: int) -> np.ndarray:
        """Corpus chunks of rows start..stop-1 of global batch `batch`."""
        k = batch * self.batch_size + np.arange(start, stop, dtype=np.int64)
        epochs, positions = np.divmod(k, self.chunks)
        ids = np.empty_like(k)
        for epoch in np.unique(epochs):
            a, c = _affine(self.seed, int(epoch), self.chunks)
            here = epochs == epoch
            # Python ints: a * position can overflow int64 on a large corpus.
            ids[here] = [(a * int(p) + c) % self.chunks for p in positions[here]]
        return ids

    def rows(self, batch: int, start: int, stop: int) -> Placed:
        """Rows start..stop-1 of global batch `batch`, the schedule's instances in place."""
        tokens = torch.stack([self.dataset[int(i)]["input_ids"]
                              for i in self.chunk_ids(batch, start, stop)]).long()
        return place(tokens, self.schedule.plan(batch).slice(start, stop), self.instance_tokens)


def open_corpus(path: str | None) -> Corpus:
    """The corpus folder a section names, or the embedded one."""
    return corpora.open_corpus(path) if path else corpora.embedded()


def global_batches(frequency: float, batch_size: int, seq_len: int, block: int, seed: int,
                   corpus: Corpus, task: TaskSet) -> GlobalBatches:
    """The global batches of a grid point: `corpus` rows with `task` injected at
    `frequency` (instances per token), `block` at a time (0: i.i.d.)."""
    schedule = Schedule(frequency, batch_size, seq_len, task.train_ids, seed=seed, block=block)
    return GlobalBatches(corpus, schedule, task.tokens, seed=seed)


def share(batch_size: int, rank: int, world_size: int) -> tuple[int, int]:
    """The rows of each global batch that worker `rank` trains."""
    assert batch_size % world_size == 0, "the spec checks batch_size % workers"
    per = batch_size // world_size
    return rank * per, (rank + 1) * per


def checksum(tokens: torch.Tensor) -> float:
    """A fingerprint of a batch's tokens, exact in a float metric: which data a step saw."""
    return float(int(tokens.sum().item()) % 2**24)


@functools.lru_cache(maxsize=4)
def _affine(seed: int, epoch: int, n: int) -> tuple[int, int]:
    rng = np.random.default_rng([seed, STREAM_SHUFFLE, epoch])
    while True:
        a = int(rng.integers(1, max(n, 2)))
        if math.gcd(a, n) == 1:
            return a, int(rng.integers(0, n))
