"""The synthetic student's numerical core, without Ray: theory, determinism, resume."""

from __future__ import annotations

import pytest
import torch

from trainables.points import Point
from trainables.synthetic import SYNTHETIC, SyntheticSection, theory
from trainables.synthetic.problem import Member, Setup
from trainables.synthetic.student import Pack, block_schedule
from trainables.synthetic.trainable import member_for, setup_for, spectrum

SECTION = SyntheticSection(tasks=8, features_per_task=8)  # the defaults, a smaller problem


def train_points(section: SyntheticSection, points: list[Point], keep_pack: bool = False):
    """Train points of one width as one pack as a trial would; return final metrics (every
    member's state is final at the last yield: the ones stopped before are frozen)."""
    resolved = [SYNTHETIC.resolve(section, p) for p in points]
    pack = Pack(setup_for(section, points[0].width),
                [member_for(s, p) for s, p in zip(resolved, points)])
    steps = [s.steps for s in resolved]
    for metrics, _ in pack.train(steps, steps):
        pass
    return (pack, metrics) if keep_pack else metrics


@pytest.mark.parametrize("tasks, r, width, zipf, decay", [
    (8, 8, 4, 1.0, 2.0),
    (8, 8, 16, 1.0, 2.0),
    (4, 16, 24, 0.5, 1.0),
    (16, 4, 20, 1.5, 2.0),
    (6, 6, 35, 1.0, 2.0),
    (5, 6, 30, 1.0, 2.0),  # N = d: only the decoders have anything to learn
])
def test_default_population_run_stops_within_1_percent_of_the_optimum(tasks, r, width, zipf,
                                                                      decay):
    """Shapes the stopping rule was not tuned on (the demo's K=8, r=8 was); the trained
    model's own loss, at the step each point stopped at, well before its cap."""
    section = SyntheticSection(tasks=tasks, features_per_task=r, zipf=zipf,
                               background_decay=decay)
    points = [Point(width, f, task, 0) for f in (0.2, 0.02) for task in ("simple", "complex")]
    pack, metrics = train_points(section, points, keep_pack=True)
    for i, point in enumerate(points):
        best = theory.optimum(spectrum(section, point), width)
        for name in ("loss", "model_loss"):
            assert metrics[name][i].item() == pytest.approx(best.loss, rel=0.01, abs=1e-3), \
                (point, name)
        assert metrics["rare/learned"][i].item() == (best.rare_loss <= 0.5), point
        assert metrics["rare/model_loss"][i].item() == pytest.approx(
            metrics["rare/loss"][i].item(), abs=0.02), point  # its decoder is trained
        cap = SYNTHETIC.resolve(section, point).steps
        assert pack.checks[i].converged_at is not None and pack.checks[i].converged_at < cap


def test_rare_complex_task_is_lost_below_the_critical_width_and_kept_above():
    points = [Point(w, 0.03, "complex", 0) for w in (8, 48)]
    n_star = theory.critical_width(spectrum(SECTION, points[0]), 0.5)
    assert 8 < n_star < 48
    small, large = (train_points(SECTION, [p]) for p in points)
    assert small["rare/learned"].item() == 0 and small["rare/loss"].item() > 0.95
    assert large["rare/learned"].item() == 1 and large["rare/alignment"].item() > 0.9


@pytest.mark.parametrize("schedule", ["iid", {"block": 16}])
def test_sampled_small_width_loses_the_rare_task_large_width_keeps_it(schedule):
    section = SECTION.model_copy(update={"mode": "sampled", "batch_size": 64, "steps": 1500})
    section = SyntheticSection.model_validate({**section.model_dump(), "schedule": schedule})
    lost = train_points(section, [Point(8, 0.1, "complex", s) for s in (0, 1)])
    kept = train_points(section, [Point(32, 0.1, "complex", s) for s in (0, 1)])
    assert lost["rare/learned"].tolist() == [0.0, 0.0]
    assert lost["rare/loss"].min().item() > 0.9
    assert kept["rare/learned"].tolist() == [1.0, 1.0]
    assert kept["rare/loss"].max().item() < 0.3


def test_encoder_columns_stay_orthonormal():
    pack = Pack(Setup(8, 8, 12, mode="sampled", batch_size=32), [Member(0.1, 0.5, 0)])
    for _ in range(50):
        pack.train_step()
    gram = pack.U[0].mT @ pack.U[0]
    assert torch.allclose(gram, torch.eye(12), atol=1e-5)


