"""File names shared by sources and sinks: which paths OpenCV may be given.

On POSIX a file name is bytes; Python hands bytes that are not UTF-8 to str as surrogate
escapes ('\\udcff' for 0xff), and OpenCV's bindings crash the process (SIGSEGV) when given such
a str. Every path that reaches OpenCV goes through `opencv_path` first.
"""

from __future__ import annotations

from pathlib import PurePath


def opencv_path(path: PurePath | str) -> str | None:
    """`path` as the str to give OpenCV, or None when it holds bytes that are not UTF-8."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text
