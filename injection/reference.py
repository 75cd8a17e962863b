"""Reference tasks R_cmp and R_add: how often a corpus states comparisons and sums by itself.

A scan decodes the corpus document by document and counts the *true* natural statements:
comparisons of two numbers ("3 < 5", "5 is greater than 3") and additions ("5 + 91 = 96",
"2 plus 2 equals 4"). Their count per token is the natural frequency an injected frequency
can be placed against. The scan also keeps a small evaluation set of distinct statements,
each with a mask on the positions whose next token is its answer (a comparison's relation
and right-hand number, an addition's sum): the OLMo trainable's `ref/loss` is the model's loss on
those tokens.

The scan is a pre-step of the corpus (`corpus build`, `corpus adopt`, `corpus reference`), never
part of training: a trial only `load`s its result and fails at once, naming the command, where
there is none. It reads the first `max_tokens` tokens (default a cap of minutes on one core) in
shards of `shard_tokens`, each saved as it finishes, so an interrupted scan resumes and a larger
cap extends a smaller one; many shards run as Ray Data tasks across the Ray it joins (the
cluster's, in a Ray job). Everything lands in the corpus folder, local or in object storage:
`reference-v2/` (`shards/`, then `eval.jsonl` and `reference.json` last).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterator

import numpy as np

from injection import location as locations
from injection.folder import Corpus
from injection.errors import InjectionError
from injection.scan_size import DEFAULT_MAX_TOKENS, SHARD_TOKENS

KINDS = {"cmp": "R_cmp", "add": "R_add"}  # injected task -> its natural reference
VERSION = 2  # bump when the patterns or the layout change: scans are kept in the corpus folder
FOLDER = f"reference-v{VERSION}"
SUMMARY = "reference.json"  # written last: a scan is complete when it exists
EVAL_SIZE = 256  # statements per kind kept for evaluation, at most
EVAL_FILE = "eval.jsonl"  # one statement a line: kind, text, input_ids, target_mask
DECODE_BATCH = 1000  # documents decoded at once
LOCAL_SHARDS = 2  # more shards left than this: Ray Data tasks
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
    location: str  # the corpus's reference folder

    @cached_property
    def summary(self) -> dict:
        return json.loads(locations.read_text(locations.join(self.location, SUMMARY)))

    def eval_set(self, kind: str):
        """The evaluation statements of one kind (R_cmp, R_add, or a task name cmp, add) as
        (tokens (N, T) LongTensor padded with the pad id, target_mask (N, T) bool marking the
        positions whose next token is an answer token)."""
        import torch

        kind = KINDS.get(kind, kind)
        rows = [(r["input_ids"], r["target_mask"]) for r in map(json.loads, locations.read_text(
            locations.join(self.location, EVAL_FILE)).splitlines()) if r["kind"] == kind]
        width = max((len(ids) for ids, _ in rows), default=1)
        tokens = torch.full((len(rows), width), self.summary["pad_token_id"], dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, (ids, target) in enumerate(rows):
            tokens[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(target)] = torch.tensor(target)
        return tokens, mask


def load(corpus: Corpus) -> Reference:
    """The corpus's reference tasks as its pre-step made them; never a scan."""
    found = Reference(locations.join(corpus.location, FOLDER))
    if not locations.is_file(locations.join(found.location, SUMMARY)):
        raise InjectionError(
            f"corpus {corpus.location} has no reference tasks (R_cmp, R_add: ref/loss is "
            "measured on them); make them once, before training, with `sweeps corpus "
            f"reference {corpus.location}` (a trial never scans a corpus)")
    return found


def make(corpus: Corpus, max_tokens: int | None = DEFAULT_MAX_TOKENS,
         shard_tokens: int = SHARD_TOKENS, distribute: bool | None = None,
         say: Callable[[str], None] = lambda line: None) -> Reference:
    """Scan the first `max_tokens` tokens (None: all), resuming from the shards already
    saved; `distribute` (default: when more than LOCAL_SHARDS are left) runs them as Ray Data
    tasks."""
    for name, value in (("--max-tokens", max_tokens), ("--shard-tokens", shard_tokens)):
        if value is not None and value < 1:
            raise InjectionError(f"{name} {value}: must be >= 1")
    cap = corpus.tokens if max_tokens is None else min(max_tokens, corpus.tokens)
    made = Reference(locations.join(corpus.location, FOLDER))
    if locations.is_file(locations.join(made.location, SUMMARY)) and \
            made.summary.get("max_tokens") == cap:
        return made
    shards = [(start, min(start + shard_tokens, cap)) for start in range(0, cap, shard_tokens)]
    folder = locations.join(made.location, "shards")
    saved = set(locations.files(folder))
    pending = [shard for shard in shards if _shard_name(*shard) not in saved]
    say(f"reference scan of {corpus.location}: {cap:,} tokens in {len(shards)} shards, "
        f"{len(shards) - len(pending)} already saved")

    def save(result: dict) -> None:
        locations.write_text(locations.join(folder, _shard_name(result["start"],
                                                                 result["stop"])),
                             json.dumps(result))
        saved.add(_shard_name(result["start"], result["stop"]))
        say(f"  shard {result['start']:,}..{result['stop']:,} done "
            f"({sum(_shard_name(*s) in saved for s in shards)}/{len(shards)})")

    if distribute if distribute is not None else len(pending) > LOCAL_SHARDS:
        _scan_with_ray_data(corpus.location, pending, save)
    else:
        for start, stop in pending:
            save(scan_shard(corpus.location, start, stop))
    results = [json.loads(locations.read_text(locations.join(folder, _shard_name(*shard))))
               for shard in shards]
    _merge(corpus, cap, results, made.location)
    return Reference(made.location)


