"""The one helper that decides every periodic action of a training loop (big_vision's
`itstime`): evaluate, log, checkpoint, measure."""

from __future__ import annotations


def due(step: int, every: int, total: int, first: bool = True, last: bool = True) -> bool:
    """Whether a loop at `step` (of `total`) acts now: at step 0 if `first`, at `total` if
    `last`, and on the way every `every` steps (never if `every` is 0)."""
    if step == 0:
        return first
    return (every > 0 and step % every == 0) or (last and step == total)
