"""Command-line plumbing shared by the top-level scripts.

Every upper-case constant in ``config.py`` becomes a flag of the same name in kebab case
(``SEQUENCE_LENGTH`` -> ``--sequence-length``), typed after its default. Errors the user can
fix are printed as one line and turned into an exit code instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

from behavior.errors import BehaviorError

log = logging.getLogger("behavior")

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # bad arguments or input: 2 (InputError, argparse)


def config_constants(config: types.ModuleType) -> dict[str, Any]:
    """The upper-case constants of a config module, in file order."""
    return {k: v for k, v in vars(config).items() if k.isupper() and not k.startswith("_")}


def flag_name(constant: str) -> str:
    """``SEQUENCE_LENGTH`` -> ``--sequence-length``."""
    return "--" + constant.lower().replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, config: types.ModuleType) -> None:
    """Add one override flag per config constant, defaulting to the constant's value."""
    group = parser.add_argument_group("config.py overrides (defaults shown)")
    for name, value in config_constants(config).items():
        kwargs: dict[str, Any] = {"dest": name, "default": value, "help": f"default: {value!r}"}
        if isinstance(value, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(value, tuple | list):
            kwargs.update(nargs=len(value) if value else "*", type=type(value[0]) if value else str)
        elif isinstance(value, int | float | str):
            kwargs.update(type=type(value), metavar=type(value).__name__.upper())
        else:
            continue
        group.add_argument(flag_name(name), **kwargs)


def build_parser(description: str | None, config: types.ModuleType) -> argparse.ArgumentParser:
    """A parser with the script's description and every config override flag."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_flags(parser, config)
    return parser


def settings_from_args(args: argparse.Namespace, config: types.ModuleType) -> dict[str, Any]:
    """The effective value of every config constant after command-line overrides."""
    return {name: getattr(args, name, value) for name, value in config_constants(config).items()}


class TqdmHandler(logging.Handler):
    """Write log records with ``tqdm.write`` so that they do not break progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr, above any progress bar; quiet the libraries' own chatter."""
    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    for noisy in ("ultralytics", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main`` and map the errors a user can fix to a one-line message and an exit code."""
    prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "behavior"
    try:
        return main(argv)
    except BehaviorError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
