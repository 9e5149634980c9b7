"""What users read while and after a stage runs: progress (a bar on a terminal, log lines elsewhere) and plain-text
tables for the summaries on stdout."""

from __future__ import annotations

import logging
import sys
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from tqdm import tqdm

log = logging.getLogger("progress")
LOG_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


def progress(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None, unit: str = "it",
             leave: bool = True, disable: bool = False) -> Any:
    """A progress bar with an ETA on a terminal; elsewhere (a log file, CI) a log line every ``LOG_EVERY`` seconds
    with the count and the ETA, so that a redirected log holds no carriage returns or cursor escapes. Both take
    ``update``, ``set_postfix``, iteration and ``with``.

    Example:
        >>> for item in progress(range(3), desc="videos", unit="video", disable=True):
        ...     pass
    """
    if disable or sys.stderr.isatty():
        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, disable=disable)
    return LogProgress(iterable, desc, total, unit)


class LogProgress:
    """A progress bar's stand-in off a terminal: ``desc: 120/368 frames (33%), 14 s left`` every ``LOG_EVERY`` s."""

    def __init__(self, iterable: Iterable | None, desc: str, total: int | None, unit: str) -> None:
        self.iterable, self.desc, self.unit = iterable, desc, unit
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n, self.postfix = 0, ""
        self.started = self.said = time.monotonic()

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more; log a line when ``LOG_EVERY`` seconds have passed since the last."""
        self.n += n
        now = time.monotonic()
        if now - self.said >= LOG_EVERY:
            self.said = now
            log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        """The progress so far in words."""
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        text = f"{self.desc}: {done} {self.unit}{'es' if self.unit.endswith(('ch', 's')) else 's'}"
        if self.total and self.n:
            left = (now - self.started) / self.n * max(self.total - self.n, 0)
            text += f" ({self.n / self.total:.0%}), {left:.0f} s left"
        return text + (f", {self.postfix}" if self.postfix else "")

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        pass

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    widths = [max(display_width(line[i]) for line in lines) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        pads = [w - display_width(c) for c, w in zip(cells, widths, strict=True)]
        out = [cells[0] + " " * pads[0]] + [" " * p + c for c, p in zip(cells[1:], pads[1:], strict=True)]
        return "  ".join(out).rstrip()

    rule = "-" * len(render(lines[0]).ljust(sum(widths) + 2 * (len(widths) - 1)))
    body = [render(lines[0]), rule] + [render(line) for line in lines[1 : len(rows) + 1]]
    if total is not None:
        body += [rule, render(lines[-1])]
    return "\n".join(body)


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: two for wide characters (打架), none for combining marks.

    Example:
        >>> display_width("fight"), display_width("打架"), display_width("é")
        (5, 4, 1)
    """
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
