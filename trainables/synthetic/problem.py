"""The problem a synthetic pack trains: what its members share (`Setup`) and what each one
has of its own (`Member`). Light (numpy only), so the contract's side and the numerical core
derive a member's spectrum and default step size from the same two methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trainables.synthetic import theory


@dataclass(frozen=True)
class Member:
    """One grid point of a pack: what differs between members of the same width."""

    frequency: float
    rare_decay: float
    seed: int
    lr: float | None = None  # None: the spectrum's default (`Setup.lr`)


@dataclass(frozen=True)
class Setup:
    """What all members of a pack share."""

    tasks: int
    features_per_task: int
    width: int
    zipf: float = 1.0
    background_decay: float = 2.0
    mode: Literal["population", "sampled"] = "population"
    block: int = 0  # sampled only: 0 draws the rare task i.i.d., n > 0 delivers it n at a time
    batch_size: int = 256
    learned_threshold: float = 0.5
    tolerance: float = 0.0  # when a member has converged (`stopping`); 0: run to its cap

    @property
    def dim(self) -> int:
        return self.tasks * self.features_per_task

    def spectrum(self, member: Member) -> theory.Spectrum:
        """The member's task frequencies and feature spectra."""
        return theory.Spectrum.build(self.tasks, self.features_per_task, self.zipf,
                                     self.background_decay, member.rare_decay, member.frequency)

    def lr(self, member: Member) -> float:
        """The member's step size: its own, else `theory.default_lr`, the same for every width."""
        return member.lr or theory.default_lr(self.spectrum(member), self.mode,
                                              self.batch_size, self.block)
