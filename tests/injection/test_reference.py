"""R_cmp and R_add: true natural statements counted per token, and an evaluation set."""

from __future__ import annotations

import json

import pytest

from injection import corpus
from injection import location
from injection.errors import InjectionError
from injection.reference import FOLDER, load, make, statements


@pytest.mark.parametrize("text, found", [
    ("We know 3 < 5 and 12 + 7 = 19.",
     [("R_cmp", "3 < 5", "< 5"), ("R_add", "12 + 7 = 19", "19")]),
    ("Nine: 5 is greater than 3, 2 plus 2 equals 4",
     [("R_cmp", "5 is greater than 3", "is greater than 3"), ("R_add", "2 plus 2 equals 4", "4")]),
    ("0.17 > 0.023 but 2 + 2 = 5 and 4 < 1", [("R_cmp", "0.17 > 0.023", "> 0.023")]),
    ("versions 1.2 + 3 = 4.2, prices 3 + 4 = 75, ids A5 < 6x", []),
])
def test_true_statements_are_found_with_their_answer(text, found):
    assert [(s.kind, s.text, s.text[s.answer_start:]) for s in statements(text)] == found


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    (folder / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in [
        "Calculate 5 + 91 = 96 please.", "We see 3 < 5 here.", "Nothing to see.",
        "Calculate 5 + 91 = 96 please.", "Wrong: 1 + 1 = 3."]))
    return corpus.build(str(folder / "docs.jsonl"), folder / "corpus")


def test_counts_per_token_and_a_distinct_eval_set(small):
    ref = make(small)
    summary = ref.summary
    assert summary["tokens"] == small.tokens
    assert summary["R_add"]["count"] == 2 and summary["R_cmp"]["count"] == 1
    assert summary["R_add"]["per_token"] == pytest.approx(2 / small.tokens)
    assert summary["R_add"]["eval"] == 1  # the repeated statement is kept once
    base = small.tokenizer.tokenizer
    tokens, mask = ref.eval_set("add")
    assert base.decode(tokens[0].tolist()) == " 5 + 91 = 96"
    answers = [base.decode([tokens[0, p + 1].item()]) for p in mask[0].nonzero().flatten()]
    assert answers == [" 96"]
    tokens, mask = ref.eval_set("R_cmp")
    assert base.decode(tokens[0].tolist()) == " 3 < 5" and mask.sum() == 2  # " <", " 5"


def test_a_prefix_scan_and_bad_limits(small, tmp_path):
    prefix = make(small, max_tokens=8).summary
    assert prefix["tokens"] == prefix["max_tokens"] == 8 and prefix["R_add"]["count"] == 1
    none = make(small, max_tokens=2)
    assert none.summary["R_add"]["count"] == 0 and none.eval_set("add")[0].shape == (0, 1)
    with pytest.raises(InjectionError, match="--max-tokens 0"):
        make(small, max_tokens=0)
    with pytest.raises(InjectionError, match="--shard-tokens 0"):
        make(small, shard_tokens=0)


def test_training_reads_the_reference_and_never_makes_it(tmp_path):
    """`load` is what a trial calls: the pre-step's result, or at once the command to run."""
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "So 2 + 3 = 5."}))
    bare = corpus.build(str(tmp_path / "docs.jsonl"), tmp_path / "corpus")
    with pytest.raises(InjectionError, match=f"sweeps corpus reference {bare.location}"):
        load(bare)
    assert sorted(p.name for p in bare.path.iterdir()) == ["corpus.json", "part-00000.npy"]
    made = make(bare)
    assert load(bare).summary == made.summary and made.summary["R_add"]["count"] == 1


def scan(corpus_, tokens: int):
    """In this process, in shards of 100,000 tokens."""
    return make(corpus_, max_tokens=tokens, shard_tokens=100_000, distribute=False)


def scan_files(corpus_):
    return {p.name: p.stat().st_mtime_ns for p in (corpus_.path / FOLDER / "shards").iterdir()}


def test_an_interrupted_scan_resumes_and_a_larger_cap_extends_it(embedded_corpus, tmp_path):
    """Shards are saved as they finish: a scan stopped half-way (its summary and some shards
    missing) redoes only the missing ones and ends as an uninterrupted scan does."""
    import shutil

    copy = corpus.Corpus(str(shutil.copytree(embedded_corpus.path, tmp_path / "c",
                                             ignore=shutil.ignore_patterns(FOLDER))))
    straight = scan(copy, 400_000).summary
    assert straight["shards"] == 4 and straight["tokens"] == 400_000
    before = scan_files(copy)
    (copy.path / FOLDER / "reference.json").unlink()
    (copy.path / FOLDER / "shards" / sorted(before)[2]).unlink()
    assert scan(copy, 400_000).summary == straight
    after = scan_files(copy)
    assert {n: t for n, t in after.items() if t == before.get(n)} == \
        {n: t for n, t in before.items() if n != sorted(before)[2]}  # only one redone
    wider = scan(copy, 500_000).summary
    assert wider["tokens"] == 500_000 and wider["R_add"]["count"] >= straight["R_add"]["count"]
    assert {n: t for n, t in scan_files(copy).items() if n in after} == after


@pytest.mark.slow
def test_ray_data_shards_give_the_same_reference(embedded_corpus, tmp_path, ray_cluster):
    import shutil

    here, there = (corpus.Corpus(str(shutil.copytree(
        embedded_corpus.path, tmp_path / name, ignore=shutil.ignore_patterns(FOLDER))))
        for name in ("here", "there"))
    local = make(here, max_tokens=300_000, shard_tokens=100_000, distribute=False)
    spread = make(there, max_tokens=300_000, shard_tokens=100_000, distribute=True)
    assert spread.summary == local.summary
    assert location.read_text(location.join(spread.location, "eval.jsonl")) == \
        location.read_text(location.join(local.location, "eval.jsonl"))


def test_the_embedded_corpus_comes_with_its_reference(embedded_corpus):
    summary = load(embedded_corpus).summary
    assert summary["tokens"] == embedded_corpus.tokens
    assert summary["R_add"]["count"] > 500 and summary["R_add"]["eval"] == 256
    assert 0 < summary["R_cmp"]["count"] < summary["R_add"]["count"]
