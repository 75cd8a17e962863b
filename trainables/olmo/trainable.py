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
from injection.schedule import exact_frequency, injected
from trainables.contract import FieldError, Grid, Resources, Scheduled, Strict, Trainable
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
    """CONTRACTS 6. Every training default is OLMo's ladder recipe (`recipe`); a field left
    out (None) is derived, and the plan records the derived value. Under `budget: shared` the
    batch and the length are one for the whole sweep (the recipe of its largest size), so
    every size trains on the same token stream; under `budget: ladder` each size gets its
    own. Measurement (`measure_every`) is off by default."""

    budget: Literal["shared", "ladder"] = Field(
        "shared", description="shared: every size of the sweep trains the same batches for "
                              "the same steps (the paper's design); ladder: each size its own "
                              "OLMo batch and length")
    steps: int | None = Field(None, ge=1, description="training steps (global batches), >= 1 "
                                                       "(default: tokens_per_param)")
    tokens_per_param: float | None = Field(
        None, gt=0, description="train this many tokens per parameter N (of the sweep's "
                                "largest size under budget shared, of each size under ladder),"
                                " > 0 (default 20, OLMo's ladder 1xC), instead of `steps`")
    seq_len: int = Field(128, ge=4, description="tokens per sequence, >= 4")
    batch_size: int | None = Field(
        None, ge=1, description="sequences per global batch, >= 1 (default: OLMo's ladder "
                                "batch of the sweep's largest size under budget shared, of "
                                "each size under ladder: 160 (N/108M)^(2/3) sequences of 2048 "
                                "tokens in multiples of 32, as rows of seq_len)")
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
    columns = ("train/loss", "rare/test_acc", "rare/test_loss", "rare/label_acc",
               "rare/label_loss", "rare/train_loss", "ref/loss", "throughput/tokens_per_s")

    def check_grid(self, grid: Grid, section: OlmoSection, resources: Resources) -> None:
        super().check_grid(grid, section, resources)
        if section.steps is not None and section.tokens_per_param is not None:
            raise FieldError("olmo.tokens_per_param", section.tokens_per_param,
                             f"olmo.steps = {section.steps} is set too: set one of the two")
        for i, width in enumerate(grid.width):
            if width not in LADDER:
                raise FieldError(f"grid.width[{i}]", width,
                                 f"olmo widths are model ladder names: {', '.join(LADDER)}")
        source = _batch_source(section, grid)
        shared = self.for_grid(section, grid)
        for width in grid.width:
            self._check_batch(grid, shared, resources.workers, width, source(width))
        fewest = min(grid.width, key=lambda w: LADDER[w].neurons)
        if section.interference_neurons > LADDER[fewest].neurons:
            raise FieldError("olmo.interference_neurons", section.interference_neurons,
                             f"the {fewest} model's first MLP has only {LADDER[fewest].neurons} "
                             "neurons")

    @staticmethod
    def _check_batch(grid, section: OlmoSection, workers: int, width: str, source: str) -> None:
        batch = section.global_batch(width)
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

    def for_grid(self, section: OlmoSection, grid) -> OlmoSection:
        """`budget: shared`: one batch and one length for every size, OLMo's recipe for the
        sweep's largest size where the spec leaves them out."""
        if section.budget == "ladder":
            return section
        largest = largest_size(grid)
        batch = section.global_batch(largest)
        steps = section.steps or recipe.steps(
            largest, batch * section.seq_len, section.tokens_per_param or recipe.TOKENS_PER_PARAM)
        return section.model_copy(update={"batch_size": batch, "steps": steps})

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
                point.frequency, section.batch_size, section.seq_len),
                "total_instances": total_instances(point.frequency, section)},
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
        one_stream = len({(s.batch_size, s.steps) for _, s in by_width.values()}) == 1
        lines = [f"corpus    {section.corpus or 'embedded'}; sequences of {section.seq_len} "
                 "tokens", f"budget    {section.budget}: " + (
                     f"every size trains the same {section.batch_size:,}-row batches "
                     f"({section.batch_size * section.seq_len:,} tokens) for {section.steps:,}"
                     " steps, in the same corpus order" if one_stream else
                     "each size its own batch and length (OLMo's ladder): at a frequency the "
                     "sizes see different numbers of instances"),
                 "recipe    OLMo's ladder (N: the counted size for 4M and 20M, else the name):",
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
        lines += _frequencies(runs, by_width, one_stream)
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


def _sizes(olmo: Olmo, runs: list[tuple[Point, OlmoSection]]) -> list[tuple[str, int, int, int]]:
    """(key, all parameters, training tokens, FLOPs per token) of each grid point."""
    points = []
    for point, section in runs:
        facts, rung = olmo.derived(section, point), LADDER[point.width]
        per_token = footprint.flops_per_token(facts["model"]["non_embedding_params"],
                                              rung.depth, section.seq_len, rung.d_model)
        points.append((point.key, facts["model"]["params"], facts["training"]["tokens"],
                       per_token))
    return points


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


def _frequencies(runs, by_width: dict, one_stream: bool) -> list[str]:
    """What each frequency means per global batch and in the whole run: one column when every
    size shares the stream, one per size otherwise."""
    block = runs[0][1].block
    arrival = f"; in blocks of {block}" if block else ""
    frequencies = list(dict.fromkeys(point.frequency for point, _ in runs))
    sections = [s for _, s in by_width.values()]
    title = ("frequency (instances per training token) = instances per global batch "
             f"(1/n: one every n batches{arrival})")
    if one_stream:
        s = sections[0]
        return [f"{title} and in the whole run, the same at every size:",
                f"  {'frequency':>10} {'per batch':>10} {'in all':>14}",
                *(f"  {f:>10.3g} {_per_batch(f, s):>10} {total_instances(f, s):>14,}"
                  for f in frequencies)]
    header = f"  {'frequency':>10} " + " ".join(f"{w:>10}" for w in by_width)
    return [f"{title}, per size:", header,
            *(f"  {f:>10.3g} " + " ".join(f"{_per_batch(f, s):>10}" for s in sections)
              for f in frequencies),
            "instances in the whole run, per size (compare sizes only where they match):",
            header,
            *(f"  {f:>10.3g} " + " ".join(f"{total_instances(f, s):>10,}" for s in sections)
              for f in frequencies)]


def _per_batch(frequency: float, section: OlmoSection) -> str:
    return per_batch(instances_per_batch(frequency, section.batch_size, section.seq_len))


def total_instances(frequency: float, section: OlmoSection) -> int:
    """Instances a resolved section's run injects in all (`injection.total_instances`)."""
    return injected(frequency, section.seq_len,
                    section.steps * section.batch_size * section.seq_len, section.block)


def largest_size(grid) -> str:
    """The size whose recipe a shared budget follows."""
    return max(grid.width, key=recipe.size)


def _batch_source(section: OlmoSection, grid):
    """Where a size's batch comes from, for messages: the spec, or OLMo's ladder."""
    if section.batch_size:
        return lambda width: ""
    if section.budget == "shared":
        largest = largest_size(grid)
        return lambda width: f" (OLMo's ladder batch of {largest}, the sweep's largest size)"
    return lambda width: f" (OLMo's ladder batch at {width})"


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
