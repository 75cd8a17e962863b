"""Seconds spent in training steps, without making the host wait for the GPU every step.

`torch.cuda.synchronize()` after each step would time it exactly but stall the host until
the GPU drains, so the next step's data read and kernel launches no longer overlap the
GPU's work. On a GPU the clock records a CUDA event before and after each step instead and
reads them (one wait, for the last) only when asked, at an evaluation or a checkpoint. A
step's span runs from the moment the GPU reaches its start event (the previous step done,
or the host's launch if the GPU was idle) to its end: the steps' GPU timeline, host stalls
inside a step included, the time between steps (logging) not. On the CPU a step is
synchronous and the wall clock times it.
"""

from __future__ import annotations

import time

import torch


class StepClock:
    def __init__(self, device: torch.device, seconds: float = 0.0):
        self.cuda = device.type == "cuda"
        self._seconds = seconds  # read so far
        self._spans: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []  # not read yet
        self._began = None

    def start(self) -> None:
        self._began = self._mark()

    def stop(self) -> None:
        if self.cuda:
            self._spans.append((self._began, self._mark()))
        else:
            self._seconds += self._mark() - self._began

    @property
    def seconds(self) -> float:
        """Every timed step's seconds; on a GPU waits for the last step to finish."""
        if self._spans:
            self._spans[-1][1].synchronize()
            self._seconds += sum(a.elapsed_time(b) for a, b in self._spans) / 1e3
            self._spans = []
        return self._seconds

    def _mark(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event
