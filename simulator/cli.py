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
import sys

from models.errors import LayerPipeError

#: subcommand modules, in the order ``layerpipe --help`` lists them
COMMANDS = ("networks", "describe", "simulate", "compare", "explain", "trace", "gantt", "sweep", "plot", "train", "tta", "dho2")


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage block before an error; we print one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="layerpipe",
        description="Discrete-event simulator of pipelined DNN training on multiprocessors "
        "(LayerPipe, LayerPipe2, SpikePipe, DHO2 against PipeDream, GPipe, 1F1B, zero-bubble).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"simulator.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
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
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
