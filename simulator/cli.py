"""The ``layerpipe`` command line: one console script with subcommands.

Each subcommand lives in ``simulator/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``run=function(args) -> int``.
Errors the user caused (:class:`models.errors.LayerPipeError`, bad arguments) print one
line on stderr and exit with 2, and so does a MemoryError (a configuration too large for the
machine); nothing else is caught, so a bug still shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from models.errors import LayerPipeError
from simulator.commands import SUMMARIES

#: subcommand modules, in the order ``layerpipe --help`` lists them
COMMANDS = tuple(SUMMARIES)


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage block before an error; we print one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _version() -> str:
    """The installed distribution's version (the package's metadata; no import of the rest)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("layerpipe-sim")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with subcommand ``command`` complete (every one when None) and the others as
    one-line entries: a subcommand's module imports what it runs (SciPy, the trainer, ...), so
    a command imports only its own (``layerpipe --help`` and ``compare`` start fast)."""
    parser = _OneLineParser(
        prog="layerpipe",
        description="Discrete-event simulator of pipelined DNN training on multiprocessors "
        "(LayerPipe, LayerPipe2, SpikePipe, DHO2 against PipeDream, GPipe, 1F1B, interleaved 1F1B, zero-bubble).",
    )
    parser.add_argument("--version", action="version", version=f"layerpipe-sim {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    sub.required = True
    for name in COMMANDS:
        if command is None or name == command:
            _plain_help(importlib.import_module(f"simulator.commands.{name}").register(sub))
        else:
            sub.add_parser(name, help=SUMMARIES[name])
    return parser


def plain(text: str | None) -> str | None:
    """Help text without reStructuredText markup: the module docstrings that serve as
    descriptions quote options as ``--flag`` and names as `name`; a terminal shows them bare.

    >>> plain("run ``layerpipe networks`` (see `describe`)")
    'run layerpipe networks (see describe)'
    """
    if text is None:
        return None
    return re.sub(r"``([^`]+)``|`([^`]+)`", lambda m: m.group(1) or m.group(2), text)


def _plain_help(parser: argparse.ArgumentParser | None) -> None:
    if parser is None:
        return
    parser.description = plain(parser.description)
    parser.epilog = plain(parser.epilog)
    for action in parser._actions:  # argparse has no public way to reach the arguments it holds
        if isinstance(action.help, str):
            action.help = plain(action.help)


def _command(argv: list[str]) -> str:
    """The subcommand ``argv`` asks for ("" when none: the top-level help or an error)."""
    return argv[0] if argv and argv[0] in SUMMARIES else ""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(_command(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a full disk or device must fail here, inside the handlers, not at exit
        return code
    except LayerPipeError as exc:
        message = str(exc).replace("\n", " ")
        print(f"layerpipe {args.command}: error: {message}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # a configuration too large for this machine (e.g. numpy cannot allocate)
        message = str(exc).replace("\n", " ") or "the configuration is too large for this machine"
        print(f"layerpipe {args.command}: error: out of memory: {message}; use a smaller network or batch",
              file=sys.stderr)
        return 2
    except BrokenPipeError:  # `layerpipe ... | head`
        _drop_stdout()
        return 0
    except OSError as exc:  # the output cannot be written: a full disk, /dev/full, a vanished mount
        _drop_stdout()
        print(f"layerpipe {args.command}: error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        return 2


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush of what could not be written
    does not print a second error (the Python documentation's advice for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout already closed or not a real file
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
