"""The spec's `olmo` section: every rule refused with a message naming the field; the
presets validate through the CLI (the paper's once pointed at a corpus)."""

from __future__ import annotations

import json
import os

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
    ({"resources": {"workers": 5}}, "olmo.batch_size",
     "multiple of resources.workers = 5, so every worker trains an equal share of each global "
     "batch (OLMo's ladder batch at 4M)"),
    ({"olmo": {"steps": 10, "tokens_per_param": 2}}, "olmo.tokens_per_param", "set one of"),
    ({"olmo": {"interference_neurons": 300}}, "olmo.interference_neurons",
     "the 4M model's first MLP has only 256 neurons"),
    ({"olmo": {"interference_instances": 10_001}}, "olmo.interference_instances",
     "less than or equal to 10000"),
    ({"olmo": {"measure_every": -1}}, "olmo.measure_every", "greater than or equal to 0"),
    ({"olmo": {"adamw": {"beta2": 1.0}}}, "olmo.adamw.beta2", "less than 1"),
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
    from sweeps import packing
    from sweeps.plan import plan

    spec = validate({**olmo_spec(), "grid": {"width": ["4M", "20M"], "frequency": [1e-3, 1e-4],
                                             "task": ["cmp", "add"], "seed": [0, 1]}})
    trials = packing.trials(spec, plan(spec))
    assert spec.pack == [] and len(trials) == 16
    assert [t["width"] for t in trials] == ["20M"] * 8 + ["4M"] * 8  # costliest (widest) first


def test_the_paper_preset_on_the_embedded_corpus_warns_and_sizes_the_cluster(tmp_path):
    """Its corpus left out (no $SWEEPS_CORPUS here): the embedded ~6M tokens, which every
    point would repeat 13 times or more, each point warned about; and the grid's size on a
    cluster."""
    small = sweeps("validate", REPO / "sweeps/presets/olmo-small.yaml", cwd=tmp_path)
    assert small.returncode == 0 and "valid olmo sweep" in small.stdout, small.stderr
    assert "warning" not in small.stdout  # 4M and 20M at a few hundred steps
    paper = sweeps("validate", REPO / "sweeps/presets/olmo-paper.yaml", cwd=tmp_path,
                   env={"SWEEPS_CORPUS": ""})
    assert paper.returncode == 0, paper.stderr
    out = " ".join(paper.stdout.split())
    assert "100 points" in out and "3,968,167,680" in out  # 4B
    assert "2.4e-08 1/1,130" in out  # the lowest frequency per 4M batch
    warned = [line for line in paper.stdout.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 100
    assert "width=4M,frequency=0.0078,task=cmp,seed=0: 80,031,744 training tokens repeat the " \
           "corpus" in " ".join(" ".join(warned).split())
    # 6 x params x tokens at 125 TFLOP/s: 4B alone is 6 x 4.16e9 x 8e10 / 1.25e14 / 3600 h
    hours = float(out.split(" GPU-hours")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert 90_000 < hours < 100_000
    assert "checkpoints 2.81 TB at the peak: 100 points x 2 kept, the largest 49.9 GB" in out
    assert written(tmp_path) == []


def test_the_paper_preset_on_a_corpus_of_ones_own(tmp_path):
    paper = REPO / "sweeps/presets/olmo-paper.yaml"
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "Three is less than 5."}))
    built = sweeps("corpus", "build", "docs.jsonl", "--out", "corpus", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    valid = sweeps("validate", paper, "--set", f"olmo.corpus={tmp_path / 'corpus'}",
                   cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert f"corpus    {tmp_path / 'corpus'}" in valid.stdout
    os.remove(tmp_path / "corpus" / "reference-v2" / "reference.json")
    refused = sweeps("validate", paper, "--set", f"olmo.corpus={tmp_path / 'corpus'}",
                     cwd=tmp_path)
    assert refused.returncode == 2 and "olmo.corpus" in refused.stderr
    assert f"sweeps corpus reference {tmp_path / 'corpus'}" in refused.stderr


def test_the_plan_records_each_models_shape_count_and_instances_per_batch():
    from sweeps.plan import plan

    spec = validate({**olmo_spec(batch_size=8, seq_len=64),
                     "grid": {"width": ["4M", "20M"], "frequency": [1e-3], "task": ["cmp"]}})
    params = {p.point.width: p.params for p in plan(spec)}
    assert {k: params["4M"][k] for k in ("model.d_model", "model.n_layers", "model.n_heads",
                                         "model.non_embedding_params", "model.params")} == {
        "model.d_model": "64", "model.n_layers": "8", "model.n_heads": "8",
        "model.non_embedding_params": "3744832", "model.params": "6964288"}
    assert params["20M"]["model.non_embedding_params"] == "19101888"
    assert params["4M"]["injection.instances_per_batch"] == "0.512"  # 1e-3 x 8 x 64
    # OLMo's recipe, per size, where the spec leaves it out.
    assert (params["4M"]["lr"], params["20M"]["lr"]) == (str(0.0047 * (4 / 108) ** (-1 / 3)),
                                                         str(0.0047 * (20 / 108) ** (-1 / 3)))
    assert params["4M"]["steps"] == str(-(-20 * 4_000_000 // (8 * 64)))


def test_the_mechanism_preset_injects_100_every_100_batches(tmp_path):
    from sweeps.plan import plan
    from sweeps.spec import load_spec

    spec = load_spec(REPO / "sweeps/presets/olmo-mechanism.yaml")
    for planned in plan(spec):
        section = planned.section
        assert planned.params["injection.instances_per_batch"] == "1.0"
        assert section.block == 100 and section.measure_every > 0
    valid = sweeps("validate", REPO / "sweeps/presets/olmo-mechanism.yaml", cwd=tmp_path)
    assert valid.returncode == 0 and "every 10 steps and every step that injects" in valid.stdout
