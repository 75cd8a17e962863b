"""ai2-olmo's corpus reader, fed from this node's copies of a corpus's files.

`MemMapDataset` (its offsets and chunking: instance i of a corpus is the same everywhere) with
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

    def _get_file_length(self, path, dtype=None):
        return path, self._tokens[path] // self._chunk_size

    def _read_chunk_from_memmap(self, path, index, dtype=None):
        return super()._read_chunk_from_memmap(self._local_file(self._index[path]), index, dtype)
