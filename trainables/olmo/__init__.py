"""OLMo pretraining with an injected task (CONTRACTS 6). `trainable` is its contract (light);
`ladder` and `recipe` the model sizes and their training recipe; `model`, `data`, `evaluate`
the numerical parts (torch); `loop` the per-worker loop (Ray)."""

from trainables.olmo.trainable import OLMO, OlmoSection

__all__ = ["OLMO", "OlmoSection"]
