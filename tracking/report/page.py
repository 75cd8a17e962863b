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
    sweeps = ", ".join(f"<code>{html.escape(s)}</code>" for s in report.sweeps)
    title = f"Why Larger Models Learn More: {report.experiment} reproduction ({report.scale})"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
section {{ display: flex; gap: 2em; border-top: 1px solid #ccc; padding: 1em 0; }}
section figure {{ flex: 3; margin: 0; }} section figure img {{ max-width: 100%; }}
section .claims {{ flex: 2; }} .verdict {{ font-weight: bold; }}
figcaption {{ font-size: 0.9em; color: #444; }} code {{ font-size: 0.9em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Huang et al., arXiv 2605.29548. Every verdict below is computed from the runs of the
sweeps {sweeps}, never written by hand; <code>claims.json</code> holds the same verdicts.</p>
<p><strong>{summary}.</strong></p>
{sections}
</body></html>
"""


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
    stats = []
    if claim.effect is not None:
        interval = (f", 95% interval [{claim.interval[0]:.3g}, {claim.interval[1]:.3g}]"
                    if claim.interval else "")
        null = f", null {claim.null:.3g}" if claim.null is not None else ""
        stats.append(f"effect {claim.effect:.3g}{interval}{null}, n = {claim.n}")
    if claim.cells:
        stats.append(f"grid points used {claim.cells.used} of {claim.cells.planned} planned")
    if claim.reason:
        stats.append(f"why undecided: {claim.reason}")
    facts = "".join(f"<li>{html.escape(s)}</li>" for s in stats)
    return (f'<div class="claim" id="{html.escape(claim.id)}"><h3>{html.escape(claim.id)}: '
            f"{html.escape(claim.claim)}</h3><p class=\"verdict\" style=\"color: {colour}\">"
            f"{verdict}</p>{f'<ul>{facts}</ul>' if facts else ''}"
            f"<p>{html.escape(claim.evidence)}</p></div>")
