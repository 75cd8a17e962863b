"""Task features in the model's representations, the paper's Figure 7 (CONTRACTS 6).

The 100 task tokens S are read alone, at position 0 (where an instance's TOK1 sits: attention
is causal, so this is TOK1's representation in every instance), and their residual stream is
taken after every block.
- `features/order_r2` (cmp, global order): R^2 of a linear probe for value(token) from the
  first block's residual stream, reduced to its top 50 principal components (the paper's
  K = 50), on held-out tokens: 5-fold cross-validation, the components and the regression
  fitted on each fold's training tokens; R^2 of the out-of-fold predictions. Near 1 when the
  value is a linear direction; 0 or below when it is not there.
- `features/fourier_modes` (add, Fourier features): for each block, the representations in
  value order are Fourier-transformed along the value axis; frequency k (1..50) has
  significant power when it beats the largest power of any frequency in random orders of the
  tokens in a (1 - p) share of `SHUFFLES` shuffles (p = `fourier_p_value`). The metric is the
  number of frequencies significant in at least one block.
Both are plain functions of the representations, testable on constructed ones.
"""

from __future__ import annotations

import numpy as np
import torch

COMPONENTS = 50  # the paper's top-K principal components of the probe
FOLDS = 5
SHUFFLES = 200
SEED = 0  # fold assignment and shuffles: fixed, and never the training RNG


@torch.no_grad()
def token_states(model: torch.nn.Module, symbols: np.ndarray,
                 device: torch.device) -> list[np.ndarray]:
    """Residual stream of each token read alone, after every block: (tokens, d) per block."""
    was_training = model.training
    model.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        tokens = torch.as_tensor(symbols, dtype=torch.long, device=device)[:, None]
        hidden = model(tokens, output_hidden_states=True).hidden_states
    model.train(was_training)
    # hidden[0] is the embedding, hidden[i] the stream after block i (the last after ln_f).
    return [h[:, 0].float().cpu().numpy().astype(np.float64) for h in hidden[1:]]


def order_r2(states: np.ndarray, values: np.ndarray, components: int = COMPONENTS,
             folds: int = FOLDS) -> float:
    """Cross-validated R^2 of value ~ linear(top principal components of states)."""
    values = np.asarray(values, dtype=np.float64)
    fold = np.random.default_rng(SEED).permutation(len(values)) % folds
    predicted = np.empty_like(values)
    for f in range(folds):
        train, test = fold != f, fold == f
        mean = states[train].mean(axis=0)
        _, _, vt = np.linalg.svd(states[train] - mean, full_matrices=False)
        basis = vt[:min(components, train.sum() - 1)].T

        def design(rows):
            return np.column_stack([np.ones(len(rows)), (rows - mean) @ basis])

        coef, *_ = np.linalg.lstsq(design(states[train]), values[train], rcond=None)
        predicted[test] = design(states[test]) @ coef
    residual = ((values - predicted) ** 2).sum()
    return float(1 - residual / ((values - values.mean()) ** 2).sum())


def fourier_power(ordered: np.ndarray) -> np.ndarray:
    """Power at frequencies 1..n/2 of (n, d) rows ordered by value, summed over dimensions
    (stacked inputs: (..., n, d) -> (..., n/2)). Both signs of a frequency count."""
    centred = ordered - ordered.mean(axis=-2, keepdims=True)
    power = (np.abs(np.fft.fft(centred, axis=-2)) ** 2).sum(axis=-1)
    n = ordered.shape[-2]
    half = np.arange(1, n // 2 + 1)
    return power[..., half] + np.where(half == n - half, 0, power[..., (n - half) % n])


def significant_modes(ordered: np.ndarray, p_value: float) -> set[int]:
    """Frequencies whose power beats the (1 - p) quantile of the largest power over all
    frequencies in shuffled value orders (a family-wise test over frequencies)."""
    centred = ordered - ordered.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    reduced = u * s  # the same power spectrum in at most n dimensions
    rng = np.random.default_rng(SEED)
    shuffles = np.stack([reduced[rng.permutation(len(reduced))] for _ in range(SHUFFLES)])
    threshold = np.quantile(fourier_power(shuffles).max(axis=-1), 1 - p_value)
    power = fourier_power(reduced)
    return {int(k) for k in np.flatnonzero(power > threshold) + 1}


def fourier_modes(states: list[np.ndarray], values: np.ndarray, p_value: float) -> int:
    """Frequencies significant in at least one block's representations."""
    order = np.argsort(values)
    return len(set().union(*(significant_modes(layer[order], p_value) for layer in states)))


def task_features(model: torch.nn.Module, task: str, symbols: np.ndarray,
                  device: torch.device, p_value: float) -> dict[str, float]:
    """The task's feature metric: order for cmp, Fourier modes for add."""
    states = token_states(model, symbols, device)
    values = np.arange(len(symbols))  # symbols[v] has value v
    if task == "cmp":
        return {"features/order_r2": order_r2(states[0], values)}
    return {"features/fourier_modes": float(fourier_modes(states, values, p_value))}
