"""Every synthetic metric against an independent computation on the same state: the problem
rebuilt in input coordinates (U = Q V, W_k = diag(sqrt lambda_k) B_k^T), losses from least
squares, gradients from torch autograd on the full loss, split by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.synthetic.student import Member, Pack, Setup, block_schedule

K, R = 6, 4  # d = 24
RARE = K - 1


def trained_pack(mode: str, width: int = 10, steps: int = 40, **setup) -> Pack:
    """A pack of two members part-way through training (decoders no longer zero)."""
    pack = Pack(Setup(K, R, width, mode=mode, batch_size=64, **setup),
                [Member(0.2, 0.5, 0), Member(0.05, 2.0, 1)], dtype=torch.float64)
    for _ in range(steps):
        pack.train_step()
    return pack


def problem(pack: Pack, i: int):
    """Member i in input coordinates: U (d, N), decoders D_k (K, r, N), targets W_k (K, r, d),
    frequencies pi (K,)."""
    Q, d = pack.Q[i], pack.setup.dim
    U = (Q @ pack.V[i]).clone()
    D = pack.D[i].view(K, R, -1).clone()
    lam = pack.sqrt_lam[i, :, 0].square().view(K, R)
    W = torch.stack([torch.diag(lam[k].sqrt()) @ Q[:, k * R:(k + 1) * R].T for k in range(K)])
    assert W.shape == (K, R, d)
    return U, D, W, pack.pi[i].clone()


def expected_loss(U, D, W, weights):
    """sum_k w_k E||D_k U^T x - W_k x||^2 over x ~ N(0, I): a Frobenius norm per task."""
    return sum(weights[k] * (D[k] @ U.T - W[k]).square().sum() for k in range(K))


def encoder_grad(loss_of_U, U):
    U = U.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss_of_U(U), U)
    return grad


def cos(a, b):
    return (a * b).sum() / (a.norm() * b.norm())


@pytest.mark.parametrize("mode", ["population", "sampled"])
def test_losses_and_alignment_match_least_squares_on_the_same_state(mode):
    pack = trained_pack(mode)
    metrics = pack.metrics()
    for i in range(2):
        U, D, W, pi = problem(pack, i)
        trained = torch.stack([(D[k] @ U.T - W[k]).square().sum() for k in range(K)])
        # The best decoder for U, by least squares on U^T: min_D ||D U^T - W_k||_F.
        best = torch.linalg.lstsq(U.expand(K, *U.shape), W.transpose(1, 2)).solution.mT
        represented = torch.stack([(best[k] @ U.T - W[k]).square().sum() for k in range(K)])
        for k in range(K):
            assert metrics[f"task_loss/{k}"][i].item() == pytest.approx(represented[k].item(),
                                                                        abs=1e-9)
        assert metrics["rare/loss"][i].item() == pytest.approx(represented[RARE].item(), abs=1e-9)
        assert metrics["rare/model_loss"][i].item() == pytest.approx(trained[RARE].item(),
                                                                     abs=1e-9)
        assert metrics["loss"][i].item() == pytest.approx((pi * represented).sum().item(),
                                                          abs=1e-9)
        assert metrics["model_loss"][i].item() == pytest.approx((pi * trained).sum().item(),
                                                                abs=1e-9)
        assert (trained >= represented - 1e-12).all()  # no decoder beats the best one
        b = pack.Q[i][:, RARE * R]  # the rare task's leading feature (largest lambda: j = 0)
        projected = U @ (U.T @ b)
        assert metrics["rare/alignment"][i].item() == pytest.approx(projected.square().sum()
                                                                    .item(), abs=1e-9)


def test_model_loss_equals_representation_loss_under_optimal_decoders():
    pack = trained_pack("sampled")
    pack.D.copy_(pack.sqrt_lam * pack.V)  # D_k = W_k U: the best decoders for U
    metrics = pack.metrics()
    assert torch.allclose(metrics["rare/model_loss"], metrics["rare/loss"], atol=1e-12)
    assert torch.allclose(metrics["model_loss"], metrics["loss"], atol=1e-12)


def test_population_interference_matches_autograd_on_the_expected_loss():
    pack = trained_pack("population")
    before = [problem(pack, i) for i in range(2)]
    pack.train_step(measure=True)
    measured = pack.step_measures
    for i, (U, D, W, pi) in enumerate(before):
        g = encoder_grad(lambda u: expected_loss(u, D, W, pi), U)
        rare_only = torch.zeros(K, dtype=pi.dtype)
        rare_only[RARE] = 1.0
        G_r = encoder_grad(lambda u: expected_loss(u, D, W, rare_only), U)
        background = encoder_grad(lambda u: expected_loss(u, D, W, pi * (1 - rare_only)), U)
        assert measured["interference/cos_batch"][i].item() == pytest.approx(
            cos(g, G_r).item(), abs=1e-9)
        assert measured["interference/cos_task"][i].item() == pytest.approx(1.0, abs=1e-9)
        assert measured["interference/cos_nontask"][i].item() == pytest.approx(
            cos(g - pi[RARE] * G_r, G_r).item(), abs=1e-9)
        assert measured["interference/frequent_norm"][i].item() == pytest.approx(
            background.norm().item(), rel=1e-9)
    assert "rare/injected" not in measured  # population mode has no batch


@pytest.mark.parametrize("block", [0, 8])
def test_sampled_interference_matches_autograd_on_the_batch_split_by_hand(block):
    pack = trained_pack("sampled", block=block, steps=37)
    twin = Pack(pack.setup, pack.members, dtype=torch.float64)  # draws the same batch
    twin.load_state_dicts(pack.state_dicts())
    Z, tasks = twin._draw(slice(None))
    before = [problem(pack, i) for i in range(2)]
    pack.train_step(measure=True)
    measured = pack.step_measures
    injected = []
    for i, (U, D, W, pi) in enumerate(before):
        X = Z[i] @ pack.Q[i].T  # x = Q z, one sample a row

        def batch_loss(u, keep):
            """(1/B) sum over the kept samples b of ||D_{t_b} U^T x_b - W_{t_b} x_b||^2."""
            total = 0.0
            for x, task, kept in zip(X, tasks[i].tolist(), keep):
                if kept:
                    total = total + (D[task] @ (u.T @ x) - W[task] @ x).square().sum()
            return total / len(X)

        rare = [t == RARE for t in tasks[i].tolist()]
        g = encoder_grad(lambda u: batch_loss(u, [True] * len(X)), U)
        g_task = encoder_grad(lambda u: batch_loss(u, rare), U) if any(rare) else 0 * U
        g_nontask = encoder_grad(lambda u: batch_loss(u, [not r for r in rare]), U)
        rare_weight = torch.zeros(K, dtype=pi.dtype)
        rare_weight[RARE] = 1.0
        G_r = encoder_grad(lambda u: expected_loss(u, D, W, rare_weight), U)
        background = encoder_grad(lambda u: expected_loss(u, D, W, pi * (1 - rare_weight)), U)
        assert torch.allclose(g_task + g_nontask, g)
        assert measured["rare/injected"][i].item() == sum(rare)
        assert measured["interference/cos_batch"][i].item() == pytest.approx(
            cos(g, G_r).item(), abs=1e-9)
        assert measured["interference/cos_nontask"][i].item() == pytest.approx(
            cos(g_nontask, G_r).item(), abs=1e-9)
        if any(rare):
            assert measured["interference/cos_task"][i].item() == pytest.approx(
                cos(g_task, G_r).item(), abs=1e-9)
        else:
            assert torch.isnan(measured["interference/cos_task"][i])  # not logged
        assert measured["interference/frequent_norm"][i].item() == pytest.approx(
            background.norm().item(), rel=1e-9)
        injected.append(sum(rare))
    assert any(injected), "the batch should hold some rare samples (f = 0.2, 0.05)"


def test_gradients_at_the_first_step_are_undefined_not_zero():
    pack = Pack(Setup(K, R, 8), [Member(0.1, 0.5, 0)])
    pack.train_step(measure=True)  # decoders start at zero: every encoder gradient is 0
    assert torch.isnan(pack.step_measures["interference/cos_batch"]).all()
    assert "interference/cos_batch" not in Pack(Setup(K, R, 8), [Member(0.1, 0.5, 0)]).metrics()


def bursty_trace(width: int, steps: int = 300) -> dict[str, np.ndarray]:
    """The issue's bursty setup (K=16, r=8, f=0.01 in blocks of 64, critical width 28),
    sampled: the interference measures at every burst and every 5th step between them."""
    pack = Pack(Setup(16, 8, width, mode="sampled", block=64, batch_size=256),
                [Member(0.01, 2.0, 0)])
    trace = []
    for step in range(steps):
        burst = bool(block_schedule(step * 256, 256, 0.01, 64).any())
        pack.train_step(measure=burst or step % 5 == 0)
        if pack.step_measures:
            trace.append({"step": pack.step,
                          **{k: v.item() for k, v in pack.step_measures.items()}})
            assert (trace[-1]["rare/injected"] > 0) == burst
    return {k: np.array([t[k] for t in trace]) for k in trace[0]}


def test_bursts_align_the_wide_students_gradient_more_and_its_background_pull_is_weaker():
    """The paper's Figure 4 reading in the toy: at injection steps the batch gradient points
    more along the rare task's in the wide student (96) than in the narrow one (12, below the
    critical width), and the background tasks' expected gradient is weaker in the wide one."""
    narrow, wide = bursty_trace(12), bursty_trace(96)
    late = narrow["step"] > 100  # after the decoders' first fit (same steps measured in both)
    at_bursts = [t["rare/injected"][late] > 0 for t in (narrow, wide)]
    assert all(b.sum() >= 8 for b in at_bursts)  # one burst every 25 steps
    cos_narrow, cos_wide = (t["interference/cos_batch"][late][b].mean()
                            for t, b in zip((narrow, wide), at_bursts))
    assert cos_wide > cos_narrow + 0.05
    assert (wide["interference/frequent_norm"][late].mean()
            < 0.7 * narrow["interference/frequent_norm"][late].mean())
    # Between bursts the rest of the batch barely points along the rare task.
    between = wide["interference/cos_nontask"][late][~at_bursts[1]]
    assert abs(between.mean()) < 0.2
