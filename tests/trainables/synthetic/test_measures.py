"""Every synthetic metric against an independent computation on the same state: the problem
rebuilt in input coordinates (U = Q V, W_k = diag(sqrt lambda_k) B_k^T), losses from least
squares, gradients from torch autograd on the full loss, split by hand and projected on the
tangent space by hand, the alignment's change from autograd through span(U - t lr g)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.synthetic.problem import Member, Setup
from trainables.synthetic.student import Pack, block_schedule

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


def tangent(U, x):
    """(I - U U^T) x, the part of an encoder gradient that moves span(U)."""
    return (torch.eye(U.shape[0], dtype=U.dtype) - U @ U.T) @ x


def alignment_rate(U, b, direction):
    """d/dt ||P b||^2 at t = 0, P the projector on span(U - t direction): autograd through
    the projector A (A^T A)^-1 A^T, which no orthonormalisation enters."""
    t = torch.zeros((), dtype=U.dtype, requires_grad=True)
    A = U - t * direction
    alignment = b @ A @ torch.linalg.solve(A.T @ A, A.T @ b)
    (rate,) = torch.autograd.grad(alignment, t)
    return rate.item()


def leading_feature(pack: Pack, i: int) -> torch.Tensor:
    """The rare task's leading feature b in input coordinates (largest lambda: j = 0)."""
    return pack.Q[i][:, RARE * R]


def test_population_measures_match_autograd_on_the_expected_loss():
    """Population mode logs the background's tangent norm and the alignment's push and pull,
    no cosines (there cos_task is G_r against itself)."""
    pack = trained_pack("population")
    before = [problem(pack, i) for i in range(2)]
    pack.train_step(measure=True)
    measured = pack.step_measures
    assert not [name for name in measured if name.startswith("interference/cos")]
    assert "rare/injected" not in measured  # population mode has no batch
    for i, (U, D, W, pi) in enumerate(before):
        rare_only = torch.zeros(K, dtype=pi.dtype)
        rare_only[RARE] = 1.0
        g = encoder_grad(lambda u: expected_loss(u, D, W, pi), U)
        g_rare = encoder_grad(lambda u: expected_loss(u, D, W, pi * rare_only), U)
        background = encoder_grad(lambda u: expected_loss(u, D, W, pi * (1 - rare_only)), U)
        assert measured["interference/frequent_norm"][i].item() == pytest.approx(
            tangent(U, background).norm().item(), rel=1e-10)
        lr, b = pack.lr[i].item(), leading_feature(pack, i)
        assert measured["rare/alignment_push"][i].item() == pytest.approx(
            alignment_rate(U, b, lr * g_rare), abs=1e-10)
        assert measured["rare/alignment_pull"][i].item() == pytest.approx(
            alignment_rate(U, b, lr * (g - g_rare)), abs=1e-10)


def sampled_step(block: int = 0, steps: int = 37):
    """A trained sampled pack's next step, measured, and what an independent computation
    needs: the state before it and the batch it drew."""
    pack = trained_pack("sampled", block=block, steps=steps)
    twin = Pack(pack.setup, pack.members, dtype=torch.float64)  # draws the same batch
    twin.load_state_dicts(pack.state_dicts())
    Z, tasks = twin._draw(slice(None))
    before = [problem(pack, i) for i in range(2)]
    pack.train_step(measure=True)
    return pack, before, Z, tasks


def batch_gradients(pack, i, state, Z, tasks):
    """Member i's encoder gradients by autograd on the batch loss written out sample by
    sample, the rare samples masked by hand: g, g_task, g_nontask, and the rare samples'
    flags."""
    U, D, W, pi = state
    X = Z[i] @ pack.Q[i].T  # x = Q z, one sample a row

    def batch_loss(u, keep):
        """(1/B) sum over the kept samples b of ||D_{t_b} U^T x_b - W_{t_b} x_b||^2."""
        total = 0.0 * u.sum()
        for x, task, kept in zip(X, tasks[i].tolist(), keep):
            if kept:
                total = total + (D[task] @ (u.T @ x) - W[task] @ x).square().sum()
        return total / len(X)

    rare = [t == RARE for t in tasks[i].tolist()]
    g = encoder_grad(lambda u: batch_loss(u, [True] * len(X)), U)
    g_task = encoder_grad(lambda u: batch_loss(u, rare), U)
    g_nontask = encoder_grad(lambda u: batch_loss(u, [not r for r in rare]), U)
    assert torch.allclose(g_task + g_nontask, g)
    return g, g_task, g_nontask, rare


