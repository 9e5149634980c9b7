"""Exceptions that the command-line scripts turn into one-line messages and exit codes."""

from __future__ import annotations


class BehaviorError(Exception):
    """A problem the user can fix; reported as one line, never as a traceback."""

    exit_code = 1


class InputError(BehaviorError):
    """Bad arguments or unusable input data (exit code 2)."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line reports.

    Example:
        >>> first_line(ValueError("bad value\\ndetails")), first_line(KeyError())
        ('bad value', 'KeyError')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
