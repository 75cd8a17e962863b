"""The chunked loss is the plain one: `F.cross_entropy` over the whole batch's logits, in
value and in both gradients, in float32 and under bf16 autocast, and inside the real model."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from trainables.olmo.loss import lm_loss


def plain(hidden, weight, targets):
    """Today's loss: the whole batch's logits, cast to float32, then cross-entropy."""
    logits = F.linear(hidden, weight).float()
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), reduction="sum")


def value_and_grads(loss_fn, hidden, weight, targets, autocast: bool = False):
    hidden, weight = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = loss_fn(hidden, weight, targets)
    loss.backward()
    return loss.detach(), hidden.grad, weight.grad


@pytest.fixture
def case():
    """3 x 7 positions (21 rows: chunks of 5 leave a last one of 1), d 16, a vocabulary of 97."""
    g = torch.Generator().manual_seed(0)
    return (torch.randn(3, 7, 16, generator=g), torch.randn(97, 16, generator=g) / 4,
            torch.randint(0, 97, (3, 7), generator=g))


def test_chunked_loss_and_gradients_equal_the_plain_loss_in_float32(case):
    ours = value_and_grads(lambda h, w, y: lm_loss(h, w, y, chunk=5), *case)
    expected = value_and_grads(plain, *case)
    for got, want in zip(ours, expected):
        assert got.dtype == want.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_chunked_loss_under_bf16_autocast_equals_the_plain_loss_within_bf16(case):
    ours = value_and_grads(lambda h, w, y: lm_loss(h, w, y, chunk=5), *case, autocast=True)
    expected = value_and_grads(plain, *case, autocast=True)
    exact = value_and_grads(plain, *case)
    torch.testing.assert_close(ours[0], expected[0], rtol=1e-4, atol=0)
    for got, want in zip(ours[1:], expected[1:]):
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-3)  # bf16 products
    # Both differ from float32 by bf16 rounding alone: the logits are bf16 products in both.
    assert abs(ours[0] - exact[0]) / exact[0] < 1e-2


def test_the_models_loss_is_cross_entropy_of_its_own_logits(initial):
    """`model(tokens, labels=tokens)` (the hidden states through the chunked loss) equals the
    plain loss on OLMo's logits, and so do the gradients of every parameter."""
    tokens = torch.randint(0, 50_000, (2, 16), generator=torch.Generator().manual_seed(1))
    ours, theirs = copy.deepcopy(initial), copy.deepcopy(initial)
    loss = ours(tokens, labels=tokens)
    logits = theirs(tokens).logits[:, :-1]
    expected = F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten(),
                               reduction="sum")
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=0)
    loss.backward()
    expected.backward()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)
