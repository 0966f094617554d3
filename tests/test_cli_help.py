"""`--help` of every command reads one way: each option says what it does, choices are shown as
`a|b|c`, and defaults as "(default: X)", so a new option cannot bring in another style."""

from __future__ import annotations

import argparse
import re

import pytest

from convdet.cli import COMMANDS, build_parser

# argparse's own way of showing choices, {auto,on,off}, which the `auto|on|off` metavars replace.
BRACED_CHOICES = re.compile(r"\{[\w.-]+(,[\w.-]+)+\}")
# The word "default" is allowed in "(default: X)", in "by default" and in "default model" (the
# shipped model convdet runs without --model); any other use is another way to show a default.
ALLOWED_DEFAULT = re.compile(r"\(default: |\bby default\b|\bdefault model\b")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    """Every `convdet COMMAND` parser, by command."""
    (action,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options and positional arguments of one parser, without -h/--help."""
    return [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_says_what_it_does_and_shows_choices_and_defaults_one_way(command):
    parser = subparsers()[command]
    for action in options(parser):
        name = "/".join(action.option_strings) or action.dest
        text = action.help
        assert text and text != argparse.SUPPRESS and text.strip(), f"{command} {name}: no help"
        if action.choices:
            assert action.metavar == "|".join(action.choices), f"{command} {name}: shown as a|b"
        left = ALLOWED_DEFAULT.sub("", text)
        assert not re.search(r"\bdefaults?\b", left, re.IGNORECASE), (
            f"{command} {name}: a default not shown as '(default: X)': {text!r}"
        )
        default = action.default
        if action.option_strings and default not in (None, "", argparse.SUPPRESS):
            if isinstance(default, bool):
                continue  # a flag: its default is not giving it
            assert "(default: " in text, f"{command} {name}: default {default!r} not shown"
            assert f"({default})" not in text, f"{command} {name}: bare '({default})'"
    assert not BRACED_CHOICES.search(parser.format_help()), f"{command}: {{a,b}} choices"
