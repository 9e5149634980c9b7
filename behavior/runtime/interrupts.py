"""Ctrl-C as a request to stop between two frames, so no thread, queue or file is cut mid-operation.

Python raises KeyboardInterrupt wherever the main thread happens to be: inside a queue's ``put``,
a generator's clean-up, a tracker update. The frame loops (stage 1 and prediction) run decoder,
detector and writer threads beside the main one, and an exception landing at the wrong moment can
leave one of them waiting for good (a Ctrl-C'd prediction once hung in its clean-up under CI).
Within ``stop_requests()`` the first Ctrl-C only sets a flag, which the loop reads between frames;
a second one interrupts at once, as before, for a source that stalls.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any


@dataclass
class StopRequest:
    """Set by the first Ctrl-C inside ``stop_requests()``; a frame loop reads it between two frames."""

    requested: bool = False  # a plain flag: the handler runs on the main thread, between two bytecodes

    def check(self) -> None:
        """Raise KeyboardInterrupt now, at a point where nothing is half done, if Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Within the block the first Ctrl-C (SIGINT) sets the yielded request; a second one interrupts at once.

    Off the main thread (where Python cannot set signal handlers), or where SIGINT is ignored,
    the request is never set and Ctrl-C behaves as it would without the block.

    Example:
        >>> with stop_requests() as stop:  # doctest: +SKIP
        ...     for frame in frames:
        ...         handle(frame)
        ...         if stop.requested:
        ...             break
    """
    stop = StopRequest()
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if previous is None or previous is signal.SIG_IGN:
        yield stop
        return

    def request(signum: int, frame: FrameType | None) -> Any:
        if not stop.requested:
            stop.requested = True
            return None
        if callable(previous):
            return previous(signum, frame)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, request)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
