"""Reference tasks R_cmp and R_add: how often a corpus states comparisons and sums by itself.

A scan decodes the corpus document by document and counts the *true* natural statements:
comparisons of two numbers ("3 < 5", "5 is greater than 3") and additions ("5 + 91 = 96",
"2 plus 2 equals 4"). Their count per token is the natural frequency an injected frequency
can be placed against. The scan also keeps a small evaluation set of distinct statements,
each with a mask on the positions whose next token is its answer (a comparison's relation
and right-hand number, an addition's sum): the OLMo trainable's `ref/loss` is the model's loss on
those tokens. Results live in the corpus folder (`reference-v1/`: `reference.json` and
`eval.jsonl`), computed once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from injection.cache import build_once
from injection.corpus import Corpus
from injection.errors import InjectionError

KINDS = {"cmp": "R_cmp", "add": "R_add"}  # injected task -> its natural reference
VERSION = 1  # bump when the patterns change: scans are kept in the corpus folder
EVAL_SIZE = 256  # statements per kind kept for evaluation, at most
EVAL_FILE = "eval.jsonl"  # one statement a line: kind, text, input_ids, target_mask
DECODE_BATCH = 1000  # documents decoded at once
NUMBER = r"\d+(?:\.\d+)?"
RELATIONS = {"<": float.__lt__, ">": float.__gt__, "<=": float.__le__, ">=": float.__ge__,
             "≤": float.__le__, "≥": float.__ge__}
WORDS = {"less": "<", "smaller": "<", "fewer": "<", "lower": "<",
         "greater": ">", "larger": ">", "more": ">", "bigger": ">", "higher": ">"}
PATTERNS = {
    # numbers standing alone: not part of a word ("A5"), a decimal ("1.2") or a version
    "R_cmp": re.compile(rf"(?<![\w.])({NUMBER})\s*(<=|>=|<|>|≤|≥|is (?:{'|'.join(WORDS)}) than)"
                        rf"\s*({NUMBER})(?!\w|\.\d)"),
    "R_add": re.compile(r"(?<![\w.])(\d+)\s*(?:\+|plus)\s*(\d+)\s*(?:=|equals|is)\s*(\d+)"
                        r"(?!\w|\.\d)"),
}
ANSWER_GROUP = {"R_cmp": 2, "R_add": 3}  # the part of a statement its loss is measured on


@dataclass(frozen=True)
class Statement:
    kind: str  # R_cmp | R_add
    text: str
    answer_start: int  # character offset of the answer in `text`


def statements(text: str) -> Iterator[Statement]:
    """The true comparison and addition statements in `text`."""
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            if _true(kind, match):
                yield Statement(kind, match.group(0),
                                match.start(ANSWER_GROUP[kind]) - match.start())


def _true(kind: str, match: re.Match) -> bool:
    if kind == "R_add":
        a, b, total = map(int, match.groups())
        return a + b == total
    left, relation, right = match.groups()
    words = relation.split()
    op = WORDS[words[1]] if len(words) > 1 else relation
    return RELATIONS[op](float(left), float(right))


@dataclass(frozen=True)
class Reference:
    path: Path

    @property
    def summary(self) -> dict:
        return json.loads((self.path / "reference.json").read_text())

    def eval_set(self, kind: str):
        """The evaluation statements of one kind (R_cmp, R_add, or a task name cmp, add) as
        (tokens (N, T) LongTensor padded with the pad id, target_mask (N, T) bool marking the
        positions whose next token is an answer token)."""
        import torch

        kind = KINDS.get(kind, kind)
        rows = [(r["input_ids"], r["target_mask"]) for r in map(json.loads, (
            self.path / EVAL_FILE).read_text().splitlines()) if r["kind"] == kind]
        width = max((len(ids) for ids, _ in rows), default=1)
        tokens = torch.full((len(rows), width), self.summary["pad_token_id"], dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, (ids, target) in enumerate(rows):
            tokens[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(target)] = torch.tensor(target)
        return tokens, mask


def reference(corpus: Corpus, max_tokens: int | None = None) -> Reference:
    """The corpus's reference frequencies and evaluation set, scanned once (the first
    `max_tokens` tokens, or all of them)."""
    if max_tokens is not None and max_tokens < 1:
        raise InjectionError(f"--max-tokens {max_tokens}: must be >= 1")
    name = f"reference-v{VERSION}" + ("" if max_tokens is None else f"-{max_tokens}")
    return Reference(build_once(corpus.path / name,
                                lambda out: _scan(corpus, max_tokens, out)))


def _scan(corpus: Corpus, max_tokens: int | None, out: Path) -> None:
    found: dict[str, list[Statement]] = {kind: [] for kind in PATTERNS}
    scanned = 0
    for text, tokens in _documents(corpus, max_tokens):
        scanned += tokens
        for statement in statements(text):
            found[statement.kind].append(statement)
    tok = corpus.tokenizer
    rows = [_eval_row(tok.tokenizer, s) for kind in PATTERNS for s in _sample(found[kind])]
    (out / EVAL_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"corpus": str(corpus.path), "tokens": scanned, "pad_token_id": tok.pad_token_id,
               **{kind: {"count": len(found[kind]), "per_token": len(found[kind]) / scanned,
                         "eval": sum(r["kind"] == kind for r in rows),
                         "examples": sorted({s.text for s in found[kind]})[:5]}
                  for kind in PATTERNS}}
    (out / "reference.json").write_text(json.dumps(summary, indent=1))


def _documents(corpus: Corpus, max_tokens: int | None) -> Iterator[tuple[str, int]]:
    """(text, token count) of each document, EOS included, up to `max_tokens` tokens."""
    tok = corpus.tokenizer
    left = corpus.tokens if max_tokens is None else min(max_tokens, corpus.tokens)
    for array in corpus.arrays():
        array = array[:left]
        left -= len(array)
        ends = np.flatnonzero(array == tok.eos_token_id) + 1
        bounds = np.concatenate([[0], ends, [len(array)] if len(array) not in ends else []])
        spans = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        for i in range(0, len(spans), DECODE_BATCH):
            chunk = spans[i: i + DECODE_BATCH]
            texts = tok.tokenizer.decode_batch([array[a:b].tolist() for a, b in chunk])
            yield from zip(texts, (b - a for a, b in chunk))
        if left == 0:
            return


def _sample(found: list[Statement]) -> list[Statement]:
    """Up to EVAL_SIZE distinct statements, a fixed draw, in corpus order."""
    distinct = list({s.text: s for s in found}.values())
    if len(distinct) <= EVAL_SIZE:
        return distinct
    keep = np.random.default_rng(0).choice(len(distinct), EVAL_SIZE, replace=False)
    return [distinct[i] for i in sorted(keep)]


def _eval_row(base, statement: Statement) -> dict:
    """Tokens of " " + statement (as it stands mid-sentence) and the mask of the positions
    whose next token starts at or after the answer."""
    encoding = base.encode(" " + statement.text, add_special_tokens=False)
    starts = [start for start, _ in encoding.offsets]
    answer = statement.answer_start + 1
    mask = [starts[i + 1] >= answer for i in range(len(starts) - 1)] + [False]
    return {"kind": statement.kind, "text": statement.text, "input_ids": encoding.ids,
            "target_mask": mask}
