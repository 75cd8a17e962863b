"""OLMo pretraining with an injected task as the service sees it (CONTRACTS 6): its spec
section, grid rules, how a grid point runs, and what "learned" means. Light: the model, data
and loop (`trainables.olmo.loop`) are imported inside trials alone.
"""

from __future__ import annotations

import functools
import os
from fractions import Fraction
from typing import Any, Literal

from pydantic import Field, field_validator

from injection.errors import InjectionError
from injection.schedule import check as check_schedule
from injection.schedule import exact_frequency
from trainables.contract import FieldError, Scheduled, Strict, Trainable
from trainables.olmo import footprint, recipe
from trainables.olmo.ladder import LADDER, target
from trainables.points import Point
from tracking.curves import Measure

EVALS_PER_RUN = 10  # default eval_every: about this many metric points per run
CHECKPOINTS_PER_RUN = 4  # default checkpoint_every
LEARNED_ACC = 0.9  # rare/test_acc that counts as learned: well above cmp's chance (0.5)
TASK_INSTANCES = 10_000  # injection.tasks.INSTANCES, without importing the task builder
CORPUS_ENV = "SWEEPS_CORPUS"  # the default corpus, set on a cluster's nodes (cluster.yaml)


class AdamW(Strict):
    beta1: float = Field(recipe.BETAS[0], ge=0, lt=1, description="0 <= beta1 < 1")
    beta2: float = Field(recipe.BETAS[1], ge=0, lt=1, description="0 <= beta2 < 1")
    eps: float = Field(recipe.EPS, gt=0, description="eps > 0")
    weight_decay: float = Field(recipe.WEIGHT_DECAY, ge=0,
                                description="decoupled weight decay on every parameter, >= 0")


class OlmoSection(Scheduled):
    """CONTRACTS 6. Every training default is OLMo's ladder recipe for the grid point's size
    (`recipe`); a field left out (None) is derived per grid point, and the plan records the
    derived value. Measurement (`measure_every`) is off by default."""

    steps: int | None = Field(None, ge=1, description="training steps (global batches), >= 1 "
                                                       "(default: tokens_per_param)")
    tokens_per_param: float | None = Field(
        None, gt=0, description="train this many tokens per parameter of the size's name, > 0 "
                                "(default 20, OLMo's ladder 1xC), instead of a fixed `steps`")
    seq_len: int = Field(128, ge=4, description="tokens per sequence, >= 4")
    batch_size: int | None = Field(
        None, ge=1, description="sequences per global batch, >= 1 (default: OLMo's ladder, "
                                "160 (N/108M)^(2/3) x 2048/seq_len in multiples of 32)")
    micro_batch_size: int | None = Field(
        None, ge=1, description="at most this many sequences per forward pass on a worker "
                                "(gradient accumulation), >= 1 (default: the worker's share)")
    lr: float | None = Field(None, gt=0, description="peak learning rate > 0 "
                                                     "(default: 0.0047 (N/108M)^(-1/3))")
    final_lr: float = Field(recipe.FINAL_LR, ge=0, le=1,
                            description="the cosine's end as a share of the peak, 0..1")
    warmup_steps: int | None = Field(None, ge=0, description="linear warm-up steps, >= 0 "
                                                             "(default: N tokens)")
    adamw: AdamW = AdamW()
    grad_clip: float = Field(recipe.CLIP, gt=0, description="gradient norm clip, > 0")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations, >= 1")
    eval_instances: int = Field(
        1000, ge=1, description="task instances (and reference statements) per evaluation, >= 1")
    checkpoint_every: int | None = Field(None, ge=1, description="steps between checkpoints, >= 1")
    corpus: str | None = Field(
        None, validate_default=True,
        description="an OLMo-format corpus, a folder or an s3:// or gs:// URI (`sweeps corpus "
                    "build`, `sweeps corpus adopt`); default: $SWEEPS_CORPUS where set (a "
                    "cluster's setting), else the embedded corpus")
    measure_every: int = Field(
        0, ge=0, description="steps between mechanism measurements (interference, retention), "
                             "also every step that injects; 0: off, >= 0")
    interference_instances: int = Field(
        TASK_INSTANCES, ge=1, le=TASK_INSTANCES,
        description="task instances (train and test) whose gradient is the reference g_r, "
                    "1..10000")
    interference_neurons: int = Field(
        100, ge=1, description="first-layer MLP neurons (largest |g_r|) the cosines use, >= 1")
    parallel: Literal["auto", "ddp", "fsdp"] = Field(
        "auto", description="how several workers share the model: ddp (replicas), fsdp "
                            "(sharded by block), or auto: fsdp from 1B up on GPUs, else ddp")
    compile: bool | None = Field(
        None, description="torch.compile the training step (each block and the loss); "
                          "default (null): on where the worker has a CUDA GPU")
    fourier_p_value: float = Field(
        0.01, gt=0, lt=1, description="significance of a Fourier mode against shuffled "
                                      "token orders, 0 < p < 1")

    @field_validator("corpus")
    @classmethod
    def corpus_exists(cls, value: str | None) -> str | None:
        from injection.corpus import check

        value = value or os.environ.get(CORPUS_ENV) or None
        try:
            return None if value is None else check(value)
        except InjectionError as err:
            raise ValueError(str(err))

    def global_batch(self, width: str) -> int:
        return self.batch_size or recipe.batch_size(width, self.seq_len)