@pytest.mark.parametrize("block", [0, 8])
def test_sampled_interference_matches_autograd_on_tangent_vectors(block):
    pack, before, Z, tasks = sampled_step(block)
    measured = pack.step_measures
    injected = []
    for i, state in enumerate(before):
        U, D, W, pi = state
        g, g_task, g_nontask, rare = batch_gradients(pack, i, state, Z, tasks)
        rare_weight = torch.zeros(K, dtype=pi.dtype)
        rare_weight[RARE] = 1.0
        G_r = tangent(U, encoder_grad(lambda u: expected_loss(u, D, W, rare_weight), U))
        background = encoder_grad(lambda u: expected_loss(u, D, W, pi * (1 - rare_weight)), U)
        assert measured["rare/injected"][i].item() == sum(rare)
        assert measured["interference/cos_batch"][i].item() == pytest.approx(
            cos(tangent(U, g), G_r).item(), abs=1e-10)
        assert measured["interference/cos_nontask"][i].item() == pytest.approx(
            cos(tangent(U, g_nontask), G_r).item(), abs=1e-10)
        if any(rare):
            assert measured["interference/cos_task"][i].item() == pytest.approx(
                cos(tangent(U, g_task), G_r).item(), abs=1e-10)
        else:
            assert torch.isnan(measured["interference/cos_task"][i])  # not logged
        assert measured["interference/frequent_norm"][i].item() == pytest.approx(
            tangent(U, background).norm().item(), rel=1e-10)
        injected.append(sum(rare))
    assert any(injected), "the batch should hold some rare samples (f = 0.2, 0.05)"


def test_the_tangent_cosine_differs_from_the_euclidean_one():
    """The projection matters: on the same state the Euclidean cosine is another number
    (the within-span part the re-orthonormalisation discards), so the test above can fail."""
    pack, before, Z, tasks = sampled_step()
    for i, state in enumerate(before):
        U, D, W, pi = state
        g = batch_gradients(pack, i, state, Z, tasks)[0]
        rare_weight = torch.zeros(K, dtype=pi.dtype)
        rare_weight[RARE] = 1.0
        G_r = encoder_grad(lambda u: expected_loss(u, D, W, rare_weight), U)
        euclidean = cos(g, G_r).item()
        assert abs(pack.step_measures["interference/cos_batch"][i].item() - euclidean) > 1e-3


@pytest.mark.parametrize("block", [0, 8])
def test_push_and_pull_split_the_first_order_change_of_the_alignment(block):
    """push = the alignment's rate along the rare samples' part of the step, pull = along the
    rest's, by autograd on the batch loss and through the projector; push + pull = the rate
    along the whole step."""
    pack, before, Z, tasks = sampled_step(block)
    measured = pack.step_measures
    for i, state in enumerate(before):
        U = state[0]
        g, g_task, g_nontask, rare = batch_gradients(pack, i, state, Z, tasks)
        lr, b = pack.lr[i].item(), leading_feature(pack, i)
        push, pull = (measured[f"rare/alignment_{part}"][i].item() for part in ("push", "pull"))
        assert push == pytest.approx(alignment_rate(U, b, lr * g_task), abs=1e-10)
        assert pull == pytest.approx(alignment_rate(U, b, lr * g_nontask), abs=1e-10)
        assert push + pull == pytest.approx(alignment_rate(U, b, lr * g), abs=1e-10)
        assert push != 0 if any(rare) else push == 0
        assert pull != 0


@pytest.mark.parametrize("mode", ["population", "sampled"])
def test_push_and_pull_match_a_finite_difference_at_a_tiny_step(mode):
    pack = trained_pack(mode)
    pack.lr.fill_(1e-5)  # the same state, a step small enough for first order to hold
    before = pack.metrics()["rare/alignment"]
    pack.train_step(measure=True)
    change = pack.metrics()["rare/alignment"] - before
    predicted = pack.step_measures["rare/alignment_push"] + pack.step_measures[
        "rare/alignment_pull"]
    assert (predicted.abs() > 1e-11).all()  # changes far above float64's rounding
    # The second-order rest is O(lr^2): here 1e-6..1e-8 of the change (1e-4..1e-6 at 1e-3).
    assert torch.allclose(change, predicted, rtol=2e-5, atol=0)


def test_gradients_at_the_first_step_are_undefined_not_zero():
    setup = Setup(K, R, 8, mode="sampled")
    pack = Pack(setup, [Member(0.1, 0.5, 0)])
    pack.train_step(measure=True)  # decoders start at zero: every encoder gradient is 0
    assert torch.isnan(pack.step_measures["interference/cos_batch"]).all()
    assert pack.step_measures["rare/alignment_push"].item() == 0.0  # no change: logged as 0
    assert "interference/cos_batch" not in Pack(setup, [Member(0.1, 0.5, 0)]).metrics()


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
