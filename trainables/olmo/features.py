"""Task features in the model's representations, the paper's Figure 7 (CONTRACTS 6).

- `features/order_r2` (cmp, global order): R^2 of a linear probe for value(token) from the
  first block's residual stream, on held-out tokens. The points are both positions of
  `CONTEXTS` x 100 task instances (each token read as TOK2 after `CONTEXTS` different TOK1s,
  and as TOK1 at position 0, where it is read alone): the states a trained model's first
  block gives a task token in the contexts training shows it. The probe is ridge regression
  with its penalty chosen by an inner cross-validation (nested: 5 folds of tokens outside, 5
  inside each outer training set, every point of a token in the same fold), each position
  centred on its own training mean; R^2 of the out-of-fold predictions. Near 1 when the value
  is a linear direction; 0 or below when it is not there. Why not the paper's top K = 50
  principal components: with 80 training tokens a 50-component regression overfits by an
  amount that depends on the width (at zero signal -1.9 at width 64, -0.36 at 192), so the
  same feature read 0.03 in one model and 0.36 in another; the ridge penalty adapts instead,
  and the contexts add points where the context varies the state. The limit that stays:
  noise the 100 tokens carry themselves (the same in every context) is sampled 100 times,
  so at equal noise per dimension a wider stream reads somewhat lower (docs/explanation/olmo.md).
- `features/fourier_modes` (add, Fourier features): the 100 task tokens read alone at position
  0, after every block; the representations in value order are Fourier-transformed along the
  value axis; frequency k (1..50) has significant power when it beats the largest power of any
  frequency in random orders of the tokens in a (1 - p) share of `SHUFFLES` shuffles
  (p = `fourier_p_value`). The metric is the number of frequencies significant in at least
  one block.
Both are plain functions of the representations, testable on constructed ones.
"""

from __future__ import annotations

import numpy as np
import torch

from trainables.olmo.model import INSTANCE_CHUNK, eager

CONTEXTS = 20  # instances per task token in the order probe
FOLDS = 5
PENALTIES = 10.0 ** np.arange(-4, 4.01, 0.5)  # ridge, in units of the mean squared singular value
SHUFFLES = 200
SEED = 0  # fold assignment, contexts and shuffles: fixed, and never the training RNG


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


def order_instances(contexts: int = CONTEXTS) -> tuple[np.ndarray, np.ndarray]:
    """Values (TOK1, TOK2) of the probed instances: every value as TOK2 after `contexts`
    distinct TOK1s, and (the first 100) every value once as TOK1."""
    shifts = np.random.default_rng(SEED).choice(100, contexts, replace=False)
    second = np.tile(np.arange(100), contexts)
    return (second + np.repeat(shifts, 100)) % 100, second


@torch.no_grad()
def first_block_states(model: torch.nn.Module, symbols: np.ndarray, device: torch.device,
                       contexts: int = CONTEXTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first block's residual stream at the task tokens of `order_instances`: states
    (n, d), the value of the token read at each, and its position (0: TOK1, 1: TOK2)."""
    first, second = order_instances(contexts)
    ids = torch.from_numpy(np.stack([symbols[first], symbols[second]], axis=1))
    was_training = model.training
    model.eval()
    parts = []
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for chunk in ids.split(INSTANCE_CHUNK):
            parts.append(first_block(model, chunk.to(device)).float().cpu())
    model.train(was_training)
    states = torch.cat(parts).double().numpy()  # (instances, 2, d)
    tok1 = states[:100, 0]  # position 0 depends on TOK1 alone: once per token
    return (np.concatenate([tok1, states[:, 1]]), np.concatenate([first[:100], second]),
            np.repeat([0, 1], [100, len(second)]))


def first_block(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The residual stream after the first block, `hidden_states[1]` of OLMo's forward: the
    embedding and the first block alone (eagerly), except under FSDP, whose parameters are
    whole only inside its own forward."""
    from torch.distributed.fsdp import FullyShardedDataParallel

    if isinstance(model, FullyShardedDataParallel):
        return model(ids, output_hidden_states=True, last_logits_only=True).hidden_states[1]
    trunk = model.transformer
    with eager():
        x, _ = trunk.blocks[0](trunk.emb_drop(trunk.wte(ids)))
    return x


def order_r2(states: np.ndarray, values: np.ndarray, positions: np.ndarray | None = None,
             folds: int = FOLDS) -> float:
    """Nested cross-validated R^2 of value ~ ridge(states), folds of whole tokens (values),
    each position centred on its training mean."""
    values = np.asarray(values, dtype=np.float64)
    positions = np.zeros(len(values), dtype=np.int64) if positions is None else positions
    outer = _token_folds(values, folds, SEED)
    residual = np.empty_like(values)
    for f in range(folds):
        train = outer != f
        x, y = _centred(states, values, positions, train)
        inner = _token_folds(values[train], folds, SEED + 1)
        xt, yt, pt = states[train], values[train], positions[train]
        errors = np.zeros(len(PENALTIES))
        for g in range(folds):
            fit = inner != g
            xi, yi = _centred(xt, yt, pt, fit)
            guess = _ridge(xi[fit], yi[fit], xi[~fit], PENALTIES)
            errors += ((guess - yi[~fit, None]) ** 2).sum(axis=0)
        best = PENALTIES[[int(errors.argmin())]]
        residual[~train] = y[~train] - _ridge(x[train], y[train], x[~train], best)[:, 0]
    return float(1 - (residual ** 2).sum() / ((values - values.mean()) ** 2).sum())


def _token_folds(values: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold of each point: its token's (value's), every token's points in one fold."""
    tokens, index = np.unique(values, return_inverse=True)
    return (np.random.default_rng(seed).permutation(len(tokens)) % folds)[index]


def _centred(states, values, positions, train) -> tuple[np.ndarray, np.ndarray]:
    """States and values less the means of the training points at the same position."""
    x, y = states.astype(np.float64, copy=True), values.astype(np.float64, copy=True)
    for p in np.unique(positions):
        at = positions == p
        x[at] -= states[at & train].mean(axis=0)
        y[at] -= values[at & train].mean()
    return x, y


def _ridge(x: np.ndarray, y: np.ndarray, test: np.ndarray, penalties: np.ndarray) -> np.ndarray:
    """Predictions (test, penalties) of ridge fits of centred y on centred x (n, d), the
    penalty in units of the mean squared singular value of x (so it means the same at any
    width); through the smaller of x^T x and x x^T."""
    n, d = x.shape
    if d <= n:  # beta = V (L + a)^-1 V^T x^T y, x^T x = V L V^T
        eigen, basis = np.linalg.eigh(x.T @ x)
        along, read = basis.T @ (x.T @ y), test @ basis
    else:  # beta = x^T U (M + a)^-1 U^T y, x x^T = U M U^T
        eigen, basis = np.linalg.eigh(x @ x.T)
        along, read = basis.T @ y, test @ x.T @ basis
    eigen = eigen.clip(min=0)
    scale = eigen.sum() / min(n, d)
    return read @ (along / (eigen + penalties[:, None] * scale)).T


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
    if task == "cmp":
        return {"features/order_r2": order_r2(*first_block_states(model, symbols, device))}
    states = token_states(model, symbols, device)
    values = np.arange(len(symbols))  # symbols[v] has value v
    return {"features/fourier_modes": float(fourier_modes(states, values, p_value))}
