"""Plain-text tables for the summaries that users read on stdout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], total: Sequence[Any] | None = None) -> str:
    """Render rows as an aligned text table, with an optional TOTAL line under a rule.

    Example:
        >>> print(format_table(["class", "videos"], [["fight", 3]], total=["TOTAL", 3]))
        class  videos
        -------------
        fight       3
        -------------
        TOTAL       3
    """
    lines = [list(map(str, header))] + [[_cell(v) for v in row] for row in rows]
    if total is not None:
        lines.append([_cell(v) for v in total])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        out = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    rule = "-" * len(render(lines[0]).ljust(sum(widths) + 2 * (len(widths) - 1)))
    body = [render(lines[0]), rule] + [render(line) for line in lines[1 : len(rows) + 1]]
    if total is not None:
        body += [rule, render(lines[-1])]
    return "\n".join(body)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
