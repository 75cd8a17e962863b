"""`sweeps injection plan` and `sweeps corpus`: output, exit codes, nothing written on errors."""

from __future__ import annotations

import json

import pytest

from injection.schedule import Schedule
from injection.tasks import train_mask
from tests.sweeps.test_cli import sweeps, written

PLAN = ["injection", "plan", "--frequency", "0.003", "--seq-len", "128", "--batch-size", "8"]


def lines(result) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_plan_prints_one_contract_line_per_batch_the_schedule_training_uses(tmp_path):
    out = lines(sweeps(*PLAN, "--batches", "6", "--task", "add", "--seed", "4", cwd=tmp_path))
    assert [list(line) for line in out] == [["batch", "count", "rows", "instances"]] * 6
    schedule = Schedule(0.003, 8, 128, train_mask("add", 4).nonzero()[0], seed=4)
    assert out == [p.as_json() for p in schedule.plans(0, 6)]
    assert sum(line["count"] for line in out) == round(0.003 * 6 * 8 * 128)
    assert written(tmp_path) == []


def test_plan_from_a_start_batch_is_the_tail_and_block_plans_come_in_blocks(tmp_path):
    full = lines(sweeps(*PLAN, "--batches", "9", "--block", "2", cwd=tmp_path))
    tail = lines(sweeps(*PLAN, "--batches", "4", "--start-batch", "5", "--block", "2",
                        cwd=tmp_path))
    assert tail == full[5:] and all(line["count"] % 2 == 0 for line in full)


@pytest.mark.parametrize("args, words", [
    (["--frequency", "0.01", "--seq-len", "128"], "above 1/seq-len = 1/128"),
    (["--frequency", "1e-3", "--seq-len", "128", "--block", "9"], "only 8 rows"),
    (["--frequency", "1e-3", "--seq-len", "128", "--seed", "-2"], "seed -2"),
    (["--frequency", "1e-3", "--seq-len", "128", "--start-batch", "-1"], "must be >= 0"),
    (["--frequency", "x", "--seq-len", "128"], "invalid float value"),
])
def test_bad_plans_exit_2_with_one_message(tmp_path, args, words):
    result = sweeps("injection", "plan", "--batch-size", "8", "--batches", "3", *args,
                    cwd=tmp_path)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_corpus_build_and_reference_through_the_cli(tmp_path):
    (tmp_path / "docs.jsonl").write_text(
        "\n".join(json.dumps({"body": t}) for t in ["So 2 + 3 = 5.", "And 4 > 1."]))
    result = sweeps("corpus", "build", "docs.jsonl", "--out", "corpus", "--text-field", "body",
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "corpus" / "corpus.json").read_text())
    assert manifest["documents"] == 2 and manifest["dtype"] == "uint16"
    assert f'{manifest["tokens"]:,} tokens (uint16) in 1 file(s), 2 documents' in result.stdout
    result = sweeps("corpus", "reference", "corpus", cwd=tmp_path)
    summary = json.loads(result.stdout)
    assert summary["R_add"]["count"] == 1 and summary["R_cmp"]["count"] == 1


@pytest.mark.parametrize("args, words", [
    (["corpus", "build", "docs.jsonl", "--out", "c", "--text-field", "body"], "no such column"),
    (["corpus", "build", "nope.jsonl", "--out", "c"], "no such file"),
    (["corpus", "build", "docs.jsonl", "--out", "c", "--tokenizer", "bert"], "not a tokenizer"),
    (["corpus", "reference", "docs.jsonl"], "not a corpus folder"),
])
def test_bad_corpus_input_exits_2_and_writes_nothing(tmp_path, args, words):
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "a b"}))
    result = sweeps(*args, cwd=tmp_path)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert written(tmp_path) == ["docs.jsonl"]
