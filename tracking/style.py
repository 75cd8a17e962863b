"""One look for every figure (the fit's plots and the reports'), and one way to save it: PNG
beside a vector PDF, mathtext labels, colour-blind-safe colours (Okabe-Ito for lines,
viridis/cividis for maps)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 150
# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
LINES = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
MAP = "viridis"  # sequential maps (losses, accuracies); "cividis" where red-green must not matter
STYLE = {"axes.prop_cycle": matplotlib.cycler(color=LINES), "image.cmap": MAP,
         "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
         "pdf.fonttype": 42}  # TrueType in the PDF: text stays text in a paper's figure


def frequency_colours(frequencies) -> dict[float, tuple]:
    """One colour per frequency, sequential (viridis) from the rarest (dark) to the most
    frequent (light): ordered, colour-blind safe, and the same in every figure."""
    ordered = sorted(set(frequencies))
    shades = plt.get_cmap(MAP)(np.linspace(0.05, 0.85, max(len(ordered), 1)))
    return dict(zip(ordered, shades))


def save(figure, folder: Path, name: str) -> list[Path]:
    """`folder/name.png` and `folder/name.pdf`; the figure is closed."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    for path in paths:
        figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return paths
