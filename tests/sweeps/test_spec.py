"""Every rule a user can break in a spec is refused with a message naming the field."""

from __future__ import annotations

import pytest

from sweeps.errors import SpecError
from sweeps.spec import apply_set, load_spec, validate
from tests.conftest import tiny_spec

BROKEN = [
    # (override of the tiny spec, field named in the message, words of the rule)
    ({"name": "Tiny_Sweep"}, "name", "pattern"),
    ({"name": ""}, "name", "pattern"),
    ({"trainable": "xgboost"}, "trainable", "synthetic"),
    ({"grid__width": [0, 4]}, "grid.width[0]", "1 <= width"),
    ({"grid__width": [4, 17]}, "grid.width[1]", "d = tasks x features_per_task = 16"),
    ({"grid__width": ["20M"]}, "grid.width[0]", "integers"),
    ({"grid__width": []}, "grid.width", "at least 1"),
    ({"grid__width": [4, 4]}, "grid.width", "twice"),
    ({"grid__frequency": [0.0]}, "grid.frequency", "0 < f < 1"),
    ({"grid__frequency": [1.0]}, "grid.frequency", "0 < f < 1"),
    ({"grid__frequency": [-0.1]}, "grid.frequency", "0 < f < 1"),
    ({"grid__frequency": {"geomspace": {"start": 0.1, "stop": 2.0, "num": 3}}},
     "grid.frequency.stop", "less than 1"),
    ({"grid__frequency": {"geomspace": {"start": 0.1, "stop": 0.01}}},
     "grid.frequency.num", "missing"),
    ({"grid__frequency": {"geomspace": {"start": 0.1, "stop": 0.01, "num": 0}}},
     "grid.frequency.num", "greater than or equal to 1"),
    ({"grid__frequency": {"linspace": {"start": 0.1}}}, "grid.frequency", "geomspace"),
    ({"grid__task": ["cmp"]}, "grid.task[0]", "simple | complex"),
    ({"grid__seed": [0, 0]}, "grid.seed", "twice"),
    ({"grid__seed": ["a"]}, "grid.seed[0]", "integer"),
    ({"grid__colour": ["red"]}, "grid.colour", "unknown field"),
    ({"synthetic__tasks": 1}, "synthetic.tasks", "greater than or equal to 2"),
    ({"synthetic__features_per_task": 0}, "synthetic.features_per_task", ">= 1"),
    ({"synthetic__zipf": -1}, "synthetic.zipf", "greater than or equal to 0"),
    ({"synthetic__complexity": {"complex": -0.5}}, "synthetic.complexity.complex", ">= 0"),
    ({"synthetic__complexity": {"medium": 1.0}}, "synthetic.complexity.medium", "unknown field"),
    ({"synthetic__mode": "online"}, "synthetic.mode", "population"),
    ({"synthetic__schedule": {"block": 0}}, "synthetic.schedule", "block: n"),
    ({"synthetic__schedule": "random"}, "synthetic.schedule", "iid"),
    ({"synthetic__schedule": {"block": 1}, "grid__frequency": [0.6]}, "grid.frequency",
     "n/(n+1)"),
    ({"synthetic__steps": 0}, "synthetic.steps", ">= 1"),
    ({"synthetic__lr": 0}, "synthetic.lr", "greater than 0"),
    ({"synthetic__batch_size": 0}, "synthetic.batch_size", ">= 1"),
    ({"synthetic__log_every": 0}, "synthetic.log_every", ">= 1"),
    ({"synthetic__learned_threshold": 1.0}, "synthetic.learned_threshold", "less than 1"),
    ({"synthetic__pack": ["width"]}, "synthetic.pack[0]", "frequency"),
    ({"synthetic__pack": ["seed", "seed"]}, "synthetic.pack", "at most once"),
    ({"synthetic__dtype": "float16"}, "synthetic.dtype", "float32"),
    ({"synthetic__checkpoint_every_s": -1}, "synthetic.checkpoint_every_s", ">= 0"),
    ({"synthetic__stepz": 10}, "synthetic.stepz", "unknown field"),
    ({"resources__cpu": 0}, "resources.cpu", "greater than 0"),
    ({"resources__gpu": -1}, "resources.gpu", ">= 0"),
    ({"resources__workers": 0}, "resources.workers", ">= 1"),
    ({"resources__max_concurrent_trials": 0}, "resources.max_concurrent_trials", ">= 1"),
    ({"failure__max_failures": -1}, "failure.max_failures", ">= 0"),
    ({"olmoo": {}}, "olmoo", "unknown field"),
    ({"search": "bisect"}, "search", "'grid' or 'critical_width'"),
    ({"search_prior": "theory"}, "search_prior", "'trainable' or 'uniform'"),
]


