"""The synthetic report: the paper's toy figures and claims C1-C6 (CONTRACTS 7) from the runs
of `sweeps.studies.synthetic`'s sweeps, read back by role (`build`): the claims are judged by
`synthetic_claims`, the figures drawn by `synthetic_figures`, from the same runs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tracking.curves import Row
from tracking.layout import FEATURE_STEPS
from tracking.query import Reader, read_rows, with_table
from tracking import style as look
from tracking.report import synthetic_figures as draw
from tracking.report.claims import Claim, Figure
from tracking.report.synthetic_claims import (SETTINGS, Series, Settings, dimension, c1_monotone,
                                              c2_critical_width, c3_long_horizon, c4_bursts,
                                              c5_interference, c6_utility_order, tail_mean,
                                              width)


def build(reader: Reader, sweeps: dict[str, str], figures: Path,
          settings: Settings = SETTINGS) -> tuple[list[Figure], list[Claim]]:
    rows = {role: read_rows(reader, name) for role, name in sweeps.items()}
    finished = {role: [r for r in rs if r.state == "FINISHED"] for role, rs in rows.items()}

    def series(role_rows: list[Row], key: str) -> dict[str, Series]:
        return {r.run_id: reader.history(r.run_id, key) for r in role_rows}

    phase = with_table(reader, finished["phase"], FEATURE_STEPS)  # C6's learning steps
    bursts = {int(role.split("-")[1]): rs for role, rs in finished.items()
              if role.startswith("bursts-")}
    long_loss = series(finished["long"], "rare/loss")
    final = {n: {width(r): tail_mean(reader.history(r.run_id, "rare/loss"), None, settings.tail)
                 for r in rs} for n, rs in bursts.items()}
    # A width-d encoder spans every feature: nothing competes, nothing is forgotten, so
    # the bursts' and interference claims compare widths below d (the figures show all).
    judged = {n: {w: v for w, v in by_width.items() if w < dimension(bursts[n])}
              for n, by_width in final.items()}
    iid = [r for r in bursts.get(1, []) if width(r) < dimension([r])]

    def second_half(key: str) -> dict[int, list[float]]:
        out = {}
        for r in iid:
            values = reader.history(r.run_id, key)
            end = values[-1][0] if values else 0
            out[width(r)] = [v for s, v in values if s > end / 2 and np.isfinite(v)]
        return out

    norms, cosines = second_half("interference/frequent_norm"), second_half(
        "interference/cos_nontask")
    trace_n = max(bursts)
    traces = {width(r): {key: reader.history(r.run_id, key) for key in (
        "rare/alignment", "rare/injected", "interference/cos_batch")}
        for r in bursts[trace_n] if width(r) < dimension([r])}
    with plt.rc_context(look.STYLE):
        made = [draw.phase(phase, figures), draw.utility_order(phase, figures),
                draw.update_and_forget(traces, trace_n, float(bursts[trace_n][0].params[
                    "frequency"]) if bursts[trace_n] else 0.0, figures),
                draw.bursts(final, figures), draw.long_horizon(finished["long"], long_loss,
                                                                settings.long_factor, figures),
                draw.interference(norms, cosines, figures)]
    claims = [c1_monotone(phase, settings), c2_critical_width(phase, settings),
              c3_long_horizon(finished["long"], long_loss, settings),
              c4_bursts(judged, settings), c5_interference(norms, cosines),
              c6_utility_order(phase, settings)]
    return made, claims
