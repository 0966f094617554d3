"""The image files a folder or a glob names, and the folders on the way that could not be
listed, each with why: a batch takes those among its files as failures, so images skipped for
want of permission are never silent.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Sequence
from itertools import islice, takewhile
from pathlib import Path, PurePath

from convdet.runtime.images import IMAGE_SUFFIXES


def _cannot_list(error: OSError) -> str:
    """The error record of a folder that could not be listed."""
    return f"cannot list this folder ({error.strerror or error}); its images are skipped"


def folder_files(
    folder: Path, *, recursive: bool = False
) -> tuple[list[tuple[Path, PurePath]], dict[Path, str]]:
    """Entries of `folder` (and below with `recursive`, not following links to folders) with
    image names, sorted, and the subfolders that could not be listed, each with why: a batch
    takes them among its files as failures, so images skipped for want of permission are never
    silent. OSError when `folder` itself cannot be listed."""
    unlisted: dict[Path, str] = {}

    def refused(error: OSError) -> None:
        if Path(error.filename) == folder:
            raise error
        unlisted[Path(error.filename)] = _cannot_list(error)

    walk = os.walk(folder, onerror=refused)
    # os.walk's `names` are all that is not a folder: regular files, and FIFOs, devices,
    # dangling links and symlink loops with image names, which become their own failures
    # (read as a list's entries are) instead of vanishing. A folder named x.png is a folder:
    # descended into with --recursive, left out without, as any subfolder is; nothing in it is
    # wrong, so it is no failure.
    levels = walk if recursive else islice(walk, 1)
    candidates = (Path(root, name) for root, _, names in levels for name in names)
    images = [path for path in candidates if path.suffix.lower() in IMAGE_SUFFIXES]
    files = sorted((path, path.relative_to(folder)) for path in [*images, *unlisted])
    return files, unlisted


def glob_files(pattern: str) -> tuple[list[tuple[Path, PurePath]], dict[Path, str]]:
    """Entries matching `pattern` (`**` descends), relative to its fixed leading folder, and
    the folders the match had to list but could not, each with why (as `folder_files`: pathlib's
    glob skips those silently). Entries that are not folders match, as in `folder_files`."""
    parts = PurePath(pattern).parts
    fixed = list(takewhile(lambda part: not has_magic(part), parts[:-1]))
    root = Path(*fixed) if fixed else Path()
    unlisted: dict[Path, str] = {}
    found = set(_globbed(root, parts[len(fixed) :], unlisted))
    files = sorted((path, path.relative_to(root)) for path in [*found, *unlisted])
    return files, unlisted


def _globbed(folder: Path, parts: Sequence[str], unlisted: dict[Path, str]) -> Iterator[Path]:
    """Paths below `folder` matching the glob `parts`, as pathlib matches them: a part before
    the last matches folders (links to folders too), `**` any folders in between (never through
    a link, so a link loop cannot make it endless), the last part what is not a folder.
    Folders that cannot be listed go to `unlisted`."""
    part, rest = parts[0], parts[1:]
    if part == "**":
        if rest:  # a trailing ** matches folders alone, never an input
            yield from _globbed(folder, rest, unlisted)
            for entry in _entries(folder, unlisted):
                if _is_folder(entry) and not entry.is_symlink():
                    yield from _globbed(Path(entry.path), parts, unlisted)
        return
    if has_magic(part):
        named = [entry for entry in _entries(folder, unlisted) if fnmatch.fnmatch(entry.name, part)]
        candidates = [(Path(entry.path), _is_folder(entry)) for entry in named]
    else:
        path = folder / part
        candidates = [(path, path.is_dir())] if os.path.lexists(path) else []
    for path, is_folder in candidates:
        if rest and is_folder:
            yield from _globbed(path, rest, unlisted)
        elif not rest and not is_folder:
            yield path


def _entries(folder: Path, unlisted: dict[Path, str]) -> list[os.DirEntry[str]]:
    """The entries of `folder`: none where there is no such folder (nothing matches there),
    and none, with why kept in `unlisted`, where it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        unlisted[folder] = _cannot_list(error)
        return []


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """Whether `entry` is a folder or a link to one; False for a dangling link or a loop."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def has_magic(text: str) -> bool:
    """Whether `text` holds a glob wildcard (`*`, `?` or `[`)."""
    return re.search(r"[*?[]", text) is not None
