"""Entry point: builds the subcommand parser and turns user errors into one-line messages."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand name -> module in convdet.commands. Order is the order shown by --help.
COMMANDS: tuple[str, ...] = ("train", "export", "detect", "scenes", "evaluate", "benchmark", "info")

# Optional dependency (top-level module name) -> the extra that installs it.
EXTRAS = {
    "tensorflow": "train",
    "keras": "train",
    "tf2onnx": "train",
    "onnx": "train",
    "ai_edge_litert": "tflite",
    "tflite_runtime": "tflite",
}

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A user-facing failure: printed as one line, exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    """The `convdet` parser with one subparser per module in `COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="convdet",
        description="Convolutionalized digit detector: train, export and run it.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"convdet.commands.{name}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def missing_extra_message(error: ModuleNotFoundError, command: str) -> str | None:
    """One line naming the extra to install when an optional dependency is missing."""
    top = (error.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"convdet {command} needs {top}, which is not installed: pip install 'convdet[{extra}]'"


def printable(text: str) -> str:
    """`text` as one printable line: bytes of a file name that are not UTF-8 (surrogate
    escapes) as `\\xff`, other unprintable characters (a newline in a name) as `\\n`, ...,
    so a message about any file stays one line and can always be printed."""
    return "".join(
        char
        if char.isprintable()
        else f"\\x{ord(char) - 0xDC00:02x}"
        if "\udc80" <= char <= "\udcff"
        else repr(char)[1:-1]
        for char in text
    )


def _never_fail_to_print() -> None:
    """Let stdout and stderr escape what their encoding cannot show (an ASCII or C locale),
    instead of raising mid-run."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return its exit status (0 ok, 1 partial failure, 2 usage, 130 Ctrl-C)."""
    _never_fail_to_print()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CommandError as error:
        print(f"convdet {args.command}: error: {printable(str(error))}", file=sys.stderr)
        return error.exit_code
    except ModuleNotFoundError as error:
        message = missing_extra_message(error, args.command)
        if message is None:
            raise
        print(f"convdet {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as error:
        print(f"convdet {args.command}: error: {printable(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"convdet {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
