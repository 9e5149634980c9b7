"""Windows of a track: which frames a fixed-length window reads, dense or padded (stages 2 and 4 cut the same)."""

from __future__ import annotations

from behavior.settings import PAD_MODES


def dense_windows(n: int, length: int, stride: int) -> list[list[int]]:
    """Windows of ``length`` consecutive positions out of ``n``, one every ``stride``."""
    return [list(range(s, s + length)) for s in range(0, n - length + 1, stride)]


def pad_positions(n: int, length: int, mode: str) -> list[int] | None:
    """Stretch ``n`` real positions to ``length`` by ``mode``; None when the mode is "drop".

    "reverse" plays the frames forwards, then backwards, and so on (ping-pong).

    Example:
        >>> pad_positions(3, 7, "reverse")
        [0, 1, 2, 1, 0, 1, 2]
    """
    if mode == "drop":
        return None
    if mode == "reverse":
        if n == 1:
            return [0] * length
        cycle = list(range(n)) + list(range(n - 2, 0, -1))
        return [cycle[i % len(cycle)] for i in range(length)]
    raise ValueError(f"unknown pad mode {mode!r}; expected one of {PAD_MODES}")
