"""Corpora in OLMo's format: ai2-olmo's own MemMapDataset reads back every token."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from injection import corpus, tokenizer as tokenizers
from injection.errors import InjectionError

TEXTS = ["The cat sat on the mat.", "", "Seven is less than nine, and 3 + 4 = 7.",
         "Ünïcödé text — with dashes, tabs\tand\nnewlines."] * 5


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)))
    return path


def expected_tokens(name: str = tokenizers.DEFAULT) -> np.ndarray:
    tok = tokenizers.load(name)
    ids = [[*tok.tokenizer.encode(t, add_special_tokens=False).ids, tok.eos_token_id]
           for t in TEXTS if t]
    return np.concatenate(ids)


@pytest.mark.parametrize("name, dtype", [(tokenizers.DEFAULT, np.uint16),
                                         ("allenai_dolma2", np.uint32)])
def test_olmo_memmap_dataset_reads_back_token_for_token(jsonl, tmp_path, name, dtype):
    built = corpus.build(str(jsonl), tmp_path / "corpus", tokenizer=name)
    expected = expected_tokens(name)
    assert built.dtype == dtype and built.tokens == len(expected)
    assert built.manifest["documents"] == 15 and built.manifest["tokenizer"]["name"] == name
    olmo = built.dataset(seq_len=8)
    assert len(olmo) == len(expected) // 8  # OLMo drops the last partial chunk
    read = np.concatenate([olmo[i]["input_ids"].numpy() for i in range(len(olmo))])
    assert np.array_equal(read, expected[: len(read)])
    assert np.array_equal(np.concatenate(built.arrays()), expected)


def test_saved_dataset_dict_needs_a_split_when_it_has_no_train(tmp_path):
    DatasetDict({"a": Dataset.from_dict({"body": ["one two"]}),
                 "b": Dataset.from_dict({"body": ["three four", "five six"]})}
                ).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(InjectionError, match="has splits a, b; choose one with --split"):
        corpus.build(str(tmp_path / "saved"), tmp_path / "out", text_field="body")
    built = corpus.build(str(tmp_path / "saved"), tmp_path / "out", text_field="body", split="b")
    assert built.manifest["documents"] == 2 and built.manifest["source"]["split"] == "b"


def test_all_text_of_multiple_choice_rows_gets_its_answer():
    row = {"id": "q1", "question": "Calculate 5 + 91 =", "answerKey": "B",
           "choices": {"text": ["95", "96"], "label": ["A", "B"]}}
    assert corpus.document(row) == "Calculate 5 + 91 = 96"
    assert corpus.document({"id": "x_1", "ctx": "A man sits.", "endings": ["He reads.", "Ok"]}) \
        == "A man sits.\nHe reads."


@pytest.mark.parametrize("source, kwargs, words", [
    ("missing/docs.jsonl", {}, "no such file or folder"),
    ("{jsonl}", {"text_field": "body"}, "no such column; its text columns are ['text']"),
    ("{jsonl}", {"tokenizer": "gpt2"}, "not a tokenizer shipped with ai2-olmo"),
    ("{jsonl}", {"split": "test"}, "--split test"),
    ("{docx}", {}, "unknown data file type"),
])
def test_bad_input_is_refused_and_nothing_is_written(jsonl, tmp_path, source, kwargs, words):
    (tmp_path / "notes.docx").write_text("x")
    source = source.format(jsonl=jsonl, docx=tmp_path / "notes.docx")
    with pytest.raises(InjectionError, match=words.replace("[", r"\[").replace("]", r"\]")):
        corpus.build(source, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_an_existing_corpus_is_never_overwritten(jsonl, tmp_path):
    corpus.build(str(jsonl), tmp_path / "out")
    with pytest.raises(InjectionError, match="already exists"):
        corpus.build(str(jsonl), tmp_path / "out")
    with pytest.raises(InjectionError, match="not a corpus folder"):
        corpus.open_corpus(tmp_path)


def test_a_corpus_from_another_tokenizer_version_is_refused(jsonl, tmp_path):
    manifest = corpus.build(str(jsonl), tmp_path / "out").path / "corpus.json"
    data = json.loads(manifest.read_text())
    data["tokenizer"]["fingerprint"] = "0" * 64
    manifest.write_text(json.dumps(data))
    with pytest.raises(InjectionError, match="another version of tokenizer"):
        corpus.open_corpus(tmp_path / "out").tokenizer


def test_embedded_corpus_is_built_once_and_read_by_olmo(embedded_corpus, cache):
    manifest = embedded_corpus.manifest
    assert manifest["source"]["kind"] == "embedded" and len(manifest["source"]["datasets"]) > 100
    sizes = sum(Path(f).stat().st_size for f in embedded_corpus.files)
    assert embedded_corpus.tokens == sizes // 2 > 5_000_000  # uint16
    stamp = (embedded_corpus.path / "corpus.json").stat().st_mtime_ns
    again = corpus.embedded(cache=cache)
    assert again.path == embedded_corpus.path
    assert (again.path / "corpus.json").stat().st_mtime_ns == stamp
    first = embedded_corpus.dataset(seq_len=64)[0]["input_ids"]
    text = embedded_corpus.tokenizer.tokenizer.decode(first.tolist())
    assert len(first) == 64 and text.split()[0].isalpha()
