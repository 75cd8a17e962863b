"""Task features (Figure 7) where the answer is known: real 4M models whose blocks are made the
identity and whose embedding of the task tokens is constructed, and representations built
directly."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from trainables.olmo import features

CPU = torch.device("cpu")
VALUES = np.arange(100)


def constructed(initial, cmp_task, rows: np.ndarray):
    """The 4M model with every block the identity (attention and MLP outputs zero) and the
    task token of value v embedded as rows[v]: its residual stream is the embedding."""
    net = copy.deepcopy(initial)
    with torch.no_grad():
        for block in net.transformer.blocks:
            block.attn_out.weight.zero_()
            block.ff_out.weight.zero_()
        net.transformer.wte.weight[torch.from_numpy(cmp_task.symbols)] = torch.from_numpy(
            rows).float()
    return net


def test_a_first_layer_that_encodes_the_value_linearly_gives_r2_near_1(initial, cmp_task):
    rng = np.random.default_rng(1)
    direction = rng.normal(size=64)
    rows = np.outer(VALUES - 49.5, direction) / 50 + 0.05 * rng.normal(size=(100, 64))
    linear = constructed(initial, cmp_task, rows)
    r2 = features.task_features(linear, "cmp", cmp_task.symbols, CPU, 0.01)
    assert r2["features/order_r2"] > 0.98
    untrained = features.task_features(initial, "cmp", cmp_task.symbols, CPU, 0.01)
    assert untrained["features/order_r2"] < 0.3  # random embeddings hold no order


def waves(frequencies, rng, noise=0.0, dim=64) -> np.ndarray:
    """Each frequency k on its own orthonormal pair: value v at angle 2 pi k v / 100 (so every
    row has the same norm, which the final RMSNorm then keeps)."""
    basis = np.linalg.qr(rng.normal(size=(dim, 2 * len(frequencies))))[0].T
    angle = 2 * np.pi * np.outer(VALUES, frequencies) / 100
    rows = np.cos(angle) @ basis[0::2] + np.sin(angle) @ basis[1::2]
    return rows + noise * rng.normal(size=rows.shape)


def test_fourier_modes_count_the_frequencies_in_the_model(initial, cmp_task):
    net = constructed(initial, cmp_task, waves([3, 11], np.random.default_rng(2)))
    states = features.token_states(net, cmp_task.symbols, CPU)
    assert len(states) == 8  # every block's residual stream
    assert features.significant_modes(states[0], 0.01) == {3, 11}
    assert features.task_features(net, "add", cmp_task.symbols, CPU, 0.01) == \
        {"features/fourier_modes": 2.0}


def test_fourier_modes_are_the_union_over_layers_and_absent_from_noise():
    rng = np.random.default_rng(3)
    layers = [waves([5], rng, noise=0.3), waves([5, 20], rng, noise=0.3),
              rng.normal(size=(100, 64))]
    assert [features.significant_modes(layer, 0.01) for layer in layers] == [{5}, {5, 20}, set()]
    shuffled = rng.permutation(100)  # the values of the rows, not their order, define the modes
    assert features.fourier_modes([layer[shuffled] for layer in layers], VALUES[shuffled],
                                  0.01) == 2


@pytest.mark.parametrize("noise, low, high", [(0.0, 0.999, 1.0), (1000.0, -np.inf, 0.2)])
def test_order_r2_measures_on_held_out_tokens(noise, low, high):
    rng = np.random.default_rng(4)
    states = np.outer(VALUES, rng.normal(size=64)) + noise * rng.normal(size=(100, 64))
    assert low <= features.order_r2(states, VALUES) <= high
