"""ai2-olmo's corpus reader, fed from this node's copies of a corpus's files.

`MemMapDataset` (its chunking and indexing: instance i of a corpus is the same everywhere) with
each file's length from the manifest and every chunk read from the node's local copy
(`location.local_copy`): no request per chunk, no listing of a bucket at start-up, and a file
is fetched only when a trial first reads from it. Imports torch (through ai2-olmo): only
trials and scans use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from olmo.data.memmap_dataset import MemMapDataset


class NodeCachedReader(MemMapDataset):
    def __init__(self, files: list[str], file_tokens: list[int],
                 local_file: Callable[[int], Path], seq_len: int, dtype: np.dtype):
        super().__init__(*files, chunk_size=seq_len, memmap_dtype=dtype.type,
                         include_instance_metadata=False)
        self._index = {f: i for i, f in enumerate(files)}
        self._tokens = dict(zip(files, file_tokens))
        self._local_file = local_file

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """Each file's first and past-the-end instance, from the manifest's lengths (ai2-olmo's
        own asks every file's size and opens S3, R2 and Weka clients up front)."""
        if self._mmap_offsets is None:
            ends = np.cumsum([self._tokens[path] // self._chunk_size
                              for path in self._memmap_paths]).tolist()
            self._mmap_offsets = list(zip([0, *ends[:-1]], ends))
        return self._mmap_offsets

    def _read_chunk_from_memmap(self, path, index, dtype=None):
        return super()._read_chunk_from_memmap(self._local_file(self._index[path]), index, dtype)
