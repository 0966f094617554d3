"""Option values of the commands, checked: `type=`-style callables and one `error()` helper.

Each callable takes an option's text and returns its value, or stops the command with one line
naming the option (`error`, exit status 2). Commands apply them after parsing, so a bad value
reads `convdet CMD: error: --conf: expected a number, got 'x'` rather than argparse's usage
block. Light on imports: the parser for `--help` imports this module.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from convdet.cli import CommandError
from convdet.runtime.defaults import MAX_SCALE, MIN_SCALE

Number = TypeVar("Number", int, float)
MAX_SIDE = 16384  # px: the longest side a size option takes (a camera's frame, a scene canvas)
MAX_SEED = 2**32 - 1  # the largest seed every generator takes (numpy's legacy one: 32 bits)


def error(message: str) -> NoReturn:
    """Stop the command: `message` printed as one line, exit status 2."""
    raise CommandError(message)


def number(
    option: str, kind: type[Number], minimum: float, maximum: float = float("inf")
) -> Callable[[str], Number]:
    """A `type=` callable for `option`: its text as `kind` (int or float) in minimum..maximum."""

    def parse(value: str) -> Number:
        try:
            found = kind(value)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            error(f"{option}: expected {noun}, got {value!r}")
        if not minimum <= found <= maximum:
            upper = "" if maximum == float("inf") else f" and at most {maximum:g}"
            error(f"{option}: expected at least {minimum:g}{upper}, got {value}")
        return found

    return parse


def choice(option: str, choices: Sequence[str]) -> Callable[[str], str]:
    """A `type=` callable for `option`: its text if it is one of `choices`."""

    def parse(value: str) -> str:
        if value not in choices:
            error(f"{option}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


def names(
    option: str, choices: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None
) -> Callable[[str], tuple[str, ...]]:
    """A `type=` callable for `option`: comma-separated names of `choices`, or of `groups` (each
    standing for its names), as a tuple in the order given, groups expanded."""
    known = groups or {}

    def parse(text: str) -> tuple[str, ...]:
        found: list[str] = []
        for name in filter(None, (part.strip() for part in text.split(","))):
            if name not in choices and name not in known:
                error(f"{option} {text}: choose from {', '.join([*choices, *known])}")
            found.extend(known.get(name, (name,)))
        if not found:
            error(f"{option}: name at least one of {', '.join([*choices, *known])}")
        return tuple(found)

    return parse


def given(value: str | None, parse: Callable[[str], Any]) -> Any:
    """`parse(value)` for an option given, None for one left out."""
    return None if value is None else parse(value)


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480); argparse.ArgumentTypeError for text of another form."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT like 640x480, got {text!r}"
        ) from error
    return width, height


def size(option: str) -> Callable[[str], tuple[int, int]]:
    """A `type=` callable for `option`: 'WxH' text as (width, height), each side 1..MAX_SIDE px."""

    def parse(text: str) -> tuple[int, int]:
        try:
            found = parse_size(text)
        except argparse.ArgumentTypeError as refused:
            error(f"{option}: {refused}")
        if not all(1 <= side <= MAX_SIDE for side in found):
            error(f"{option}: expected sides of 1 to {MAX_SIDE} px, got {text!r}")
        return found

    return parse


def parse_scales(text: str) -> tuple[float, ...] | None:
    """--scales: '0.5,1,2' -> (0.5, 1.0, 2.0), each factor in MIN_SCALE..MAX_SCALE, or 'auto'
    -> None (the runtime's image pyramid)."""
    if text.strip() == "auto":
        return None
    parts = [part for part in text.split(",") if part.strip()] or [""]
    factor = number("--scales", float, MIN_SCALE, MAX_SCALE)
    return tuple(factor(part) for part in parts)


def factor_range(option: str) -> Callable[[str], tuple[float, float]]:
    """A `type=` callable for `option`: 'LO,HI' -> (LO, HI), factors with 0 < LO <= HI <= 1."""

    def parse(value: str) -> tuple[float, float]:
        parts = value.split(",")
        if len(parts) != 2:
            error(f"{option}: expected LO,HI, got {value!r}")
        low, high = (number(option, float, 1e-3, 1.0)(part) for part in parts)
        if low > high:
            error(f"{option}: expected LO <= HI, got {value}")
        return low, high

    return parse


# --camera-size: '1280x720' -> (1280, 720).
camera_size = size("--camera-size")


def parse_classes(
    text: str | None, labels: Sequence[str], background: int
) -> tuple[int, ...] | None:
    """--classes: '3,7' -> the class ids (a label first, else an id) of the model's digit
    classes, or None when not given (all classes); the model's labels are needed, so this one
    runs once the model is loaded, not as a `type=`."""
    if text is None:
        return None
    classes = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        if part in labels:
            class_id = labels.index(part)
        elif part.isdigit() and int(part) < len(labels):
            class_id = int(part)
        else:
            digits = ", ".join(label for i, label in enumerate(labels) if i != background)
            error(f"--classes: no class {part!r} in this model (it has {digits})")
        if class_id == background:
            error(f"--classes: {part!r} is the background class, not a digit")
        classes.append(class_id)
    if not classes:
        error(f"--classes: expected labels or class ids, got {text!r}")
    return tuple(dict.fromkeys(classes))


def add_recheck(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--recheck on|off, the second look at each detection (convdet.runtime.recheck): one
    definition for detect and evaluate; `recheck(args.recheck)` reads it."""
    parser.add_argument(
        "--recheck",
        default="on",
        metavar="on|off",
        help="look again at each detection's ink, normalized as MNIST digits are: drop what the "
        "model calls background there, take the digit it is sure of (default: on)",
    )


def recheck(value: str) -> bool:
    """--recheck's text as a bool; one-line error for anything but on or off."""
    return choice("--recheck", ("on", "off"))(value) == "on"
