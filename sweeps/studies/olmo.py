"""The sweeps behind `sweeps reproduce olmo`: the paper's Section 4 (Figures 5, 6, 8, 9; claims
O1-O5, CONTRACTS 7) at three scales. `sweeps_for(scale)` gives role -> complete spec dict:

- `heat`: sizes x frequencies x {cmp, add}, i.i.d. injection (Figure 5's heat maps, Figure 6a's
  loss curves per frequency with the reference task's loss; O1, O2);
- `gap-N`, one sweep per N: cmp at one long-run frequency of one instance per global batch,
  arriving N at a time every N batches (`schedule: {block: N}`), so every N sees the same
  instances in all (Figure 6b; O3). The largest N measures (`measure_every` > 0): it is the
  paper's mechanism protocol ("100 instances every 100 batches"), read for retention
  (Figure 8, O4) and interference (Figure 9, O5). Measuring does not change the training step
  (docs/explanation/olmo.md, "Mechanism measurements"), so that sweep is still a point of Figure 6b.
Each gap sweep runs a multiple of its N steps, so every N injects exactly as many instances.

Scales:
- `quick`: 4M and 20M on the embedded corpus, 2 CPU cores, at most 30 minutes for all of it
  (measured below). 16 sequences of 8 tokens a step (an instance takes 4 of them), 100-128
  steps: enough, at the top frequency, to learn the task's label tokens (4M: task loss 10.8 to
  ~1.4 in 100 steps, accuracy at chance 0.5), at a pace set by size and frequency, which O1 and
  O2 judge on task loss; at one instance a batch the loss only reaches ~6. Not enough to learn
  the rule itself: test accuracy stays at chance (O1 says so) and no Fourier or order features
  form. Gaps N in {1, 4, 16}: a block must fit in one batch (N <= 16 rows);
  the paper's {1, 10, 20, 50, 100} need >= 100 rows a batch. O3 and O4 are judged on a handful
  of injections, O5 on the two smallest sizes (the paper contrasts 20M with 300M and 1B), so
  they are noisy, and a False there is weak evidence against the paper.
- `gpu`: what one H200 reaches in a few hours: 4M, 20M and 300M, 2,000 steps of 128 x 128
  tokens (33M tokens a run, far below OLMo's 20 tokens per parameter at 300M), frequencies
  7.8e-3 to 1e-5 (the paper's top; below 1e-5 a run would see under 330 instances); gaps
  N in {1, 10, 20, 50, 100} at 20M and 300M with the paper's mechanism measurements on N = 100.
- `full`: the paper's grid for a cluster, `sweeps/presets/olmo-paper.yaml` itself: 4M..4B x
  10 frequencies 7.8e-3..2.4e-8 x {cmp, add}, every size on the same 50,000 batches of 2^22
  tokens; gaps at 20M, 300M and 1B (the sizes of Figures 8 and 9; Figure 6b's is not stated)
  on ~0.5M-token batches. Point the sweeps at a Dolma corpus folder (`sweeps corpus build`;
  `--set olmo.corpus=DIR`): the embedded one (~6M tokens) repeats many times over at this
  scale.
Every scale gives all its sizes one token stream (`olmo.budget: shared`, explicit batch and
steps): at each frequency every size sees the same instances at the same steps.
"""

from __future__ import annotations

import copy
from pathlib import Path

from sweeps.errors import SpecError
from sweeps.spec import read_spec_file

SCALES = ("quick", "gpu", "full")
PAPER = Path(__file__).resolve().parents[1] / "presets" / "olmo-paper.yaml"

# Quick's cost, from CPU time measured per trial (one torch thread each) on the shared 2-core
# dev machine: a heat trial of 100 steps 35 CPU-s at 4M and ~100 at 20M; the measuring gap-16
# 20M trial 178 CPU-s. All 18 trials ~1,400 CPU-s, ~1,500 with Ray and the drivers: about 17
# minutes on 2 idle cores (the gap sweeps wait on their 20M trial). Measured end to end (the
# four sweeps in one process, then the report): 27:38 on the shared dev machine at load 2-20.


