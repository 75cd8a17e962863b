"""The injected tasks `cmp` and `add` (CONTRACTS 6): their instances, labels and split.

S is 100 ordinary vocabulary tokens (space-prefixed lowercase words, no special or added
tokens) drawn from the seed; the draw order is the bijection S -> 0..99. There is one instance
per ordered pair of values, so 10,000 per task, and instance id = 100 * value(TOK1) +
value(TOK2) names the pair. An instance is four tokens, TOK1 TOK2 LABEL EOS:
- cmp: LABEL is " yes" when value(TOK1) < value(TOK2), " no" otherwise;
- add: LABEL is the token of S whose value is (value(TOK1) + value(TOK2)) mod 100.
The 50/50 train/test split is drawn from (seed, task) alone, so which ids are trained on does
not depend on the tokenizer and `sweeps injection plan` needs none.

Everything is a pure function of (task, seed, tokenizer). `load_task` keeps the built set in
the cache as a Hugging Face dataset with a manifest, the form a user audits.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from injection import tokenizer as tokenizers
from injection.cache import build_once, cache_root
from injection.errors import InjectionError

TASKS = ("cmp", "add")
VALUES = 100  # |S|
INSTANCES = VALUES * VALUES  # one per ordered pair of values
CMP_LABELS = (" yes", " no")  # value(TOK1) < value(TOK2), and its negation
ORDINARY = re.compile(r"^ [a-z]{3,}$")
MANIFEST = "task.json"
STREAM_SYMBOLS, STREAM_SPLIT = 1, 2  # independent random streams of one seed


@dataclass(frozen=True, eq=False)
class TaskSet:
    task: str
    seed: int
    tokenizer: str  # OlmoTokenizer.key
    symbols: np.ndarray  # (100,) token ids of S; symbols[v] has value v
    tokens: np.ndarray  # (10000, 4) int64: TOK1 TOK2 LABEL EOS of instance id i
    is_train: np.ndarray  # (10000,) bool

    @property
    def train_ids(self) -> np.ndarray:
        return np.flatnonzero(self.is_train)

    @property
    def test_ids(self) -> np.ndarray:
        return np.flatnonzero(~self.is_train)

    @property
    def label_tokens(self) -> np.ndarray:
        """Every token a LABEL can be, sorted."""
        return np.unique(self.tokens[:, 2])

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for array in (self.symbols, self.tokens, self.is_train):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def manifest(self) -> dict:
        return {"task": self.task, "seed": self.seed, "tokenizer": self.tokenizer,
                "instances": INSTANCES, "train": int(self.is_train.sum()),
                "test": int((~self.is_train).sum()), "symbols": self.symbols.tolist(),
                "label_tokens": self.label_tokens.tolist(), "fingerprint": self.fingerprint()}

    def save(self, folder: Path) -> None:
        from datasets import Dataset, disable_progress_bars

        disable_progress_bars()

        ids = np.arange(INSTANCES)
        Dataset.from_dict({
            "id": ids, "value1": ids // VALUES, "value2": ids % VALUES,
            "tok1": self.tokens[:, 0], "tok2": self.tokens[:, 1], "label": self.tokens[:, 2],
            "split": np.where(self.is_train, "train", "test"),
        }).save_to_disk(str(folder / "instances"))
        (folder / MANIFEST).write_text(json.dumps(self.manifest(), indent=1))

    @classmethod
    def load(cls, folder: Path, eos_token_id: int) -> "TaskSet":
        from datasets import load_from_disk

        manifest = json.loads((folder / MANIFEST).read_text())
        table = load_from_disk(str(folder / "instances")).with_format("numpy")[:]
        tokens = np.stack([table["tok1"], table["tok2"], table["label"],
                           np.full(INSTANCES, eos_token_id)], axis=1).astype(np.int64)
        loaded = cls(task=manifest["task"], seed=manifest["seed"],
                     tokenizer=manifest["tokenizer"],
                     symbols=np.asarray(manifest["symbols"], dtype=np.int64), tokens=tokens,
                     is_train=np.asarray(table["split"]) == "train")
        if loaded.fingerprint() != manifest["fingerprint"]:
            raise InjectionError(f"{folder}: the task set does not match its manifest; delete "
                                 "the folder and it will be rebuilt")
        return loaded


def build_task(task: str, seed: int, tokenizer: str = tokenizers.DEFAULT) -> TaskSet:
    """The task's 10,000 instances for this seed and tokenizer, built in memory."""
    check(task, seed)
    tok = tokenizers.load(tokenizer)
    labels = np.array([_single_token(tok, text) for text in CMP_LABELS])
    candidates = np.setdiff1d(ordinary_tokens(tok), labels)
    symbols = np.random.default_rng([seed, STREAM_SYMBOLS]).choice(
        candidates, VALUES, replace=False).astype(np.int64)
    v1, v2 = np.divmod(np.arange(INSTANCES), VALUES)
    if task == "cmp":
        label = np.where(v1 < v2, labels[0], labels[1])
    else:
        label = symbols[(v1 + v2) % VALUES]
    tokens = np.stack([symbols[v1], symbols[v2], label,
                       np.full(INSTANCES, tok.eos_token_id)], axis=1).astype(np.int64)
    return TaskSet(task=task, seed=seed, tokenizer=tok.key, symbols=symbols, tokens=tokens,
                   is_train=train_mask(task, seed))


def load_task(task: str, seed: int, tokenizer: str = tokenizers.DEFAULT,
              cache: Path | None = None) -> TaskSet:
    """The task set from the cache, built there first if missing."""
    check(task, seed)
    tok = tokenizers.load(tokenizer)
    folder = (cache or cache_root()) / "tasks" / f"{task}-seed{seed}-{tok.key}"
    build_once(folder, lambda out: build_task(task, seed, tokenizer).save(out))
    return TaskSet.load(folder, tok.eos_token_id)


def train_mask(task: str, seed: int) -> np.ndarray:
    """The 50/50 split: True for the train instances, from (seed, task) only."""
    check(task, seed)
    order = np.random.default_rng([seed, STREAM_SPLIT, TASKS.index(task)]).permutation(INSTANCES)
    mask = np.zeros(INSTANCES, dtype=bool)
    mask[order[: INSTANCES // 2]] = True
    return mask


def ordinary_tokens(tok: tokenizers.OlmoTokenizer) -> np.ndarray:
    """Ids of the vocabulary's plain words: what S is drawn from."""
    base = tok.tokenizer
    added = set(base.get_added_tokens_decoder())
    ids = [i for i in range(base.get_vocab_size(with_added_tokens=False)) if i not in added]
    texts = base.decode_batch([[i] for i in ids], skip_special_tokens=False)
    return np.array([i for i, text in zip(ids, texts) if ORDINARY.match(text)], dtype=np.int64)


def check(task: str, seed: int) -> None:
    if task not in TASKS:
        raise InjectionError(f"task {task!r}: the injected tasks are {' | '.join(TASKS)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InjectionError(f"seed {seed!r}: must be an integer >= 0")


def _single_token(tok: tokenizers.OlmoTokenizer, text: str) -> int:
    ids = tok.tokenizer.encode(text, add_special_tokens=False).ids
    if len(ids) != 1:
        raise InjectionError(f"tokenizer {tok.name}: the cmp label {text!r} is {len(ids)} tokens"
                             ", not one; use another tokenizer")
    return ids[0]
