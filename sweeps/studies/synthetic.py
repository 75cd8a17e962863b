"""The synthetic study: the sweeps behind the paper's toy figures (2, 3, 4, 6b), its
long-horizon check and its interference measures, at two scales. The burst sweeps run
`seeds` (C4 needs at least five), the phase diagram `phase_seeds`, the long runs `long_seeds`.

- `phase` (population: the width's optimum, infinite data): widths x frequencies x {simple,
  complex}; Figure 2's phase diagram (C1, C2, C7) and Figure 3's learning order (C6, C8, from
  the runs' `feature_steps.json` tables).
- `bursts-<n>` (sampled, fixed horizon of at least the theory's expected steps at the
  narrow width), n in the scale's `bursts` (the paper's 1, 10, 20, 50, 100 at full scale;
  1, 10, 100 at quick, whose 2 cores hold no more): the rare task delivered n samples at a
  time, one burst every n/f samples, so the long-run frequency f is the same in every sweep
  (`schedule: {block: n}`); Figure 6b (C4: a width at N* against one well above it).
  `bursts-1` is i.i.d. draws at the same f and gives the interference measures against
  width (C5).
- `trace` (sampled, the largest n, every step logged, one seed): Figure 4's signal at a width
  below N* and one above it, each burst visible.
- `long` (sampled, i.i.d., fixed horizon): widths below (N* - 1 included) and above the
  critical width for ten times the steps at which the rare loss is first read (C3:
  `LONG_FACTOR`).
- `two-directions` (the `two-directions` preset: one frequent and one rare direction at
  widths 1 and 2), where this checkout has it: the per-step push and pull on the rare
  alignment.

The paper gives none of these sizes (PAPER.md 1.2: every synthetic hyper-parameter is [NF]);
they are this study's choices, stated in docs/explanation/verdicts.md. At quick's f = 0.01
the simple task's N* is 23: the bursts compare width 23 (the last width that keeps the rare
direction, so the first to lose it between bursts) with 48; below N* the rare task is not
learned whatever the schedule, so bursts have nothing to destroy there (Figure 4 shows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

SCALES = ("quick", "full")
BURSTS = (1, 10, 20, 50, 100)  # n rare samples per burst (the paper's Figure 6b values)
LONG_FACTOR = 10  # the long-horizon sweep trains this many times the steps it is read at
TWO_DIRECTIONS = Path(__file__).resolve().parent.parent / "presets" / "two-directions.yaml"


@dataclass(frozen=True)
class Scale:
    """One scale's problem and grids."""

    tasks: int
    features_per_task: int
    phase_widths: list[int]
    phase_frequencies: list[float] | dict  # or {geomspace: ...}
    seeds: list[int]  # the sampled sweeps' (bursts, trace: the first, long)
    frequency: float  # the bursts' and long run's rare frequency (simple task)
    burst_widths: list[int]  # below N*, at N*, then wide
    burst_steps: int  # at least the theory's expected steps at N*
    trace_widths: list[int]  # Figure 4: below N*, above it
    trace_steps: int
    long_widths: list[int]  # below N* (N* - 1 included), then above
    long_steps: int  # LONG_FACTOR x the horizon it is read at
    resources: dict
    phase_seeds: list[int] | None = None  # default: `seeds`
    long_seeds: list[int] | None = None  # default: `seeds`
    bursts: tuple[int, ...] = BURSTS  # the burst sizes n swept (1: i.i.d.)
    log_every: int = 50  # of the burst sweeps: not a divisor of any cycle n / (f B)


SCALE = {
    # 2 CPU cores, <= 20 minutes: K=8, r=8 (d=64), N* 4..48 over the phase grid, N*=23 at
    # f=0.01 (theory's expected steps there: 8359).
    "quick": Scale(tasks=8, features_per_task=8,
                   phase_widths=[4, 8, 16, 24, 32, 48, 64],
                   phase_frequencies=[0.1, 0.03, 0.01], seeds=[0, 1, 2, 3, 4],
                   phase_seeds=[0, 1], long_seeds=[0, 1, 2], frequency=0.01,
                   burst_widths=[16, 23, 32, 48], burst_steps=9000, bursts=(1, 10, 100),
                   trace_widths=[16, 48], trace_steps=2000,
                   long_widths=[16, 22, 32], long_steps=20000,
                   resources={"cpu": 1, "gpu": 0, "workers": 1}),
    # The paper preset's problem (K=32, r=16, d=512) and grid, for a GPU cluster; N*=34 at
    # f=0.01 (expected steps there: 288,712 with bursts; 199,414 at N* - 1 i.i.d.).
    "full": Scale(tasks=32, features_per_task=16,
                  phase_widths=[4, 8, 16, 32, 64, 128, 256, 320, 384, 448, 480, 504, 512],
                  phase_frequencies={"geomspace": {"start": 5.0e-2, "stop": 3.0e-4, "num": 10}},
                  seeds=[0, 1, 2, 3, 4], frequency=0.01,
                  burst_widths=[24, 34, 128, 256], burst_steps=300_000,
                  trace_widths=[24, 128], trace_steps=20_000,
                  long_widths=[8, 16, 33, 64], long_steps=2_000_000,
                  resources={"cpu": 4, "gpu": 1, "workers": 1}, log_every=70),
}


def sweeps_for(scale: str) -> dict[str, dict]:
    """role -> spec dict, in the order they run (the phase diagram first)."""
    s = SCALE[scale]
    problem = {"tasks": s.tasks, "features_per_task": s.features_per_task}

    def spec(role: str, grid: dict, synthetic: dict, seeds: list[int] = s.seeds) -> dict:
        return {"name": f"repro-synthetic-{scale}-{role}", "trainable": "synthetic",
                "grid": {"seed": seeds, **grid}, "synthetic": {**problem, **synthetic},
                "resources": s.resources}

    sampled = {"mode": "sampled", "tolerance": 0, "pack": ["frequency", "seed"]}
    fixed = {"frequency": [s.frequency], "task": ["simple"]}
    specs = {"phase": spec("phase", {"width": s.phase_widths, "frequency": s.phase_frequencies,
                                     "task": ["simple", "complex"]},
                           {"mode": "population", "pack": ["frequency", "task", "seed"]},
                           s.phase_seeds or s.seeds)}
    for n in s.bursts:
        specs[f"bursts-{n}"] = spec(
            f"bursts-{n}", {"width": s.burst_widths, **fixed},
            {**sampled, "steps": s.burst_steps, "schedule": "iid" if n == 1 else {"block": n},
             "log_every": s.log_every})
    specs["trace"] = spec("trace", {"width": s.trace_widths, **fixed},
                          {**sampled, "steps": s.trace_steps, "schedule": {"block": max(s.bursts)},
                           "log_every": 1}, s.seeds[:1])
    specs["long"] = spec("long", {"width": s.long_widths, **fixed},
                         {**sampled, "steps": s.long_steps,
                          "log_every": max(1, s.long_steps // 400)}, s.long_seeds or s.seeds)
    if TWO_DIRECTIONS.is_file():
        preset = yaml.safe_load(TWO_DIRECTIONS.read_text())
        specs["two-directions"] = {**preset, "name": f"repro-synthetic-{scale}-two-directions",
                                   "resources": {**preset.get("resources", {}),
                                                 **s.resources}}
    return specs
