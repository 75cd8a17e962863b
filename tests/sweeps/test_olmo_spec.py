"""The spec's `olmo` section: every rule refused with a message naming the field; the
presets validate through the CLI (the paper's once pointed at a corpus); one token stream for
every size (`budget: shared`), OLMo's per-size budget on request (`budget: ladder`)."""

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
    ({"olmo": {"schedule": {"block": 200}}, "grid": {"frequency": [7e-3]}},
     "grid.frequency[0]", "blocks of 200"),
    ({"olmo": {"batch_size": 7}}, "olmo.batch_size", "multiple of resources.workers = 2"),
    ({"resources": {"workers": 5}}, "olmo.batch_size",
     "multiple of resources.workers = 5, so every worker trains an equal share of each global "
     "batch (OLMo's ladder batch of 4M, the sweep's largest size)"),
    ({"resources": {"workers": 5}, "olmo": {"budget": "ladder"}}, "olmo.batch_size",
     "(OLMo's ladder batch at 4M)"),
    ({"olmo": {"budget": "each"}}, "olmo.budget", "'shared' or 'ladder'"),
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


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus folder built by the CLI, for the paper's preset (whose own is a placeholder)."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "docs.jsonl").write_text(json.dumps({"text": "Three is less than 5."}))
    built = sweeps("corpus", "build", "docs.jsonl", "--out", "corpus", cwd=folder)
    assert built.returncode == 0, built.stderr
    return folder / "corpus"


PAPER = REPO / "sweeps/presets/olmo-paper.yaml"


