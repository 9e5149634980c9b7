"""Command-line plumbing shared by the top-level scripts.

Each script offers the config.py constants of its stage as flags of the same name in kebab case
(``SEQUENCE_LENGTH`` -> ``--sequence-length``): those its settings classes declare
(``behavior.settings``) and the few it names, grouped under headings, typed after their
defaults, with their help taken from the comment beside them in config.py. Settings are
validated before any work starts, and errors the user can fix are printed as one line with an exit code
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
from behavior.io.files import os_error_text
from behavior.runtime import environment
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


def first_clause(comment: str, limit: int = 90) -> str:
    """The head of a config comment, for the short ``--help``: up to its first aside (a parenthesis, a colon, a
    semicolon or a full stop), at most ``limit`` characters.

    Example:
        >>> first_clause("frames kept per second of video (resampled by timestamp; never upsampled; 0 = all)")
        'frames kept per second of video'
    """
    cut = min([k for k in (comment.find(mark) for mark in (" (", ": ", "; ", ". ")) if k > 0] + [len(comment)])
    head = comment[:cut].rstrip(" ,")
    return head if len(head) <= limit else head[:limit - 3].rsplit(" ", 1)[0] + "..."


def _help(name: str, value: Any, doc: ConstantDoc | None, full: bool = True) -> str:
    rule = settings.RULES.get(name)
    text = doc.comment if doc and doc.comment else ""
    text = text if full else first_clause(text)
    allowed = rule.describe() if rule else ""
    named = rule is not None and rule.choices and all(f'"{c}"' in text for c in rule.choices)  # already listed
    if allowed and allowed not in ("true or false", "a text", "a non-empty text") and not named:
        text = f"{text} [{allowed}]" if text else allowed
    return f"{text} (default: {value!r})".strip().replace("%", "%%")


FlagGroup = type | tuple[str, Sequence[str]]  # a settings class (its declared constants) or a heading and constants


def group_constants(group: FlagGroup) -> tuple[str, list[str]]:
    """A flag group's heading and constants: a settings class gives its docstring's first line and what it declares."""
    if isinstance(group, tuple):
        return group[0], list(group[1])
    title = (group.__doc__ or group.__name__).splitlines()[0].rstrip(".")
    return title, list(settings.constants_of(group, declared_only=True).values())


def add_config_flags(parser: argparse.ArgumentParser, config: types.ModuleType, groups: Sequence[FlagGroup]) -> None:
    """Add one override flag per config constant of ``groups``, under their headings; no other constant is offered."""
    constants = config_constants(config)
    docs = constant_docs(config)
    for group in groups:
        title, names = group_constants(group)
        section = parser.add_argument_group(title)
        for name in names:
            value = constants[name]
            kwargs: dict[str, Any] = {"dest": name, "default": value, "help": _help(name, value, docs.get(name), False)}
            if isinstance(value, bool):
                kwargs["action"] = argparse.BooleanOptionalAction
            elif isinstance(value, tuple | list) and (not value or isinstance(value[0], str)):
                kwargs.update(nargs="+" if settings.RULES[name].choices else "*", type=str)  # names (INPUTS)
            elif isinstance(value, tuple | list):
                kwargs.update(nargs=len(value), type=type(value[0]))
            else:
                kwargs.update(type=type(value), metavar=type(value).__name__.upper())
            action = section.add_argument(flag_name(name), **kwargs)
            action.full_help = _help(name, value, docs.get(name))  # --help-all


class HelpAll(argparse.Action):
    """``--help-all``: the help with each setting's whole comment from config.py, not its first clause."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        for action in parser._actions:
            action.help = getattr(action, "full_help", action.help)
        parser.print_help()
        parser.exit()


def build_parser(description: str | None, config: types.ModuleType, groups: Sequence[FlagGroup],
                 usage: str = "%(prog)s [flags]") -> argparse.ArgumentParser:
    """A parser with the script's description and a flag for each setting of ``groups``, grouped."""
    parser = Parser(description=description, usage=usage, formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="Each flag overrides the config.py constant of the same name (--seed: SEED) for one run; "
                           "the other constants are set in config.py. --help-all: each setting in full.")
    parser.add_argument("--help-all", action=HelpAll, help="show each setting's whole description and exit")
    add_config_flags(parser, config, groups)
    parser.add_argument("--log-level", default="INFO", choices=settings.LOG_LEVELS, type=str.upper,
                        help="how much to log (default: INFO)")
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The script's arguments, then the environment the heavy libraries need (``environment.setup``): a script
    imports its stage after this, so that ``--help`` and argument errors answer before torch loads."""
    args = parser.parse_args(argv)
    environment.setup()
    return args


def settings_from_args(args: argparse.Namespace, config: types.ModuleType) -> dict[str, Any]:
    """The effective value of every config constant after command-line overrides, validated."""
    cfg = {name: getattr(args, name, value) for name, value in config_constants(config).items()}
    settings.validate(cfg)
    return cfg


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
    environment.configure_offline_environment()  # the rest (torch's) once the arguments are parsed: ``parse``
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
