"""The spec's `olmo` section: every rule refused with a message naming the field; the
presets validate through the CLI (the paper's once pointed at a corpus)."""

from __future__ import annotations

import json

import pytest

from sweeps.errors import SpecError
from sweeps.spec import validate
from tests.conftest import REPO
from tests.sweeps.test_cli import sweeps, written


def olmo_spec(**olmo) -> dict:
    return {"name": "o", "trainable": "olmo",
            "grid": {"width": ["4M"], "frequency": [1e-3], "task": ["cmp"]},
            "olmo": olmo, "resources": {"workers": 2}}


BROKEN = [
    # (change to the spec, field named in the message, words of the rule)
    ({"grid": {"width": ["5M"]}}, "grid.width[0]", "model ladder names: 4M, 20M"),
    ({"grid": {"width": [8]}}, "grid.width[0]", "model ladder names"),
    ({"grid": {"task": ["simple"]}}, "grid.task[0]", "cmp | add"),
    ({"grid": {"frequency": [0.01]}}, "grid.frequency[0]", "above 1/seq-len = 1/128"),
    ({"olmo": {"schedule": {"block": 64}}, "grid": {"frequency": [7e-3]}},
     "grid.frequency[0]", "blocks of 64"),
    ({"olmo": {"batch_size": 7}}, "olmo.batch_size", "multiple of resources.workers = 2"),
    ({"olmo": {"micro_batch_size": 3}}, "olmo.micro_batch_size", "batch_size / workers = 8"),
    ({"olmo": {"corpus": "/no/such/corpus"}}, "olmo.corpus", "sweeps corpus build"),
    ({"olmo": {"seq_len": 2}}, "olmo.seq_len", "greater than or equal to 4"),
    ({"olmo": {"stepz": 2}}, "olmo.stepz", "unknown field"),
]


@pytest.mark.parametrize("change, field, words", BROKEN)
def test_each_broken_rule_names_its_field(change, field, words):
    spec = olmo_spec()
    for section, values in change.items():
        spec[section] = {**spec[section], **values}
    with pytest.raises(SpecError) as error:
        validate(spec)
    assert f"{field}:" in str(error.value) and words in str(error.value), str(error.value)


def test_defaults_are_valid_and_one_trial_per_point():
    from sweeps import grid

    spec = validate({**olmo_spec(), "grid": {"width": ["4M", "20M"], "frequency": [1e-3, 1e-4],
                                             "task": ["cmp", "add"], "seed": [0, 1]}})
    assert spec.pack == [] and grid.trial_count(spec) == len(grid.points(spec)) == 16


def test_presets_validate_and_the_paper_one_needs_a_corpus(tmp_path):
    small = sweeps("validate", REPO / "sweeps/presets/olmo-small.yaml", cwd=tmp_path)
    assert small.returncode == 0 and "valid olmo sweep" in small.stdout, small.stderr
    paper = REPO / "sweeps/presets/olmo-paper.yaml"
    refused = sweeps("validate", paper, cwd=tmp_path)
    assert refused.returncode == 2 and "olmo.corpus" in refused.stderr
    assert "Traceback" not in refused.stderr and written(tmp_path) == []

    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "Three is less than 5."}))
    built = sweeps("corpus", "build", "docs.jsonl", "--out", "corpus", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    valid = sweeps("validate", paper, "--set", f"olmo.corpus={tmp_path / 'corpus'}",
                   cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert "100 points" in valid.stdout and "4,295,102,464" in valid.stdout
