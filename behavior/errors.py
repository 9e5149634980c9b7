"""Exceptions that the command-line scripts turn into one-line messages and exit codes."""

from __future__ import annotations


class BehaviorError(Exception):
    """A problem the user can fix; reported as one line, never as a traceback."""

    exit_code = 1


class InputError(BehaviorError):
    """Bad arguments or unusable input data (exit code 2)."""

    exit_code = 2
