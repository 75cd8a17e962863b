"""OLMo pretraining with an injected task as the service sees it (CONTRACTS 6): its spec
section, grid rules, how a grid point runs, and what "learned" means. Light: the model, data
and loop (`trainables.olmo.loop`) are imported inside trials alone.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from injection.errors import InjectionError
from injection.schedule import check as check_schedule
from trainables.contract import FieldError, Scheduled, Trainable
from trainables.olmo.ladder import LADDER
from trainables.olmo.recipe import WARMUP_SHARE, ladder_lr
from trainables.points import Point
from tracking.curves import Measure

EVALS_PER_RUN = 10  # default eval_every: about this many metric points per run
CHECKPOINTS_PER_RUN = 4  # default checkpoint_every
LEARNED_ACC = 0.9  # rare/test_acc that counts as learned: well above cmp's chance (0.5)


class OlmoSection(Scheduled):
    """CONTRACTS 6. Defaults make a short CPU run of the 4M model (a few minutes); the
    presets scale them. `lr`, `warmup_steps`, `eval_every`, `checkpoint_every` left out are
    derived from the size and `steps`."""

    steps: int = Field(300, ge=1, description="training steps (global batches), >= 1")
    seq_len: int = Field(128, ge=4, description="tokens per sequence, >= 4")
    batch_size: int = Field(16, ge=1, description="sequences per global batch, >= 1")
    micro_batch_size: int | None = Field(
        None, ge=1, description="sequences per forward pass on a worker (gradient accumulation), "
                                ">= 1 (default: the worker's whole share)")
    lr: float | None = Field(None, gt=0, description="peak learning rate > 0 (default: from size)")
    warmup_steps: int | None = Field(None, ge=0, description="linear warm-up steps, >= 0")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations, >= 1")
    eval_instances: int = Field(
        1000, ge=1, description="task instances (and reference statements) per evaluation, >= 1")
    checkpoint_every: int | None = Field(None, ge=1, description="steps between checkpoints, >= 1")
    corpus: str | None = Field(
        None, description="folder of an OLMo-format corpus (`sweeps corpus build`); "
                          "default: the embedded corpus")

    @field_validator("corpus")
    @classmethod
    def corpus_exists(cls, value: str | None) -> str | None:
        from injection.corpus import MANIFEST

        if value is not None and not (Path(value).expanduser() / MANIFEST).is_file():
            raise ValueError(f"{value!r} is not a corpus folder (no {MANIFEST} in it): build one "
                             "with `sweeps corpus build SOURCE --out DIR`, or leave corpus out "
                             "for the embedded corpus")
        return None if value is None else str(Path(value).expanduser().resolve())


class Olmo(Trainable):
    name = "olmo"
    tasks = ("cmp", "add")
    section = OlmoSection
    worker = "trainables.olmo.loop:train_fn_per_worker"
    columns = ("train/loss", "rare/test_acc", "rare/test_loss", "rare/train_loss", "ref/loss",
               "throughput/tokens_per_s")

    def check_grid(self, grid, section: OlmoSection, resources) -> None:
        super().check_grid(grid, section, resources)
        for i, width in enumerate(grid.width):
            if width not in LADDER:
                raise FieldError(f"grid.width[{i}]", width,
                                 f"olmo widths are model ladder names: {', '.join(LADDER)}")
        for i, frequency in enumerate(grid.frequency):
            try:
                check_schedule(frequency, section.batch_size, section.seq_len,
                               block=section.block)
            except InjectionError as err:
                raise FieldError(f"grid.frequency[{i}]", frequency,
                                 f"{err} (olmo.seq_len, olmo.batch_size, olmo.schedule)")
        workers = resources.workers
        if section.batch_size % workers:
            raise FieldError("olmo.batch_size", section.batch_size,
                             f"must be a multiple of resources.workers = {workers}, so every "
                             "worker trains an equal share of each global batch")
        share = section.batch_size // workers
        if section.micro_batch_size is not None and share % section.micro_batch_size:
            raise FieldError("olmo.micro_batch_size", section.micro_batch_size,
                             f"must divide a worker's share of the batch, batch_size / workers"
                             f" = {share}")

    def resolve(self, section: OlmoSection, point: Point) -> OlmoSection:
        steps = section.steps
        return section.model_copy(update={
            "lr": section.lr or ladder_lr(point.width),
            "warmup_steps": (section.warmup_steps if section.warmup_steps is not None
                             else round(WARMUP_SHARE * steps)),
            "eval_every": section.eval_every or max(1, steps // EVALS_PER_RUN),
            "checkpoint_every": section.checkpoint_every or max(1, steps // CHECKPOINTS_PER_RUN),
        })

    def measure(self, params: dict[str, str]) -> Measure:
        return Measure(loss="rare/test_loss", score="rare/test_acc", threshold=LEARNED_ACC,
                       lower_is_better=False)

    def describe(self, runs: list[tuple[Point, OlmoSection]]) -> list[str]:
        section = runs[0][1]
        tokens = section.steps * section.batch_size * section.seq_len
        lines = [f"steps     {section.steps} of {section.batch_size} x {section.seq_len} tokens "
                 f"({tokens:,} tokens per point); corpus {section.corpus or 'embedded'}"]
        for width in dict.fromkeys(point.width for point, _ in runs):
            lr = next(s.lr for p, s in runs if p.width == width)
            lines.append(f"{width:>5}     {LADDER[width].non_embedding_params:,} non-embedding "
                         f"parameters, depth {LADDER[width].depth}, peak lr {lr:.3g}")
        return lines


OLMO = Olmo()