@pytest.mark.parametrize("override, field, rule", BROKEN, ids=[b[1] for b in BROKEN])
def test_each_rule_is_refused_naming_the_field(override, field, rule):
    with pytest.raises(SpecError) as err:
        validate(tiny_spec(**override))
    message = str(err.value)
    assert f"  {field}:" in message, message
    assert rule in message, message


def test_required_fields_are_named():
    for field in ("name", "trainable", "grid"):
        raw = tiny_spec()
        del raw[field]
        with pytest.raises(SpecError, match=f"{field}: required field is missing"):
            validate(raw)


def test_defaults_fill_everything_but_name_trainable_grid():
    spec = validate({"name": "x", "trainable": "synthetic",
                     "grid": {"width": [8], "frequency": [0.01], "task": ["simple"]}})
    assert spec.grid.seed == [0]
    assert (spec.synthetic.tasks, spec.synthetic.features_per_task) == (32, 16)
    assert spec.synthetic.complexity.complex == 0.5
    assert (spec.resources.workers, spec.failure.max_failures) == (1, 2)


def test_geomspace_expands_to_three_significant_digits():
    spec = validate(tiny_spec(grid__frequency={"geomspace": {"start": 7.8e-3, "stop": 2.4e-8,
                                                             "num": 10}}))
    assert spec.grid.frequency[0] == 0.0078 and spec.grid.frequency[-1] == 2.4e-8
    assert len(spec.grid.frequency) == 10
    assert all(a > b for a, b in zip(spec.grid.frequency, spec.grid.frequency[1:]))


def test_set_overrides_are_yaml_and_validated_like_the_file(write_spec):
    path = write_spec(tiny_spec())
    spec = load_spec(path, ["grid.width=[4, 8]", "synthetic.steps=50", "synthetic.mode=sampled"])
    assert spec.grid.width == [4, 8] and spec.synthetic.steps == 50
    assert spec.synthetic.mode == "sampled"
    with pytest.raises(SpecError, match="synthetic.steps: .*>= 1"):
        load_spec(path, ["synthetic.steps=0"])


@pytest.mark.parametrize("assignment, words", [
    ("synthetic.steps", "expected key=value"),
    ("=3", "expected key=value"),
    ("grid..width=3", "expected key=value"),
    ("name.first=x", "name is a value, not a section"),
    ("grid.width=[4, 8", "not valid YAML"),
])
def test_malformed_set_is_refused(assignment, words):
    with pytest.raises(SpecError, match=words):
        apply_set(tiny_spec(), [assignment])


def test_name_flag_overrides_and_is_validated(write_spec):
    path = write_spec(tiny_spec())
    assert load_spec(path, name="other-name").name == "other-name"
    with pytest.raises(SpecError, match="name:"):
        load_spec(path, name="Bad Name")


@pytest.mark.parametrize("text, words", [
    ("name: [unclosed", "not valid YAML at line 1"),
    ("- just\n- a list\n", "a YAML mapping"),
])
def test_unreadable_spec_files(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=words):
        load_spec(path)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.yaml")


def test_presets_are_valid():
    from tests.conftest import REPO

    for preset in sorted((REPO / "sweeps" / "presets").glob("*.yaml")):
        spec = load_spec(preset)
        assert spec.name == preset.stem


def test_set_makes_lists_where_the_field_holds_one(write_spec):
    path = write_spec(tiny_spec())
    spec = load_spec(path, ["grid.width=4", "grid.seed=1,2", "grid.frequency=0.1,0.01",
                            "grid.task=simple", "synthetic.steps=7"])
    assert spec.grid.width == [4] and spec.grid.seed == [1, 2]
    assert spec.grid.frequency == [0.1, 0.01] and spec.grid.task == ["simple"]
    assert spec.synthetic.steps == 7  # not a list field: as given
    with pytest.raises(SpecError, match=r"^invalid --set:\n  --set synthetic.steps=1,2: "):
        load_spec(path, ["synthetic.steps=1,2"])  # a list where one number is expected


def test_a_field_from_the_file_is_blamed_on_the_file_beside_a_flag(write_spec):
    path = write_spec(tiny_spec(resources={"cpu": 0}))
    with pytest.raises(SpecError) as raised:
        load_spec(path, ["synthetic.steps=0"])
    lines = str(raised.value).splitlines()
    assert lines[0] == f"{path} is invalid:"
    assert any(line.startswith("  resources.cpu") for line in lines)
    assert any(line.startswith("  --set synthetic.steps=0: synthetic.steps") for line in lines)