def _shard_name(start: int, stop: int) -> str:
    return f"{start:015d}-{stop:015d}.json"


def scan_shard(location: str, start: int, stop: int) -> dict:
    """The true statements in tokens start..stop-1 of the corpus at `location`."""
    corpus = Corpus(location)
    found: dict[str, list] = {kind: [] for kind in PATTERNS}
    scanned = 0
    for text, tokens in _documents(corpus, start, stop):
        scanned += tokens
        for statement in statements(text):
            found[statement.kind].append([statement.text, statement.answer_start])
    return {"start": start, "stop": stop, "tokens": scanned, "found": found}


def _scan_with_ray_data(location: str, pending: list[tuple[int, int]],
                        save: Callable[[dict], None]) -> None:
    """One Ray Data task per shard (on the Ray this process joins, else a local one); each
    result is saved as it arrives, so a stopped scan keeps what finished."""
    import logging

    import ray

    if not ray.is_initialized():
        ray.init(logging_level="WARNING", include_dashboard=False)
    # `make` reports each shard itself; Ray Data's progress bars and INFO lines would bury it
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    shards = ray.data.from_items([{"start": a, "stop": b} for a, b in pending],
                                 override_num_blocks=len(pending))
    scanned = shards.map(lambda row: {"result": json.dumps(
        scan_shard(location, row["start"], row["stop"]))}, num_cpus=1)
    for row in scanned.iter_rows():
        save(json.loads(row["result"]))


def _merge(corpus: Corpus, cap: int, results: list[dict], out: str) -> None:
    found = {kind: [Statement(kind, text, at) for r in results for text, at in r["found"][kind]]
             for kind in PATTERNS}
    scanned = sum(r["tokens"] for r in results)
    tok = corpus.tokenizer
    rows = [_eval_row(tok.tokenizer, s) for kind in PATTERNS for s in _sample(found[kind])]
    summary = {"max_tokens": cap, "tokens": scanned,
               "shards": len(results), "pad_token_id": tok.pad_token_id,
               **{kind: {"count": len(found[kind]),
                         "per_token": len(found[kind]) / max(scanned, 1),
                         "eval": sum(r["kind"] == kind for r in rows),
                         "examples": sorted({s.text for s in found[kind]})[:5]}
                  for kind in PATTERNS}}
    locations.write_text(locations.join(out, EVAL_FILE),
                         "".join(json.dumps(r) + "\n" for r in rows))
    locations.write_text(locations.join(out, SUMMARY), json.dumps(summary, indent=1))


def _documents(corpus: Corpus, start: int, stop: int) -> Iterator[tuple[str, int]]:
    """(text, token count) of each document in tokens start..stop-1, EOS included; one that
    crosses a shard's edge is read as two pieces (a statement lost there at most, per 8M
    tokens), so a shard's result never depends on the others or on the cap."""
    tok = corpus.tokenizer
    offset = 0
    for i, n in enumerate(corpus.file_tokens):
        a, b = max(start - offset, 0), min(stop - offset, n)
        if a < b:
            array = np.memmap(corpus.local_file(i), dtype=corpus.dtype, mode="r")
            yield from _decoded(tok, array[a:b])
        offset += n


def _decoded(tok, array: np.ndarray) -> Iterator[tuple[str, int]]:
    ends = np.flatnonzero(array == tok.eos_token_id) + 1
    bounds = np.concatenate([[0], ends, [len(array)] if len(array) not in ends else []])
    spans = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    for i in range(0, len(spans), DECODE_BATCH):
        chunk = spans[i: i + DECODE_BATCH]
        texts = tok.tokenizer.decode_batch([array[a:b].tolist() for a, b in chunk])
        yield from zip(texts, (b - a for a, b in chunk))


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
