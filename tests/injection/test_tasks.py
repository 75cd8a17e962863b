"""cmp and add: right labels on every instance, a disjoint 50/50 split, rebuilt identically."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import load_from_disk

from injection import tokenizer as tokenizers
from injection.errors import InjectionError
from injection.tasks import CMP_LABELS, TASKS, build_task, load_task, train_mask


@pytest.fixture(scope="module", params=TASKS)
def task_set(request, cache):
    return load_task(request.param, seed=3, cache=cache)


def values(ids):
    return np.divmod(ids, 100)


def test_every_label_is_right(task_set):
    v1, v2 = values(np.arange(10_000))
    S = task_set.symbols
    assert np.array_equal(task_set.tokens[:, 0], S[v1])
    assert np.array_equal(task_set.tokens[:, 1], S[v2])
    if task_set.task == "cmp":
        base = tokenizers.load().tokenizer
        yes, no = (base.token_to_id("Ġ" + word.strip()) for word in CMP_LABELS)
        expected = np.where(v1 < v2, yes, no)
    else:
        expected = S[(v1 + v2) % 100]
    assert np.array_equal(task_set.tokens[:, 2], expected)
    assert (task_set.tokens[:, 3] == tokenizers.load().eos_token_id).all()


def test_S_is_100_distinct_ordinary_tokens_apart_from_the_labels(task_set):
    base = tokenizers.load().tokenizer
    S = task_set.symbols.tolist()
    assert len(set(S)) == 100
    special = set(base.get_added_tokens_decoder())
    assert not special & set(S)
    assert all(base.decode([t]).startswith(" ") and base.decode([t])[1:].isalpha() for t in S)
    assert not set(build_task("cmp", 3).label_tokens) & set(S)


def test_split_is_disjoint_half_and_half_and_covers_every_instance(task_set):
    train, test = set(task_set.train_ids), set(task_set.test_ids)
    assert len(train) == len(test) == 5000
    assert not train & test and len(train | test) == 10_000


def test_split_depends_on_seed_and_task_but_not_the_tokenizer():
    assert np.array_equal(build_task("add", 1, "allenai_dolma2").is_train, train_mask("add", 1))
    assert not np.array_equal(train_mask("add", 1), train_mask("add", 2))
    assert not np.array_equal(train_mask("add", 1), train_mask("cmp", 1))


def test_rebuilt_identically_from_seed_and_tokenizer(task_set):
    again = build_task(task_set.task, 3)
    assert again.fingerprint() == task_set.fingerprint()
    assert np.array_equal(again.tokens, task_set.tokens)
    other_seed = build_task(task_set.task, 4)
    assert not np.array_equal(other_seed.symbols, task_set.symbols)
    other_tokenizer = build_task(task_set.task, 3, "allenai_dolma2")
    assert not np.array_equal(other_tokenizer.tokens, task_set.tokens)


def test_cached_as_a_dataset_with_manifest_and_reused(task_set, cache):
    folder = next((cache / "tasks").glob(f"{task_set.task}-seed3-*"))
    manifest = json.loads((folder / "task.json").read_text())
    assert manifest["fingerprint"] == task_set.fingerprint() and manifest["train"] == 5000
    rows = load_from_disk(str(folder / "instances"))
    assert rows[123] == {"id": 123, "value1": 1, "value2": 23,
                         "tok1": int(task_set.tokens[123, 0]), "tok2": int(task_set.tokens[123, 1]),
                         "label": int(task_set.tokens[123, 2]),
                         "split": "train" if task_set.is_train[123] else "test"}
    stamp = (folder / "task.json").stat().st_mtime_ns
    assert load_task(task_set.task, 3, cache=cache).fingerprint() == task_set.fingerprint()
    assert (folder / "task.json").stat().st_mtime_ns == stamp


def test_a_tampered_cache_is_refused(tmp_path):
    load_task("add", 0, cache=tmp_path)
    manifest = next((tmp_path / "tasks").glob("add-seed0-*")) / "task.json"
    data = json.loads(manifest.read_text())
    data["symbols"][0] += 1
    manifest.write_text(json.dumps(data))
    with pytest.raises(InjectionError, match="does not match its manifest"):
        load_task("add", 0, cache=tmp_path)


@pytest.mark.parametrize("task, seed, words", [("mul", 0, "cmp | add"), ("cmp", -1, ">= 0")])
def test_bad_task_or_seed(task, seed, words):
    with pytest.raises(InjectionError, match=words):
        train_mask(task, seed)
