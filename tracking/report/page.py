"""The report on disk: `DIR/index.html`, one self-contained page (every image embedded, so
it can be mailed or attached as one file), `DIR/claims.json` (CONTRACTS 7), the figures the
study wrote under `DIR/figures/`, and their numbers under `DIR/data/`: `<figure>.csv` per
figure (long format) and `claims.csv` (each claim's replicate values), so a reader can
recompute every verdict from those files alone."""

from __future__ import annotations

import base64
import csv
import html
import json
import re
from pathlib import Path

from tracking.report.claims import DATA_COLUMNS, Claim, Figure, Report

FIGURES = "figures"
DATA = "data"
PAGE = "index.html"
CLAIMS = "claims.json"
VERDICT = {True: ("supported", "#009E73"), False: ("not supported", "#D55E00"),
           None: ("cannot be judged", "#777777")}


def write(report: Report, folder: Path) -> list[Path]:
    """index.html, claims.json and data/*.csv beside the figures already in
    `folder/figures`."""
    claims = folder / CLAIMS
    claims.write_text(json.dumps([c.as_json() for c in report.claims], indent=1) + "\n")
    data = [write_csv(folder / DATA / f"{f.name}.csv", f.data) for f in report.figures
            if f.data]
    data.append(write_csv(folder / DATA / "claims.csv", [
        {"claim": c.id, "replicate": label, "value": value}
        for c in report.claims for label, value in c.replicates], ("claim", "replicate",
                                                                    "value")))
    page = folder / PAGE
    page.write_text(render(report, folder / FIGURES))
    return [page, claims, *data]


def write_csv(path: Path, rows, columns: tuple[str, ...] = DATA_COLUMNS) -> Path:
    """Rows (dicts) in long format: `columns` first, then any other key, sorted; a key a row
    lacks is left empty."""
    extra = sorted({k for row in rows for k in row} - set(columns))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, [*columns, *extra], restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def render(report: Report, figures: Path) -> str:
    by_figure: dict[str, list[Claim]] = {}
    for claim in report.claims:
        by_figure.setdefault(claim.figure, []).append(claim)
    held = [c.holds for c in report.claims]
    summary = (f"{held.count(True)} of {len(held)} claims supported by these runs, "
               f"{held.count(False)} not, {held.count(None)} cannot be judged at this scale")
    sections = "\n".join(_figure(f, by_figure.get(f.name, []), figures) for f in report.figures)
    orphans = [c for c in report.claims if c.figure not in {f.name for f in report.figures}]
    if orphans:
        sections += "\n<section><h2>Claims without a figure</h2>" + "".join(
            _claim(c) for c in orphans) + "</section>"
    title = f"Why Larger Models Learn More: {report.experiment} reproduction ({report.scale})"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
section {{ display: flex; gap: 2em; border-top: 1px solid #ccc; padding: 1em 0; }}
section figure {{ flex: 3; margin: 0; }} section figure img {{ max-width: 100%; }}
section .claims {{ flex: 2; }} .verdict {{ font-weight: bold; }}
figcaption {{ font-size: 0.9em; color: #444; }} code {{ font-size: 0.9em; }}
.provenance th {{ text-align: left; padding-right: 1em; font-weight: normal; color: #555; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Huang et al., arXiv 2605.29548. Every verdict below is computed from the runs of the
sweeps listed here, never written by hand; <code>claims.json</code> holds the same verdicts.</p>
{_provenance(report)}
<p><strong>{summary}.</strong></p>
{sections}
</body></html>
"""


def _provenance(report: Report) -> str:
    """Date, commit, scale, seeds, runtime, and each sweep linked to its MLflow run."""
    p = report.provenance
    links = p.links if p else {}
    sweeps = ", ".join(f'<a href="{html.escape(links[s])}"><code>{html.escape(s)}</code></a>'
                       if s in links else f"<code>{html.escape(s)}</code>"
                       for s in report.sweeps)
    facts = [("scale", html.escape(report.scale)), ("sweeps", sweeps)]
    if p is not None:
        seeds = ", ".join(str(s) for s in p.seeds)
        facts = [("written", html.escape(p.created)), ("code", f"<code>{html.escape(p.commit)}"
                                                              "</code>"),
                 *facts, ("seeds", f"{len(p.seeds)} ({html.escape(seeds)})"),
                 ("training time", _duration(p.runtime_s))]
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts)
    return f'<table class="provenance">{rows}</table>'


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {s:02d} s"


def _figure(figure: Figure, claims: list[Claim], figures: Path) -> str:
    png = figures / f"{figure.name}.png"
    image = (f'<img alt="{html.escape(figure.title)}" src="data:image/png;base64,'
             f'{base64.b64encode(png.read_bytes()).decode()}">' if png.exists()
             else "<p>(no figure: the runs hold no data for it)</p>")
    text = "".join(_claim(c) for c in claims) or "<p>No claim is judged from this figure.</p>"
    return (f'<section id="{html.escape(figure.name)}"><figure><h2>{html.escape(figure.title)}'
            f"</h2>{image}<figcaption>{html.escape(figure.caption)} "
            f'(<a href="{FIGURES}/{html.escape(figure.name)}.pdf">PDF</a>)</figcaption>'
            f'</figure><div class="claims">{text}</div></section>')


def _claim(claim: Claim) -> str:
    verdict, colour = VERDICT[claim.holds]
    facts = [f"What was compared: {in_words(claim.evidence)}"]
    if claim.effect is not None:
        facts.append(_statistic(claim))
    if claim.cells:
        facts.append(f"Grid points used: {claim.cells.used} of {claim.cells.planned} planned.")
    if claim.reason:
        facts.append(f"Why it cannot be judged: {in_words(claim.reason)}")
    text = "".join(f"<p>{html.escape(f)}</p>" for f in facts)
    return (f'<div class="claim" id="{html.escape(claim.id)}"><h3>{html.escape(claim.id)}: '
            f"{html.escape(claim.claim)}</h3><p class=\"verdict\" style=\"color: {colour}\">"
            f"{verdict}</p>{text}</div>")


def _statistic(claim: Claim) -> str:
    """The verdict's statistic in a sentence: the effect over its replicates, its interval,
    and where the interval sits against the null."""
    said = f"The effect is {claim.effect:.3g} over {claim.n} independent replicates"
    if claim.interval:
        lo, hi = claim.interval
        said += f", with a 95% interval from {lo:.3g} to {hi:.3g}"
        if claim.null is not None:
            where = ("above" if lo > claim.null else "below" if hi < claim.null
                     else "around")
            said += (f", which lies {where} {claim.null:.3g}, the value with no such effect"
                     if where != "around" else f", which includes {claim.null:.3g}, the value "
                     "with no such effect")
    elif claim.null is not None:
        said += f", against {claim.null:.3g}, the value with no such effect"
    return said + "."


def in_words(text: str) -> str:
    """Evidence without the names of code settings (`Settings.burst_margin`): the number
    beside such a name says what it is."""
    text = re.sub(r"\s*\((?:[^()]*?,\s*)?Settings\.\w+\)", lambda m: _kept(m.group(0)), text)
    return re.sub(r"\s*\bSettings\.\w+", "", text)


def _kept(parenthesis: str) -> str:
    """`(margin 0.02, Settings.burst_margin)` -> ` (margin 0.02)`; `(Settings.x)` -> ``."""
    inside = re.sub(r",?\s*Settings\.\w+", "", parenthesis.strip()[1:-1]).strip()
    return f" ({inside})" if inside else ""