def test_a_member_trains_the_same_alone_or_in_a_pack():
    setup = Setup(6, 6, 10, mode="sampled", batch_size=16)
    alone = Pack(setup, [Member(0.05, 0.5, 3)])
    packed = Pack(setup, [Member(0.2, 2.0, 1), Member(0.05, 0.5, 3)])
    for _ in range(30):
        alone.train_step()
        packed.train_step()
    assert torch.allclose(alone.U[0], packed.U[1], atol=1e-5)
    assert torch.allclose(alone.D[0], packed.D[1], atol=1e-5)


@pytest.mark.parametrize("mode", ["population", "sampled"])
def test_restored_state_continues_exactly(mode):
    setup = Setup(6, 6, 10, mode=mode, batch_size=16)
    members = [Member(0.1, 0.5, 0), Member(0.01, 2.0, 1)]
    straight, first = Pack(setup, members), Pack(setup, members)
    for _ in range(40):
        straight.train_step()
    for _ in range(25):
        first.train_step()
    resumed = Pack(setup, members)
    resumed.load_state_dicts(first.state_dicts())
    for _ in range(15):
        resumed.train_step()
    assert resumed.step == straight.step == 40
    assert torch.equal(resumed.U, straight.U) and torch.equal(resumed.D, straight.D)


def test_finished_members_stay_frozen_while_the_pack_goes_on():
    pack = Pack(Setup(6, 6, 10), [Member(0.1, 0.5, 0), Member(0.1, 0.5, 1)])
    logged = [(pack.step, due) for _, due in pack.train([5, 20], log_every=[2, 10])]
    assert logged == [(0, [True, True]), (2, [True, False]), (4, [True, False]),
                      (5, [True, False]), (10, [False, True]), (20, [False, True])]
    frozen = Pack(Setup(6, 6, 10), [Member(0.1, 0.5, 0)])
    for _ in range(5):
        frozen.train_step()
    assert torch.equal(pack.U[0], frozen.U[0])


def test_metrics_at_initialisation():
    pack = Pack(Setup(8, 8, 16), [Member(0.1, 0.5, 0)])
    metrics = pack.metrics()
    task_losses = torch.stack([metrics[f"task_loss/{k}"] for k in range(8)], dim=1)
    assert torch.all((task_losses > 0) & (task_losses < 1))
    assert metrics["rare/loss"].item() == task_losses[0, -1].item()
    # A random 16-dim subspace of 64 dims holds about a quarter of any fixed direction.
    assert 0.05 < metrics["rare/alignment"].item() < 0.6
    assert metrics["rare/model_loss"].item() == 1.0  # decoders start at zero: predict 0
    assert not any(name.startswith("interference/") for name in metrics)  # no step yet
    assert metrics["loss"].item() == pytest.approx(
        (pack.pi.double() * task_losses).sum().item(), rel=1e-9)


@pytest.mark.parametrize("frequency, block", [(0.1, 1), (0.01, 4), (3e-4, 16), (0.3, 2)])
def test_block_schedule_delivers_blocks_at_the_long_run_frequency(frequency, block):
    total = 200_000
    rare = block_schedule(0, total, frequency, block)
    assert abs(rare.sum().item() - frequency * total) <= block
    starts = torch.nonzero(rare[1:] & ~rare[:-1]).flatten() + 1
    ends = torch.nonzero(~rare[1:] & rare[:-1]).flatten() + 1
    assert torch.all(ends[: len(starts)] - starts[: len(ends)] == block)
    # Any window of the schedule equals the same slice of the whole.
    assert torch.equal(block_schedule(1234, 5000, frequency, block), rare[1234:6234])


def test_a_block_filling_whole_batches_trains_stably_at_the_default_lr():
    """Blocks of 512 rare samples fill two whole batches of 256 in a row: the default step
    keeps the rare decoder stable at any width (here N = d); the previous default (a bound
    that grew with narrower widths and ignored blocks) made it diverge."""
    setup = Setup(8, 8, 64, mode="sampled", block=512, batch_size=256)
    spec = setup.spectrum(Member(0.05, 2.0, 0))
    previous = min(0.5 / spec.pi.max(), 0.5 * 256 / (64 + spec.dim * spec.lam.max()))

    def worst_rare_loss(lr):
        pack = Pack(setup, [Member(0.05, 2.0, 0, lr)])
        worst = 0.0
        for _ in range(120):
            pack.train_step()
            worst = max(worst, pack.metrics()["rare/model_loss"].item())
        return worst

    assert worst_rare_loss(None) < 1.5
    assert worst_rare_loss(previous) > 10.0
