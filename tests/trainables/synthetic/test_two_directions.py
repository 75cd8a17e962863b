"""The paper's opening mechanism picture on `sweeps/presets/two-directions.yaml`, trained as
its trials train it (without Ray): one frequent and one rare direction, widths 1 and 2."""

from __future__ import annotations

import numpy as np
import pytest

from sweeps.spec import load_spec
from tests.conftest import REPO
from trainables.points import Point
from trainables.synthetic import SYNTHETIC
from trainables.synthetic.student import Pack
from trainables.synthetic.trainable import member_for, setup_for

pytestmark = pytest.mark.slow  # 2 x 2000 steps, every one measured and logged

NAMES = ("rare/alignment", "rare/alignment_push", "rare/alignment_pull", "rare/injected")


def trace(width: int) -> dict[str, np.ndarray]:
    """The preset's run at `width`: every step's metrics over its second half."""
    spec = load_spec(REPO / "sweeps" / "presets" / "two-directions.yaml")
    (frequency,), (task,), (seed,) = spec.grid.frequency, spec.grid.task, spec.grid.seed
    point = Point(width, frequency, task, seed)
    section = SYNTHETIC.resolve(spec.synthetic, point)
    pack = Pack(setup_for(section, width), [member_for(section, point)])
    rows = [[metrics[name].item() for name in NAMES]
            for metrics, _ in pack.train([section.steps], [section.log_every]) if pack.step > 0]
    assert len(rows) == section.steps  # every step logged, push and pull included
    late = np.array(rows[len(rows) // 2:])
    return dict(zip(NAMES, late.T))


@pytest.fixture(scope="module")
def traces() -> dict[int, dict[str, np.ndarray]]:
    return {width: trace(width) for width in (1, 2)}


def test_at_width_1_rare_samples_push_the_alignment_up_and_the_rest_pull_it_down(traces):
    narrow = traces[1]
    rare_steps = narrow["rare/injected"] > 0
    assert narrow["rare/alignment"].mean() < 0.05  # the frequent direction holds the encoder
    assert (narrow["rare/alignment_push"][~rare_steps] == 0).all()  # no rare sample, no push
    assert np.mean(narrow["rare/alignment_push"][rare_steps] > 0) > 0.7
    assert np.mean(narrow["rare/alignment_pull"] < 0) > 0.8


def test_at_width_2_both_directions_are_held_and_neither_moves_the_alignment(traces):
    narrow, wide = traces[1], traces[2]
    assert wide["rare/alignment"].mean() > 0.99
    for part in ("push", "pull"):
        size = np.abs(wide[f"rare/alignment_{part}"]).mean()
        assert size < 1e-2 * np.abs(narrow[f"rare/alignment_{part}"]).mean()


def test_the_preset_runs_end_to_end_with_push_and_pull_at_every_step(ray_cluster, tmp_path,
                                                                     tracking_uri):
    """`sweeps run` on the preset (shortened): real Ray, real MLflow; every step of both
    widths carries the push and the pull."""
    from mlflow import MlflowClient

    from sweeps.cli import main

    preset = REPO / "sweeps" / "presets" / "two-directions.yaml"
    assert main(["run", str(preset), "--storage", str(tmp_path / "runs"), "--tracking-uri",
                 tracking_uri, "--set", "synthetic.steps=200"]) == 0
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("two-directions")
    runs = client.search_runs([experiment.experiment_id], "tags.kind = 'trial'")
    assert sorted(int(r.data.params["width"]) for r in runs) == [1, 2]
    for run in runs:
        for name in ("rare/alignment_push", "rare/alignment_pull"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, name)]
            assert sorted(steps) == list(range(1, 201)), name
