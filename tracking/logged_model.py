"""What a trainable hands the tracker to log as its trained model: the trainable owns the
format, the tracker (and `tracking.registry`) log it. Its own module, so that both can name it
without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LoggedModel:
    """A trained model as MLflow logs it: a models-from-code pyfunc file, its artifacts, its
    signature and an input example (the trainable owns the format, the tracker logs it)."""

    code: Path
    artifacts: dict[str, Path]
    signature: Any
    example: Any
    code_paths: list[Path] = field(default_factory=list)