class Olmo(Trainable):
    name = "olmo"
    tasks = ("cmp", "add")
    section = OlmoSection
    worker = "trainables.olmo.loop:train_fn_per_worker"
    columns = ("train/loss", "rare/test_acc", "rare/test_loss", "rare/train_loss", "ref/loss",
               "throughput/tokens_per_s")

    def check_grid(self, grid, section: OlmoSection, resources) -> None:
        super().check_grid(grid, section, resources)
        if section.steps is not None and section.tokens_per_param is not None:
            raise FieldError("olmo.tokens_per_param", section.tokens_per_param,
                             f"olmo.steps = {section.steps} is set too: set one of the two")
        for i, width in enumerate(grid.width):
            if width not in LADDER:
                raise FieldError(f"grid.width[{i}]", width,
                                 f"olmo widths are model ladder names: {', '.join(LADDER)}")
        for width in grid.width:
            self._check_batch(grid, section, resources.workers, width)
        fewest = min(grid.width, key=lambda w: LADDER[w].neurons)
        if section.interference_neurons > LADDER[fewest].neurons:
            raise FieldError("olmo.interference_neurons", section.interference_neurons,
                             f"the {fewest} model's first MLP has only {LADDER[fewest].neurons} "
                             "neurons")

    @staticmethod
    def _check_batch(grid, section: OlmoSection, workers: int, width: str) -> None:
        batch = section.global_batch(width)
        source = "" if section.batch_size else f" (OLMo's ladder batch at {width})"
        for i, frequency in enumerate(grid.frequency):
            try:
                check_schedule(frequency, batch, section.seq_len, block=section.block)
            except InjectionError as err:
                raise FieldError(f"grid.frequency[{i}]", frequency,
                                 f"{err}, at batch {batch}{source} (olmo.seq_len, "
                                 "olmo.batch_size, olmo.schedule)")
        if batch % workers:
            raise FieldError("olmo.batch_size", batch,
                             f"must be a multiple of resources.workers = {workers}, so every "
                             f"worker trains an equal share of each global batch{source}")

    def resolve(self, section: OlmoSection, point: Point) -> OlmoSection:
        width = point.width
        batch = section.global_batch(width)
        tokens = batch * section.seq_len
        steps = section.steps or recipe.steps(
            width, tokens, section.tokens_per_param or recipe.TOKENS_PER_PARAM)
        return section.model_copy(update={
            "steps": steps,
            "batch_size": batch,
            "lr": section.lr or recipe.peak_lr(width),
            "warmup_steps": (section.warmup_steps if section.warmup_steps is not None
                             else recipe.warmup_steps(width, tokens, steps)),
            "eval_every": section.eval_every or max(1, steps // EVALS_PER_RUN),
            "checkpoint_every": section.checkpoint_every or max(1, steps // CHECKPOINTS_PER_RUN),
        })

    def derived(self, section: OlmoSection, point: Point) -> dict[str, Any]:
        size, embedding = LADDER[point.width], _embedding_size(section.corpus)
        tokens = section.steps * section.batch_size * section.seq_len
        return {
            "model": {"d_model": size.d_model, "n_layers": size.depth, "n_heads": size.heads,
                      "params": size.params(embedding),
                      "non_embedding_params": size.non_embedding_params(embedding)},
            "injection": {"instances_per_batch": instances_per_batch(
                point.frequency, section.batch_size, section.seq_len)},
            "training": {"tokens": tokens,
                         "tokens_per_param": round(tokens / target(point.width), 4)},
        }

    def cost(self, params: dict[str, str]) -> float:
        """Training FLOPs, 6 x parameters x tokens: wider models first, as they take longest."""
        return 6.0 * float(params["model.params"]) * float(params["training.tokens"])

    def measure(self, params: dict[str, str]) -> Measure:
        return Measure(loss="rare/test_loss", score="rare/test_acc", threshold=LEARNED_ACC,
                       lower_is_better=False)

    def describe(self, runs: list[tuple[Point, OlmoSection]]) -> list[str]:
        section = runs[0][1]
        by_width = {point.width: (point, s) for point, s in runs}
        lines = [f"corpus    {section.corpus or 'embedded'}; sequences of {section.seq_len} "
                 "tokens; OLMo's ladder (N = the size's name):",
                 f"  {'size':>5} {'d x layers':>11} {'heads':>5} {'params*':>14} {'batch':>6} "
                 f"{'peak lr':>8} {'warm-up':>7} {'steps':>7} {'tokens':>10} {'tok/param':>9}"]
        for width, (point, s) in by_width.items():
            facts = self.derived(s, point)
            lines.append(
                f"  {width:>5} {LADDER[width].d_model:>6} x {LADDER[width].depth:<3} "
                f"{LADDER[width].heads:>5} {facts['model']['non_embedding_params']:>14,} "
                f"{s.batch_size:>6} {s.lr:>8.3g} {s.warmup_steps:>7} {s.steps:>7} "
                f"{facts['training']['tokens']:>10.3g} "
                f"{facts['training']['tokens_per_param']:>9.3g}")
        lines.append("  * non-embedding, as OLMo counts: all but the input embedding")
        arrival = (f"; in blocks of {section.block}" if section.block else "")
        lines.append("frequency (instances per training token) = instances per global batch "
                     f"(1/n: one every n batches{arrival}):")
        lines.append(f"  {'frequency':>10} " + " ".join(f"{w:>10}" for w in by_width))
        for frequency in dict.fromkeys(point.frequency for point, _ in runs):
            lines.append(f"  {frequency:>10.3g} " + " ".join(
                f"{per_batch(instances_per_batch(frequency, s.batch_size, s.seq_len)):>10}"
                for _, s in by_width.values()))
        compiled = {None: "on GPU workers", True: "on", False: "off"}[section.compile]
        lines.append(f"compile   the training step (torch.compile): {compiled}")
        if section.measure_every:
            lines.append(f"measure   every {section.measure_every} steps and every step that "
                         f"injects: g_r from {section.interference_instances:,} instances, "
                         f"{section.interference_neurons} first-layer MLP neurons")
        return lines


    def prepare(self, section: OlmoSection) -> None:
        """The embedded corpus and its reference tasks, built here once per machine, so no
        trial on this machine builds or scans it (a cluster node without it builds it at its
        first trial; a real corpus is made before the sweep: `sweeps corpus ...`)."""
        if section.corpus is None:
            from injection import corpus as corpora

            corpora.embedded()

    def local_paths(self, section: OlmoSection) -> dict[str, str]:
        from injection.location import is_remote

        corpus = section.corpus
        return {"olmo.corpus": corpus} if corpus and not is_remote(corpus) else {}

    def warnings(self, runs: list[tuple[Point, OlmoSection]]) -> list[str]:
        corpus = runs[0][1].corpus
        return footprint.repeat_warnings(_sizes(self, runs), corpus or "the embedded corpus",
                                         _corpus_tokens(corpus))

    def cluster_size(self, runs: list[tuple[Point, OlmoSection]]) -> list[str]:
        return footprint.size_lines(_sizes(self, runs), _token_bytes(runs[0][1].corpus))


def _sizes(olmo: Olmo, runs: list[tuple[Point, OlmoSection]]) -> list[tuple[str, int, int]]:
    """(key, all parameters, training tokens) of each grid point."""
    facts = [(point.key, olmo.derived(section, point)) for point, section in runs]
    return [(key, f["model"]["params"], f["training"]["tokens"]) for key, f in facts]


@functools.lru_cache(maxsize=4)
def _corpus(location: str | None):
    """The corpus a section names (the embedded one built if needed), or None where it is a
    URI this machine cannot read."""
    from injection import corpus as corpora

    try:
        return corpora.Corpus(location) if location else corpora.embedded()
    except OSError:
        return None


def _corpus_tokens(location: str | None) -> int | None:
    found = _corpus(location)
    try:
        return None if found is None else found.tokens
    except OSError:
        return None


def _token_bytes(location: str | None) -> int:
    found = _corpus(location)
    try:
        return 2 if found is None else found.dtype.itemsize
    except OSError:
        return 2


def instances_per_batch(frequency: float, batch_size: int, seq_len: int) -> float:
    """What a frequency means per global batch: frequency x tokens per batch (the schedule's
    long-run average; the count of each batch is this, rounded so the total stays exact)."""
    exact = exact_frequency(frequency, seq_len) * Fraction(batch_size * seq_len)
    return float(f"{float(exact):.10g}")


def per_batch(instances: float) -> str:
    """`2.95`, or `1/391` (one every 391 batches) below one."""
    if instances >= 1:
        return f"{instances:.4g}"
    every = 1 / instances
    return f"1/{every:.3g}" if every < 100 else f"1/{every:,.0f}"


@functools.lru_cache(maxsize=4)
def _embedding_size(corpus: str | None) -> int:
    """The output projection's rows: the corpus's tokenizer padded as OLMo does (the
    default tokenizer's for a URI this machine cannot read; the cluster plans again)."""
    from injection import tokenizer as tokenizers
    from injection.corpus import Corpus

    try:
        tok = Corpus(corpus).tokenizer if corpus else tokenizers.load()
    except OSError:
        tok = tokenizers.load()
    return tok.embedding_size


OLMO = Olmo()
