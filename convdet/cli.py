"""Entry point: builds the subcommand parser and turns user errors into one-line messages.

A command's `ConvdetError` (a bad input, option, model file or output path) and `OSError` (a
path that is missing, unreadable or on a full disk) print as one line, exit status 2 (a
`CommandError` its own); any other exception is a bug and keeps its traceback. With
CONVDET_DEBUG=1 in the environment the one-line errors are raised too, traceback and all.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from convdet.runtime.errors import ConvdetError

# Subcommand name -> module in convdet.commands. Order is the order shown by --help.
COMMANDS: tuple[str, ...] = ("train", "export", "detect", "scenes", "evaluate", "benchmark", "info")

# Optional dependency (top-level module name) -> what to `pip install` for it. onnxruntime is a
# dependency, but a LiteRT-only board installs convdet with --no-deps and goes without it.
INSTALL = {
    "tensorflow": "'convdet[train]'",
    "keras": "'convdet[train]'",
    "tf2onnx": "'convdet[train]'",
    "onnx": "'convdet[train]'",
    "ai_edge_litert": "'convdet[tflite]'",
    "tflite_runtime": "'convdet[tflite]'",
    "onnxruntime": "onnxruntime",
}

EXIT_USAGE = 2
DEBUG_VARIABLE = "CONVDET_DEBUG"
EXIT_INTERRUPTED = 130
# The most inference threads --threads takes (detect, benchmark): a fixed bound, so a command
# that works on one machine is not refused on another (more threads than cores is only slower),
# far above the cores of any board or server this runs on, yet low enough that a typo
# (--threads 100000) cannot make the engine try to start a hundred thousand threads.
MAX_THREADS = 256


class CommandError(ConvdetError):
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
    parser.add_argument("--version", action="version", version=f"convdet {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"convdet.commands.{name}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run, command_parser=sub)
    return parser


def _version() -> str:
    """The installed convdet's version (`unknown` when run from a tree never installed);
    importlib.metadata is imported here, where `main` already handles signals."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("convdet")
    except PackageNotFoundError:
        return "unknown"


def install_hint(module: str | None) -> str | None:
    """`pip install ...` for an optional dependency (a module name, as a ModuleNotFoundError
    gives it), None for other modules."""
    what = INSTALL.get((module or "").split(".")[0])
    return None if what is None else f"pip install {what}"


def missing_extra_message(error: ModuleNotFoundError, command: str) -> str | None:
    """One line naming what to install when an optional dependency is missing."""
    hint = install_hint(error.name)
    if hint is None:
        return None
    top = (error.name or "").split(".")[0]
    return f"convdet {command} needs {top}, which is not installed: {hint}"


def _refuse_unknown(parser: argparse.ArgumentParser, unknown: list[str]) -> None:
    """Exit with argparse's usage error for arguments no option takes, suggesting the closest
    option for a misspelt one (`--cof` -> `--conf`); Python 3.14's suggest_on_error does not
    cover options, and older versions suggest nothing."""
    message = f"unrecognized arguments: {' '.join(unknown)}"
    options = [option for action in parser._actions for option in action.option_strings]
    for argument in unknown:
        if argument.startswith("-"):
            close = difflib.get_close_matches(argument.split("=", 1)[0], options, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
                break
    parser.error(message)


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


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush into a closed pipe does not
    print an error of its own after the run has ended quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (a test's capture)
        pass
    finally:
        os.close(devnull)


class Interrupts:
    """SIGINT and SIGTERM as KeyboardInterrupt while entered (a service being stopped ends like
    Ctrl-C, its outputs closed cleanly), held back inside `deferred()` blocks until they end.

    A record's write and its count are one such block, so a signal landing between them cannot
    leave the summary disagreeing with the file. A second signal while one is held back raises
    at once: a write blocked on a pipe nobody reads must not make the run unstoppable. Handlers
    are installed only in the main thread, and SIGINT's only where it still has Python's own
    handler (one that is ignored, as for a background job, stays so).
    """

    def __init__(self) -> None:
        self._depth = 0
        self._pending = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signum == signal.SIGINT and (
                    signal.getsignal(signum) is not signal.default_int_handler
                ):
                    continue
                self._previous[signum] = signal.signal(signum, self._interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _interrupt(self, _signum: int, _frame: Any) -> None:
        if self._depth and not self._pending:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A block that a single signal does not split: KeyboardInterrupt comes when it ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._pending and not self._depth:
                self._pending = False
                raise KeyboardInterrupt


def _debug() -> bool:
    """True when CONVDET_DEBUG=1: errors shown as one line are raised with their traceback."""
    return os.environ.get(DEBUG_VARIABLE) == "1"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return its exit status (0 ok, 1 partial failure, 2 usage, 130 Ctrl-C).
    A reader that closes stdout early (`| head`) ends the run quietly with status 0. Ctrl-C or
    SIGTERM while the parser is built (its imports take about half a second) ends the same way
    as later: one line and status 130, not a traceback or a kill."""
    _never_fail_to_print()
    try:
        with Interrupts():
            parser = build_parser()
            args, unknown = parser.parse_known_args(argv)
    except KeyboardInterrupt:
        print("convdet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if unknown:
        _refuse_unknown(args.command_parser, unknown)
    try:
        return int(args.handler(args) or 0)
    except ModuleNotFoundError as error:
        message = missing_extra_message(error, args.command)
        if message is None or _debug():
            raise
        print(f"convdet {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    # ConvdetError: what convdet means to tell a user. OSError: the system's answer about a path
    # the user named (missing, no permission, disk full), whose message names the path.
    except (ConvdetError, OSError) as error:
        if _debug():
            raise
        print(f"convdet {args.command}: error: {printable(str(error))}", file=sys.stderr)
        return error.exit_code if isinstance(error, CommandError) else EXIT_USAGE
    except KeyboardInterrupt:
        print(f"convdet {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
