"""Tables that fit the terminal: numbers rounded to what they mean, columns that fit, no cell
cut.

A column's numbers share one resolution, four significant digits of its largest value: a loss
of `-2.186e-09` beside losses of 0.3 is float noise and reads `0`. The columns shown are the
ones that fit the terminal's width, in the order given (the grid axes, state and step first);
`--wide` shows every column and `--columns a,b` names them. A column is never wrapped or cut:
one that does not fit is left out and said so under the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sweeps.errors import UserError, did_you_mean

SIGNIFICANT = 4
GAP = 2  # spaces between columns


def number_format(values: Sequence[float | None]) -> Callable[[float | None], str]:
    """How to print one column's numbers: integers as integers, the rest to `SIGNIFICANT`
    digits of the column's largest magnitude, anything smaller than that resolution as 0."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if all(float(v).is_integer() for v in finite):
        return lambda v: f"{int(v)}" if _special(v) is None else _special(v)
    top = max((abs(v) for v in finite), default=0.0)
    exponent = math.floor(math.log10(top)) if top > 0 else 0
    decimals = SIGNIFICANT - 1 - exponent
    fixed = decimals <= 6 and exponent < 6  # else scientific notation
    decimals = max(decimals, 0) if fixed else decimals  # 12345.6 as 12346
    resolution = 10.0 ** -decimals

    def fmt(v: float | None) -> str:
        special = _special(v)
        if special is not None:
            return special
        if abs(v) < resolution / 2:
            return "0"
        return f"{v:.{decimals}f}" if fixed else f"{v:.{SIGNIFICANT - 1}e}"

    return fmt


def _special(v: float | None) -> str | None:
    if v is None:
        return ""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


@dataclass(frozen=True)
class Column:
    name: str
    cells: list[str]
    numeric: bool = False

    @property
    def width(self) -> int:
        return max([len(self.name), *map(len, self.cells)])


def choose(columns: list[Column], width: int, keep: int, wide: bool,
           named: Sequence[str] | None) -> tuple[list[Column], list[str]]:
    """The columns to show and those left out. The first `keep` are always shown; `named`
    picks the rest by name (an unknown one: exit 2 with the nearest names); `wide` shows all;
    else as many as fit `width`, in order."""
    fixed, optional = columns[:keep], columns[keep:]
    if named is not None:
        by_name = {c.name: c for c in optional}
        for name in named:
            if name not in by_name:
                raise UserError(f"--columns: no column {name!r}{did_you_mean(name, by_name)}; "
                                f"the columns are: {', '.join(by_name)}")
        chosen = [by_name[name] for name in named]
    elif wide:
        chosen = optional
    else:
        used = sum(c.width for c in fixed) + GAP * max(0, len(fixed) - 1)
        chosen = []
        for column in optional:
            if used + GAP + column.width > width:
                break
            chosen.append(column)
            used += GAP + column.width
    return fixed + chosen, [c.name for c in optional if c not in chosen]


def render(console: Console, columns: list[Column], title: str | None = None,
           left_out: Sequence[str] = ()) -> None:
    """Print the table, nothing wrapped or cut (wider than the terminal only when asked:
    `--wide`); then which columns were left out and how to see them."""
    if title:  # a line of its own: as a table's title it would wrap to the table's width
        console.print(title, markup=False, highlight=False, soft_wrap=True, style="italic")
    table = Table(box=None, pad_edge=False, padding=(0, GAP // 2))
    for column in columns:
        table.add_column(escape(column.name), no_wrap=True, overflow="ignore",
                         justify="right" if column.numeric else "left")
    for row in zip(*(c.cells for c in columns)):
        table.add_row(*map(escape, row))
    need = sum(c.width for c in columns) + GAP * len(columns)
    shown = console.width
    console.width = max(shown, need)  # `print(width=)` is capped at the console's own
    try:
        console.print(table, crop=False)
    finally:
        console.width = shown
    if left_out:
        console.print(f"({len(left_out)} more column{'s' * (len(left_out) != 1)}: "
                      f"{', '.join(left_out)}; see them with --wide or --columns NAME,...)",
                      markup=False, highlight=False, style="dim")  # wrapped between words
