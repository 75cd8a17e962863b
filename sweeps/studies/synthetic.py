"""The synthetic study: the sweeps behind the paper's toy figures (2, 3, 4, 6b), its
long-horizon check and its interference measures, at two scales.

- `phase` (population: the width's optimum, infinite data): widths x frequencies x {simple,
  complex}; Figure 2's phase diagram (C1, C2) and Figure 3's learning order (C6, from the
  runs' `feature_steps.json` tables).
- `bursts-<n>` (sampled, fixed horizon), n in BURSTS: the rare task delivered n samples at a
  time, one burst every n/f samples, so the long-run frequency f is the same in every sweep
  (`schedule: {block: n}`); Figures 4 and 6b (C4). `bursts-1` is i.i.d. draws at the same f
  and gives the interference measures against width (C5); the largest n logs every step, so
  Figure 4's traces show each burst.
- `long` (sampled, i.i.d., fixed horizon): widths below and above the critical width for ten
  times the steps at which the rare loss is read (C3: `LONG_FACTOR`).

The paper gives none of these sizes (PAPER.md 1.2: every synthetic hyper-parameter is [NF]);
they are this study's choices, stated in docs/explanation/verdicts.md. The burst widths sit
just above the critical width (N* = 23 at quick's f = 0.01) and well above it: below N* the
rare task is not learned whatever the schedule, so bursts have nothing to destroy.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALES = ("quick", "full")
BURSTS = (1, 10, 20, 50, 100)  # n rare samples per burst (the paper's Figure 6b values)
LONG_FACTOR = 10  # the long-horizon sweep trains this many times the steps it is read at


@dataclass(frozen=True)
class Scale:
    """One scale's problem and grids."""

    tasks: int
    features_per_task: int
    phase_widths: list[int]
    phase_frequencies: list[float] | dict  # or {geomspace: ...}
    seeds: list[int]
    frequency: float  # the bursts' and long run's rare frequency (simple task)
    burst_widths: list[int]  # just above N*, then wide
    burst_steps: int
    long_widths: list[int]  # below N*, then above
    long_steps: int  # LONG_FACTOR x the horizon it is read at
    resources: dict
    trace_every: int = 1  # log_every of the largest burst (Figure 4's traces)
    log_every: int = 10


SCALE = {
    # 2 CPU cores, <= 15 minutes: K=8, r=8 (d=64), N* 4..48 over the phase grid.
    "quick": Scale(tasks=8, features_per_task=8,
                   phase_widths=[4, 8, 16, 24, 32, 48, 64],
                   phase_frequencies=[0.1, 0.03, 0.01], seeds=[0], frequency=0.01,
                   burst_widths=[24, 32, 48], burst_steps=3000,
                   long_widths=[8, 16, 32], long_steps=20000,
                   resources={"cpu": 1, "gpu": 0, "workers": 1}),
    # The paper preset's problem (K=32, r=16, d=512) and grid, for a GPU cluster.
    "full": Scale(tasks=32, features_per_task=16,
                  phase_widths=[4, 8, 16, 32, 64, 128, 256, 512],
                  phase_frequencies={"geomspace": {"start": 5.0e-2, "stop": 3.0e-4, "num": 10}},
                  seeds=[0, 1, 2], frequency=0.01,
                  burst_widths=[36, 128, 256], burst_steps=100_000,
                  long_widths=[8, 16, 32, 64], long_steps=1_000_000,
                  resources={"cpu": 4, "gpu": 1, "workers": 1}, trace_every=1,
                  log_every=100),
}


def sweeps_for(scale: str) -> dict[str, dict]:
    """role -> spec dict, in the order they run (the phase diagram first)."""
    s = SCALE[scale]
    problem = {"tasks": s.tasks, "features_per_task": s.features_per_task}

    def spec(role: str, grid: dict, synthetic: dict) -> dict:
        return {"name": f"repro-synthetic-{scale}-{role}", "trainable": "synthetic",
                "grid": {"seed": s.seeds, **grid}, "synthetic": {**problem, **synthetic},
                "resources": s.resources}

    sampled = {"mode": "sampled", "tolerance": 0, "pack": ["frequency", "seed"]}
    fixed = {"frequency": [s.frequency], "task": ["simple"]}
    specs = {"phase": spec("phase", {"width": s.phase_widths, "frequency": s.phase_frequencies,
                                     "task": ["simple", "complex"]},
                           {"mode": "population", "pack": ["frequency", "task", "seed"]})}
    for n in BURSTS:
        specs[f"bursts-{n}"] = spec(
            f"bursts-{n}", {"width": s.burst_widths, **fixed},
            {**sampled, "steps": s.burst_steps, "schedule": "iid" if n == 1 else {"block": n},
             "log_every": s.trace_every if n == max(BURSTS) else s.log_every})
    specs["long"] = spec("long", {"width": s.long_widths, **fixed},
                         {**sampled, "steps": s.long_steps,
                          "log_every": max(1, s.long_steps // 400)})
    return specs
