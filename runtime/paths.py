"""Paths shared by sources and sinks: which paths OpenCV may be given, and the numbered run
folders of --save (a fresh `DIR-2`, `DIR-3`, ... when DIR holds results).

On POSIX a file name is bytes; Python hands bytes that are not UTF-8 to str as surrogate
escapes ('\\udcff' for 0xff), and OpenCV's bindings crash the process (SIGSEGV) when given such
a str. Every path that reaches OpenCV goes through `opencv_path` first.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path, PurePath


def opencv_path(path: PurePath | str) -> str | None:
    """`path` as the str to give OpenCV, or None when it holds bytes that are not UTF-8."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


def resolved(path: Path) -> Path:
    """`path.resolve()`, or for a symlink loop, which `resolve` raises on (RuntimeError before
    Python 3.13), or a name with a NUL byte (ValueError), the absolute path as named: such a
    path points nowhere, and the loader or writer that meets it reports it as the input or
    output it is."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return path.absolute()


def _numbered(folder: Path) -> Path:
    """`folder` with a name to number: `.` and `..` resolved to the folder they mean."""
    return folder.resolve() if folder.name in ("", "..") else folder


def fresh_folder(folder: Path) -> Path:
    """`folder` when it is missing or empty, else the first of `folder-2`, `folder-3`, ...
    that is: what --save writes to, so a run never writes into an earlier run's results."""
    base = _numbered(folder)
    numbered = (base.with_name(f"{base.name}-{number}") for number in itertools.count(2))
    return next(filter(_unused, itertools.chain([folder], numbered)))


def _unused(folder: Path) -> bool:
    """Nothing at `folder`, or an empty folder."""
    return not os.path.lexists(folder) or (folder.is_dir() and not any(folder.iterdir()))


def in_run_folders(folder: Path) -> Callable[[Path], bool]:
    """A test of whether a path lies in the --save folder `folder` or one of its numbered run
    folders (`folder-2`, ...): what sources skip, so no run reads an earlier run's outputs."""
    base = _numbered(folder)
    root, parent = folder.resolve(), base.parent.resolve()
    run_name = re.compile(re.escape(base.name) + r"(-[0-9]+)?")

    def inside(path: Path) -> bool:
        real = resolved(path)
        if real.is_relative_to(root):
            return True
        if real == parent or not real.is_relative_to(parent):
            return False
        return run_name.fullmatch(real.relative_to(parent).parts[0]) is not None

    return inside
