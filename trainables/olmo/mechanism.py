"""The paper's mechanism measurements in one run (Figures 7-9), as the loop calls them.

- every step: `rare/injected`, the instances in the step's global batch (from the schedule,
  so every process knows the global count);
- at every evaluation: the task's features (`features`);
- with `measure_every` > 0: interference (`interference`) every `measure_every` steps and at
  every step that injects, and retention (`retention`) at the states next to an injection.
With `measure_every: 0` a training step runs exactly as without this module: no hooks, no
extra passes. Steps: the metrics of training step k (global batch k - 1, trained from the
state after k - 1 steps) are logged at step k, with the evaluation of the state it led to.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from injection.schedule import Schedule
from injection.tasks import TaskSet
from trainables import periodic
from trainables.olmo import features, interference
from trainables.olmo.data import share
from trainables.olmo.evaluate import task_loss
from trainables.olmo.retention import Retention
from trainables.olmo.trainable import OlmoSection


class Mechanism:
    def __init__(self, section: OlmoSection, task: TaskSet, schedule: Schedule,
                 test: torch.Tensor | None, device: torch.device, rank: int, world_size: int):
        self.section, self.task, self.schedule = section, task, schedule
        self.test = test  # the task's evaluation instances; None on ranks that do not evaluate
        self.device, self.rank, self.world_size = device, rank, world_size
        ids = interference.spread(len(task.tokens), section.interference_instances)
        self.reference = torch.from_numpy(task.tokens[ids, :3])
        self.labels = torch.from_numpy(task.label_tokens)
        self.retention = Retention()

    @property
    def on(self) -> bool:
        return self.section.measure_every > 0

    def count(self, step: int) -> int:
        """Task instances in global batch `step`, the batch of training step `step` + 1."""
        if not 0 <= step < self.section.steps:
            return 0
        return self.schedule.injected_before(step + 1) - self.schedule.injected_before(step)

    def injects(self, step: int) -> bool:
        return self.count(step) > 0

    def at_state(self, model: torch.nn.Module, step: int, known: dict) -> dict[str, float]:
        """Retention at the state after `step` steps; `known` holds what this state's
        evaluation already measured (its `rare/test_loss` is reused, not recomputed)."""
        if not self.on or self.test is None:
            return {}

        def loss() -> float:
            if "rare/test_loss" in known:
                return known["rare/test_loss"]
            return task_loss(model, self.test, self.labels, self.device)

        return self.retention.observe(loss, self.injects(step - 1), self.injects(step))

    def features(self, model: torch.nn.Module) -> dict[str, float]:
        return features.task_features(model, self.task.task, self.task.symbols, self.device,
                                      self.section.fourier_p_value)

    def probe(self, model: torch.nn.Module, forward_model: torch.nn.Module, step: int):
        """What to enter around training step `step` + 1: an interference probe when the step
        is measured, else nothing at all."""
        if not self.on or not (self.injects(step) or periodic.due(
                step, self.section.measure_every, self.section.steps, last=False)):
            return nullcontext()
        plan = self.schedule.plan(step)
        task = torch.from_numpy(self.task.tokens[plan.instances, :3])
        lo, hi = share(self.section.batch_size, self.rank, self.world_size)
        rows = torch.zeros(hi - lo, dtype=torch.bool)
        rows[torch.from_numpy(plan.slice(lo, hi).rows)] = True
        predicted = self.section.batch_size * (self.section.seq_len - 1)
        return interference.probe(model, forward_model, self.reference, task, rows,
                                  1 / predicted, self.section.interference_neurons, self.device,
                                  self.rank, self.world_size)

    def state_dict(self) -> dict:
        return {"retention": self.retention.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.retention.load_state_dict(state["retention"])

