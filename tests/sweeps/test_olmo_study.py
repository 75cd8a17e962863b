"""The OLMo reproduction's sweeps: every scale's specs are valid sweeps, every size of a sweep
sees the same instances and tokens (one stream), and each gap sweep injects as many
instances as the others (the same long-run frequency, N at a time)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sweeps.errors import SpecError
from sweeps.plan import plan
from sweeps.spec import read_spec_file, validate
from sweeps.studies.olmo import PAPER, SCALES, sweeps_for


@pytest.mark.parametrize("scale", SCALES)
def test_every_sweep_of_a_scale_is_a_valid_spec(scale):
    specs = sweeps_for(scale)
    assert {"heat", "gap-1"} <= set(specs)
    assert len({s["name"] for s in specs.values()}) == len(specs)
    for role, spec in specs.items():
        assert spec["name"] == f"repro-olmo-{scale}-{role}"
        checked = validate(spec)
        assert checked.trainable == "olmo" and plan(checked)


@pytest.mark.parametrize("scale", SCALES)
def test_every_size_of_a_sweep_sees_the_same_instances_and_tokens(scale):
    for role, spec in sweeps_for(scale).items():
        planned = plan(validate(spec))
        assert len({p.point.width for p in planned}) >= 2, role
        seen: dict[tuple, set] = {}
        for p in planned:
            seen.setdefault((p.point.frequency, p.point.task), set()).add(
                (p.params["injection.total_instances"], p.params["training.tokens"]))
        assert all(len(same) == 1 for same in seen.values()), role


def test_the_full_scale_heat_sweep_is_the_paper_preset():
    paper, heat = read_spec_file(PAPER), sweeps_for("full")["heat"]
    assert heat["grid"] == {**paper["grid"], "seed": [0]}
    assert heat["olmo"] == {k: v for k, v in paper["olmo"].items() if k != "corpus"}
    assert heat["olmo"]["budget"] == "shared" and heat["resources"] == paper["resources"]


@pytest.mark.parametrize("scale", SCALES)
def test_gap_sweeps_inject_the_same_instances_and_the_largest_gap_measures(scale):
    gaps = {int(role.split("-")[1]): validate(spec) for role, spec in sweeps_for(scale).items()
            if role.startswith("gap-")}
    assert len(gaps) >= 3
    totals = set()
    for n, spec in gaps.items():
        section, (frequency,) = spec.olmo, spec.grid.frequency
        assert section.block == n and spec.grid.task == ["cmp"]
        per_batch = Fraction(frequency) * section.batch_size * section.seq_len
        assert per_batch == 1  # one instance a batch on average: N every N batches
        assert section.steps % n == 0
        totals.add(section.steps * per_batch)
        assert (section.measure_every > 0) == (n == max(gaps))
    assert len(totals) == 1


def test_quick_runs_4M_and_20M_on_the_embedded_corpus_on_cpu():
    for spec in sweeps_for("quick").values():
        checked = validate(spec)
        assert checked.grid.width == ["4M", "20M"] and checked.olmo.corpus is None
        assert checked.resources.gpu == 0 and checked.resources.cpu == 1


def test_an_unknown_scale_names_the_scales():
    with pytest.raises(SpecError, match="quick, gpu, full"):
        sweeps_for("huge")


@pytest.mark.parametrize("scale", SCALES)
def test_gap_sweeps_have_seeds_and_reads_in_every_cycle_of_the_largest_gap(scale):
    """O3-O5 are judged over seeds, and O3 reads each N over the last cycle of the largest N:
    at least two evaluations fall in it."""
    gaps = {int(role.split("-")[1]): validate(spec) for role, spec in sweeps_for(scale).items()
            if role.startswith("gap-")}
    largest = max(gaps)
    for spec in gaps.values():
        assert len(spec.grid.seed) >= 2
        assert largest % spec.olmo.eval_every == 0 and largest // spec.olmo.eval_every >= 2
