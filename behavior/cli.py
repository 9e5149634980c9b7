"""Command-line plumbing shared by the top-level scripts.

Every upper-case constant in ``config.py`` becomes a flag of the same name in kebab case
(``SEQUENCE_LENGTH`` -> ``--sequence-length``), typed after its default, with its help taken
from the comment beside it in config.py. ``--help`` lists the script's own flags, then the
settings of its stage, then the rest. Settings are validated (``behavior.settings``) before
any work starts, and errors the user can fix are printed as one line with an exit code
instead of a traceback.
"""

from __future__ import annotations

import argparse
import ast
import io
import logging
import sys
import tokenize
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from behavior import settings
from behavior.errors import BehaviorError
from behavior.files import os_error_text
from behavior.settings import flag_name

log = logging.getLogger("behavior")

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # bad arguments or input: 2 (InputError, argparse)


def config_constants(config: types.ModuleType) -> dict[str, Any]:
    """The upper-case constants of a config module, in file order."""
    return {k: v for k, v in vars(config).items() if k.isupper() and not k.startswith("_")}


@dataclass(frozen=True)
class ConstantDoc:
    """What config.py says about a constant: the section it sits in and the comment beside it."""

    section: str
    comment: str


@cache
def _docs_of(path: str) -> dict[str, ConstantDoc]:
    source = Path(path).read_text(encoding="utf-8")
    comments: dict[int, tuple[int, str]] = {}  # line -> (column, text)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = (tok.start[1], tok.string.lstrip("#").strip())
    lines = source.splitlines()
    docs: dict[str, ConstantDoc] = {}
    section = ""
    assigns = [n for n in ast.parse(source).body if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)]
    headers = {n: text.strip("- ").split(":")[0].split("(")[0].strip()
               for n, (col, text) in comments.items() if col == 0 and text.startswith("---")}
    for node in assigns:
        section = next((headers[n] for n in sorted(headers, reverse=True) if n < node.lineno), section)
        parts = [comments[node.end_lineno][1]] if node.end_lineno in comments else []
        line = node.end_lineno + 1
        while line in comments and comments[line][0] > 0 and not lines[line - 1][: comments[line][0]].strip():
            parts.append(comments[line][1])  # an indented comment line continues the one above
            line += 1
        docs[node.targets[0].id] = ConstantDoc(section, " ".join(parts))
    return docs


def constant_docs(config: types.ModuleType) -> dict[str, ConstantDoc]:
    """Section and comment of every constant, read from the config module's source."""
    try:
        return _docs_of(str(Path(config.__file__)))
    except (OSError, SyntaxError, TypeError):
        return {}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (the full usage of ~70 flags helps nobody)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _help(name: str, value: Any, doc: ConstantDoc | None) -> str:
    rule = settings.RULES.get(name)
    text = doc.comment if doc and doc.comment else ""
    allowed = rule.describe() if rule else ""
    named = rule is not None and rule.choices and all(f'"{c}"' in text for c in rule.choices)  # already listed
    if allowed and allowed not in ("true or false", "a text", "a non-empty text") and not named:
        text = f"{text} [{allowed}]" if text else allowed
    return f"{text} (default: {value!r})".strip().replace("%", "%%")


def add_config_flags(parser: argparse.ArgumentParser, config: types.ModuleType, stage: Sequence[str] = (),
                     from_checkpoint: Sequence[str] = ()) -> None:
    """Add one override flag per config constant: the stage's first, then those a checkpoint decides, then the rest."""
    constants = config_constants(config)
    docs = constant_docs(config)
    groups = [("settings of this stage (config.py; a flag overrides one for one run)",
               [n for n in stage if n in constants]),
              ("set by the checkpoint: these flags are ignored here",
               [n for n in from_checkpoint if n in constants]),
              ("other config.py settings (used by the other stages)",
               [n for n in constants if n not in stage and n not in from_checkpoint])]
    for title, names in groups:
        if not names:
            continue
        group = parser.add_argument_group(title)
        for name in names:
            value = constants[name]
            kwargs: dict[str, Any] = {"dest": name, "default": value, "help": _help(name, value, docs.get(name))}
            if isinstance(value, bool):
                kwargs["action"] = argparse.BooleanOptionalAction
            elif isinstance(value, tuple | list) and value and isinstance(value[0], str):
                kwargs.update(nargs="+", type=str)  # a list of names (INPUTS): any length
            elif isinstance(value, tuple | list):
                kwargs.update(nargs=len(value) if value else "*", type=type(value[0]) if value else str)
            elif isinstance(value, int | float | str):
                kwargs.update(type=type(value), metavar=type(value).__name__.upper())
            else:
                continue
            group.add_argument(flag_name(name), **kwargs)


def build_parser(description: str | None, config: types.ModuleType, stage: Sequence[str] = (),
                 from_checkpoint: Sequence[str] = (), usage: str = "%(prog)s [flags]") -> argparse.ArgumentParser:
    """A parser with the script's description and every config override flag, the stage's settings first."""
    parser = Parser(description=description, usage=usage, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser, config, stage, from_checkpoint)
    return parser


def settings_from_args(args: argparse.Namespace, config: types.ModuleType) -> dict[str, Any]:
    """The effective value of every config constant after command-line overrides, validated."""
    cfg = {name: getattr(args, name, value) for name, value in config_constants(config).items()}
    settings.validate(cfg)
    return cfg


def changed_settings(cfg: dict[str, Any], config: types.ModuleType, names: Sequence[str]) -> list[str]:
    """Those of ``names`` whose effective value differs from config.py (given on the command line)."""
    defaults = config_constants(config)

    def plain(value: Any) -> Any:
        return list(value) if isinstance(value, list | tuple) else value

    return [n for n in names if n in cfg and plain(cfg[n]) != plain(defaults.get(n))]


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
    """Call ``main`` and map the errors a user can fix to a one-line message and an exit code.

    An OSError that no stage turned into a message (a full or read-only disk) is reported as one
    line naming the path and the cause.
    """
    prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "behavior"
    try:
        return main(argv)
    except BehaviorError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"{prog}: error: {os_error_text(exc, action=None)}", file=sys.stderr)
        return EXIT_FAILED