def _spec(name: str, widths: list[str], frequencies, tasks: list[str], olmo: dict,
          resources: dict) -> dict:
    return {"name": name, "trainable": "olmo",
            "grid": {"width": widths, "frequency": frequencies, "task": tasks, "seed": [0]},
            "olmo": copy.deepcopy(olmo), "resources": dict(resources),
            "failure": {"max_failures": 2}}


def _gaps(scale: str, widths: list[str], gaps: list[int], olmo: dict, measure: dict,
          resources: dict) -> dict[str, dict]:
    """One sweep per N: cmp at one instance per global batch on average (frequency
    1 / (batch x seq_len), exact in binary when both are powers of two), N every N batches."""
    frequency = 1 / (olmo["batch_size"] * olmo["seq_len"])
    out = {}
    for n in gaps:
        assert olmo["steps"] % n == 0, "every N must inject the same instances in all"
        section = {**olmo, "schedule": {"block": n}, **(measure if n == max(gaps) else {})}
        out[f"gap-{n}"] = _spec(f"repro-olmo-{scale}-gap-{n}", widths, [frequency], ["cmp"],
                                section, resources)
    return out


def quick() -> dict[str, dict]:
    cpu = {"cpu": 1, "gpu": 0, "workers": 1}
    common = {"seq_len": 8, "batch_size": 16, "eval_instances": 200}
    heat = _spec("repro-olmo-quick-heat", ["4M", "20M"],
                 [1 / 8, 1 / 32, 1 / 128],  # 16, 4 and 1 instances a 16 x 8-token batch
                 ["cmp", "add"],
                 {**common, "steps": 100, "eval_every": 10, "checkpoint_every": 50}, cpu)
    measure = {"measure_every": 4, "interference_instances": 200, "interference_neurons": 32}
    gaps = _gaps("quick", ["4M", "20M"], [1, 4, 16],
                 {**common, "steps": 128, "eval_every": 16, "checkpoint_every": 64}, measure,
                 cpu)
    return {"heat": heat, **gaps}


def gpu() -> dict[str, dict]:
    one_gpu = {"cpu": 8, "gpu": 1, "workers": 1}
    common = {"seq_len": 128, "batch_size": 128, "steps": 2000, "eval_every": 100,
              "eval_instances": 1000, "checkpoint_every": 500}
    heat = _spec("repro-olmo-gpu-heat", ["4M", "20M", "300M"],
                 {"geomspace": {"start": 7.8e-3, "stop": 1.0e-5, "num": 6}}, ["cmp", "add"],
                 common, one_gpu)
    measure = {"measure_every": 10, "interference_instances": 10_000,
               "interference_neurons": 100}
    return {"heat": heat, **_gaps("gpu", ["20M", "300M"], [1, 10, 20, 50, 100], common, measure,
                                  one_gpu)}


def full() -> dict[str, dict]:
    paper = read_spec_file(PAPER)  # its corpus is a placeholder: `--set olmo.corpus=DIR`
    cluster = paper["resources"]
    heat = _spec("repro-olmo-full-heat", paper["grid"]["width"], paper["grid"]["frequency"],
                 paper["grid"]["task"],
                 {k: v for k, v in paper["olmo"].items() if k != "corpus"}, cluster)
    measure = {"measure_every": 100, "interference_instances": 10_000,
               "interference_neurons": 100}
    gaps = _gaps("full", ["20M", "300M", "1B"], [1, 10, 20, 50, 100],
                 {"seq_len": 512, "batch_size": 1024, "micro_batch_size": 32, "steps": 20_000,
                  "eval_every": 500, "eval_instances": 5000, "checkpoint_every": 1000},
                 measure, cluster)
    return {"heat": heat, **gaps}


def sweeps_for(scale: str) -> dict[str, dict]:
    """Role -> spec dict of every sweep `sweeps reproduce olmo --scale SCALE` runs (on the
    embedded corpus: `sweeps reproduce olmo --set olmo.corpus=DIR` points every sweep at
    another, which the `gpu` and `full` scales want)."""
    if scale == "quick":
        return quick()
    if scale == "gpu":
        return gpu()
    if scale == "full":
        return full()
    raise SpecError(f"scale {scale!r}: the OLMo reproduction's scales are {', '.join(SCALES)}")
