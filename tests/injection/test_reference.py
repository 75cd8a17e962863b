"""R_cmp and R_add: true natural statements counted per token, and an evaluation set."""

from __future__ import annotations

import json

import pytest

from injection import corpus
from injection.errors import InjectionError
from injection.reference import reference, statements


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
    ref = reference(small)
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


def test_a_prefix_scan_and_bad_limits(small):
    prefix = reference(small, max_tokens=8).summary
    assert prefix["tokens"] == 8 and prefix["R_add"]["count"] == 1
    none = reference(small, max_tokens=2)
    assert none.summary["R_add"]["count"] == 0 and none.eval_set("add")[0].shape == (0, 1)
    with pytest.raises(InjectionError, match="--max-tokens 0"):
        reference(small, max_tokens=0)


def test_the_embedded_corpus_states_sums(embedded_corpus):
    summary = reference(embedded_corpus).summary
    assert summary["tokens"] == embedded_corpus.tokens
    assert summary["R_add"]["count"] > 500 and summary["R_add"]["eval"] == 256
    assert 0 < summary["R_cmp"]["count"] < summary["R_add"]["count"]