def test_presets_validate_and_the_paper_one_on_its_corpus(tmp_path, corpus):
    small = sweeps("validate", REPO / "sweeps/presets/olmo-small.yaml", cwd=tmp_path)
    assert small.returncode == 0 and "valid olmo sweep" in small.stdout, small.stderr
    assert "warning" not in small.stdout  # 4M and 20M at a few hundred steps
    valid = sweeps("validate", PAPER, "--set", f"olmo.corpus={corpus}", cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert "100 points" in valid.stdout and "3,968,167,680" in valid.stdout  # 4B
    assert "every size trains the same 32,768-row batches (4,194,304 tokens) for 50,000 " \
           "steps" in valid.stdout
    # The paper's "1 instance every 10 batches" at 2.4e-8: 0.1 a batch, 5,033 in all.
    assert "2.4e-08     1/9.93          5,033" in valid.stdout
    assert written(tmp_path) == []


def test_the_paper_preset_on_the_embedded_corpus_warns_and_sizes_the_cluster(tmp_path):
    """Its corpus left out (no $SWEEPS_CORPUS here): the embedded ~6M tokens, which every
    point would repeat thousands of times, each point warned about; and the grid's size on a
    cluster: GPU-hours from its FLOPs, checkpoint storage, tokens read."""
    paper = sweeps("validate", PAPER, cwd=tmp_path, env={"SWEEPS_CORPUS": ""})
    assert paper.returncode == 0, paper.stderr
    out = " ".join(paper.stdout.split())
    assert "corpus embedded" in out and "100 points" in out
    warned = [" ".join(line.split()) for line in paper.stdout.splitlines()
              if line.startswith("warning: ")]
    assert len(warned) == 100
    assert warned[0].startswith("warning: width=4M,frequency=0.0078,task=cmp,seed=0: "
                                "209,715,200,000 training tokens repeat the corpus (")
    # 6 x OLMo's count + attention (6 x layers x 128 x d) per token at 40% of 312 TFLOP/s, 20
    # points per size, every size 209.7B tokens: bench.paper_scale's 308,000 A100-hours
    shapes = {3_744_832: (8, 64), 19_101_888: (16, 192), 319_980_544: (16, 1024),
              1_176_832_000: (16, 2048), 3_968_167_680: (16, 3840)}
    per_token = sum(6 * n + 6 * layers * 128 * d for n, (layers, d) in shapes.items())
    hours = 20 * per_token * 50_000 * 2**22 / (0.4 * 312e12) / 3600
    assert f"compute {hours:,.1f} GPU-hours" in out and 300_000 < hours < 320_000
    params = {"4M": 6_964_288, "20M": 28_760_256, "300M": 371_491_840,
              "1B": 1_279_854_592, "4B": 4_161_335_040}  # all of them: the checkpoint holds all
    stored = 20 * 2 * 12 * sum(params.values())  # 2 checkpoints kept, 12 bytes a parameter
    assert f"checkpoints {stored / 1e12:.3g} TB at the peak: 100 points x 2 kept, the largest " \
           "49.9 GB" in out
    assert f"data {100 * 50_000 * 2**22:,} tokens read" in out
    assert written(tmp_path) == []


def test_a_corpus_without_its_reference_tasks_is_refused_naming_the_command(tmp_path, corpus):
    import shutil

    copy = shutil.copytree(corpus, tmp_path / "corpus")
    os.remove(copy / "reference-v2" / "reference.json")
    refused = sweeps("validate", PAPER, "--set", f"olmo.corpus={copy}", cwd=tmp_path)
    assert refused.returncode == 2 and "olmo.corpus" in refused.stderr
    assert f"sweeps corpus reference {copy}" in refused.stderr


def plan_json(corpus, *sets: str) -> dict[str, dict[str, dict]]:
    """`sweeps validate --format json` of the paper's preset: frequency -> size -> params."""
    result = sweeps("validate", PAPER, "--format", "json", "--set", f"olmo.corpus={corpus}",
                    *(arg for s in sets for arg in ("--set", s)), cwd=corpus.parent)
    assert result.returncode == 0, result.stderr
    by_frequency: dict[str, dict[str, dict]] = {}
    for point in json.loads(result.stdout)["points"]:
        params = point["params"]
        if params["task"] == "cmp":
            by_frequency.setdefault(params["frequency"], {})[params["width"]] = params
    return by_frequency


def test_the_paper_preset_gives_every_size_the_same_instances_and_tokens(corpus):
    by_frequency = plan_json(corpus)
    assert len(by_frequency) == 10
    for frequency, sizes in by_frequency.items():
        assert list(sizes) == ["4M", "20M", "300M", "1B", "4B"]
        for key in ("injection.total_instances", "training.tokens", "batch_size", "seq_len",
                    "steps", "injection.instances_per_batch"):
            assert len({params[key] for params in sizes.values()}) == 1, (frequency, key)
        assert sizes["4M"]["training.tokens"] == str(50_000 * 2**22)  # 209.7B: "210B tokens"
        assert sizes["4M"]["budget"] == "shared"
    lowest = by_frequency[str(2.4e-8)]["4B"]  # the paper's "1 instance every 10 batches"
    assert float(lowest["injection.instances_per_batch"]) == pytest.approx(0.1, rel=0.01)
    assert int(lowest["injection.total_instances"]) == round(2.4e-8 * 50_000 * 2**22) == 5033
    highest = by_frequency[str(7.8e-3)]["4M"]  # about one instance in every row
    assert float(highest["injection.instances_per_batch"]) / 32_768 == pytest.approx(
        0.998, abs=1e-3)


def test_the_ladder_budget_is_olmos_per_size_and_the_plan_says_counts_differ(corpus,
                                                                            tmp_path):
    sets = ("olmo.budget=ladder", "olmo.batch_size=null", "olmo.steps=null")
    sizes = plan_json(corpus, *sets)[str(2.4e-8)]
    tokens_per_batch = {w: int(p["batch_size"]) * int(p["seq_len"]) for w, p in sizes.items()}
    assert tokens_per_batch["4M"] == 65_536 and tokens_per_batch["20M"] == 131_072
    assert int(sizes["4M"]["injection.total_instances"]) == 2  # and the 4B run 1,920
    assert int(sizes["4B"]["injection.total_instances"]) == 1_920
    described = sweeps("validate", PAPER, "--set", f"olmo.corpus={corpus}",
                       *(arg for s in sets for arg in ("--set", s)), cwd=tmp_path)
    assert "the sizes see different numbers of instances" in described.stdout


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
    # OLMo's lr per size (N counted for 4M and 20M); one length for both under budget shared:
    # 20 tokens per parameter of the sweep's largest size.
    assert (params["4M"]["lr"], params["20M"]["lr"]) == (
        str(0.0047 * (3_744_832 / 108e6) ** (-1 / 3)),
        str(0.0047 * (19_101_888 / 108e6) ** (-1 / 3)))
    steps = -(-20 * 19_101_888 // (8 * 64))
    assert params["4M"]["steps"] == params["20M"]["steps"] == str(steps)
    assert params["4M"]["injection.total_instances"] == str(round(1e-3 * steps * 8 * 64)) \
        == params["20M"]["injection.total_instances"]


def test_a_shared_budget_left_out_is_olmos_recipe_for_the_largest_size():
    from sweeps.plan import plan

    spec = validate({**olmo_spec(), "grid": {"width": ["20M", "4M"], "frequency": [1e-4],
                                             "task": ["cmp"]}})
    params = [p.params for p in plan(spec)]
    assert {p["batch_size"] for p in params} == {"1024"}  # 20M's 131,072 tokens, 128 a row
    assert {p["steps"] for p in params} == {str(-(-20 * 19_101_888 // 131_072))}
    ladder = validate({**olmo_spec(budget="ladder"), "grid": {
        "width": ["20M", "4M"], "frequency": [1e-4], "task": ["cmp"]}})
    assert [p.params["batch_size"] for p in plan(ladder)] == ["1024", "512"]


def test_the_mechanism_preset_injects_100_every_100_batches(tmp_path):
    from sweeps.plan import plan
    from sweeps.spec import load_spec

    spec = load_spec(REPO / "sweeps/presets/olmo-mechanism.yaml")
    for planned in plan(spec):
        section = spec.runs_as.section.model_validate(planned.section)  # as the worker reads it
        assert planned.params["injection.instances_per_batch"] == "1.0"
        assert section.block == 100 and section.measure_every > 0
    valid = sweeps("validate", REPO / "sweeps/presets/olmo-mechanism.yaml", cwd=tmp_path)
    assert valid.returncode == 0 and "every 10 steps and every step that injects" in valid.stdout


def test_the_clusters_corpus_setting_is_the_default_corpus(corpus, monkeypatch):
    """$SWEEPS_CORPUS (cluster.yaml's settings) stands in for a corpus the spec leaves out;
    a spec's own corpus wins."""
    from trainables.olmo import OlmoSection

    monkeypatch.setenv("SWEEPS_CORPUS", str(corpus))
    assert OlmoSection().corpus == str(corpus)
    monkeypatch.setenv("SWEEPS_CORPUS", str(corpus.parent / "nowhere"))
    with pytest.raises(ValueError, match="nowhere' is not a corpus"):
        OlmoSection()
    assert OlmoSection(corpus=str(corpus)).corpus == str(corpus)
    monkeypatch.delenv("SWEEPS_CORPUS")
    assert OlmoSection().corpus is None  # the embedded corpus
