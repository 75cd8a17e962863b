"""The synthetic report: the paper's toy figures and claims C1-C8 (CONTRACTS 7) from the runs
of `sweeps.studies.synthetic`'s sweeps, read back by role (`build`): the claims are judged by
`synthetic_claims`, the figures drawn by `synthetic_figures`, from the same runs, every
result keyed by all the grid's axes (seed included)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tracking import style as look
from tracking.layout import FEATURE_STEPS
from tracking.query import Reader, read_rows, with_table
from tracking.report import synthetic_claims as judge
from tracking.report import synthetic_figures as draw
from tracking.report.claims import Claim, Figure
from tracking.report.synthetic_claims import SETTINGS, Settings, critical_width, key

TRACE = ("rare/alignment", "rare/injected", "interference/cos_batch")
TWO_DIRECTIONS = ("rare/alignment", "rare/alignment_push", "rare/alignment_pull")


def build(reader: Reader, sweeps: dict[str, str], figures: Path,
          settings: Settings = SETTINGS) -> tuple[list[Figure], list[Claim]]:
    rows = {role: read_rows(reader, name) for role, name in sweeps.items()}
    done = {role: judge.finished(rs) for role, rs in rows.items()}

    def history(role: str, metric: str, when=lambda step, end: True) -> dict[str, list]:
        out = {}
        for r in done.get(role, []):
            series = reader.history(r.run_id, metric)
            end = series[-1][0] if series else 0
            out[r.run_id] = [(s, v) for s, v in series if when(s, end)]
        return out

    bursts = {int(role.split("-")[1]): rows[role] for role in rows if role.startswith("bursts-")}
    final = {}
    for n in bursts:
        for run_id, series in history(f"bursts-{n}", "rare/loss").items():
            row = next(r for r in done[f"bursts-{n}"] if r.run_id == run_id)
            final[run_id] = judge.cycle_mean(series, judge.cycle_steps(row), settings.tail)
    by_key = {n: {key(r): final[r.run_id] for r in judge.finished(rs) if r.run_id in final}
              for n, rs in bursts.items()}

    def second_half(metric: str) -> dict[str, list[float]]:
        return {run_id: [v for _, v in series if np.isfinite(v)] for run_id, series in
                history("bursts-1", metric, lambda s, end: s > end / 2).items()}

    norms, cosines = second_half("interference/frequent_norm"), second_half(
        "interference/cos_nontask")
    long_loss, long_total = history("long", "rare/loss"), history("long", "loss")
    traced = done.get("trace", [])
    first = min((key(r).seed for r in traced), default=0)
    traces = {key(r): {m: reader.history(r.run_id, m) for m in TRACE}
              for r in traced if key(r).seed == first}  # one seed: each burst visible
    phase = with_table(reader, rows["phase"], FEATURE_STEPS)  # C6, C8: learning steps
    trace_n = int(traced[0].params["schedule.block"]) if traced else 0
    with plt.rc_context(look.STYLE):
        made = [draw.phase(phase, figures), draw.utility_order(phase, figures),
                draw.update_and_forget(traces, trace_n, critical_width(traced[0]) if traced
                                       else 0, figures),
                draw.bursts(by_key, figures),
                draw.long_horizon(done.get("long", []), long_loss, settings.long_factor,
                                  figures),
                draw.interference(done.get("bursts-1", []), norms, cosines, figures)]
        if "two-directions" in rows:
            made.append(draw.two_directions(
                {key(r): {m: reader.history(r.run_id, m) for m in TWO_DIRECTIONS}
                 for r in done["two-directions"]}, figures))
    claims = [judge.c1_monotone(phase, settings), judge.c2_critical_width(phase, settings),
              judge.c3_long_horizon(rows.get("long", []), long_loss, long_total, settings),
              judge.c4_bursts(bursts, final, settings),
              judge.c5_interference(rows.get("bursts-1", []), norms, cosines),
              judge.c6_utility_order(phase, settings), judge.c7_complexity(phase, settings),
              judge.c8_utility_over_frequency(phase, settings)]
    return made, claims
