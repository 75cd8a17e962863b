"""Finding trainables by name: the `scaling_sweeps.trainables` entry-point group.

The built-ins are registered there by this project's `pyproject.toml`, exactly as a user's
package registers its own:

    [project.entry-points."scaling_sweeps.trainables"]
    mine = "my_package.trainable:MINE"      # an instance of trainables.contract.Trainable
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from tracking.errors import UserError
from trainables.contract import Trainable

GROUP = "scaling_sweeps.trainables"


class UnknownTrainable(UserError):
    """A trainable name no installed package registers."""


@functools.cache
def names() -> tuple[str, ...]:
    """Every registered trainable, sorted."""
    return tuple(sorted({ep.name for ep in entry_points(group=GROUP)}))


@functools.cache
def get(name: str) -> Trainable:
    """The registered trainable `name`, loaded (its light module only)."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        raise UnknownTrainable(
            f"{name!r} is not a registered trainable (registered: {', '.join(names())}): "
            f"check the spelling, or install the package that registers it under the "
            f"entry-point group {GROUP!r}")
    trainable = found[0].load()
    if not isinstance(trainable, Trainable) or trainable.name != name:
        raise TypeError(f"entry point {found[0].value} ({name}) must be an instance of "
                        f"trainables.contract.Trainable named {name!r}")
    return trainable
