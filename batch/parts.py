"""The output layout of a distributed batch, so every input ends up in the --json FILE exactly
once however the job dies.

While the job runs, the driver writes each batch's records, as the workers return them, to a
part file in the folder FILE.parts beside FILE, named `FIRST-LAST.jsonl` (the positions in the
batch of its first and last input). A part is written under a temporary name and renamed, so
the folder holds whole parts or none, whenever the driver dies; a killed worker's batch is
retried by Ray and reaches the driver once. When
every input is done the parts are joined in input order after what FILE already held
(--append) into a temporary file renamed over FILE, then the folder goes: FILE is either as it
was or complete. --resume first joins the parts an unfinished run left the same way, so FILE
alone says what is done, as for `convdet detect --resume`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convdet.runtime.jsonl import JsonlSink
from convdet.runtime.savers import write_atomic

PART_NAME = re.compile(r"(\d+)-(\d+)\.jsonl")
# Written just before the assembled file replaces FILE: FILE's size once it is complete, so a
# run that died between the rename and removing the folder is recognised as done.
ASSEMBLED = "assembled-size"


def parts_folder(json: str | Path) -> Path:
    """The folder holding the part files of the --json FILE `json`: FILE.parts beside it."""
    return Path(f"{json}.parts")


@dataclass(frozen=True, order=True)
class Part:
    """One part file: the records of the inputs `first` to `last` (positions in the batch),
    at `path`; ordered as the final file joins them."""

    first: int
    last: int
    path: Path


def part_path(folder: Path, first: int, last: int) -> Path:
    """Where the part holding the records of inputs `first` to `last` is written."""
    return folder / f"{first:010d}-{last:010d}.jsonl"


def write_part(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write `records` as the part file `path`, whole or not at all: JSON Lines (the --json
    sink's) to a temporary file beside it, then renamed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)  # a killed attempt of this process id's
    try:
        with JsonlSink(temporary) as sink:
            for record in records:
                sink.write(record)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def parts(folder: Path) -> list[Part]:
    """The whole part files in `folder`, in input order (temporary files are not parts)."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            match = PART_NAME.fullmatch(entry.name)
            if match:
                found.append(Part(int(match[1]), int(match[2]), Path(entry.path)))
    return sorted(found)


def settle(json: Path, folder: Path) -> bool:
    """Finish what a run that died while assembling left: True (and the folder removed) when
    `json` was already replaced by the assembled file; otherwise the parts stay for --resume."""
    marker = folder / ASSEMBLED
    try:
        size = int(marker.read_text())
    except (FileNotFoundError, ValueError):
        return False
    if json.is_file() and json.stat().st_size == size:
        shutil.rmtree(folder)
        return True
    marker.unlink()
    return False


def assemble(json: Path, folder: Path) -> int:
    """Join the parts in `folder`, in input order, after `json`'s records (whole lines: the
    run opened it as --json FILE first) into `json`, replaced atomically; then remove the
    folder. Returns how many parts were joined."""
    found = parts(folder)
    if found:
        assembled = folder / "assembled.tmp"
        shutil.copyfile(json, assembled)
        with open(assembled, "ab") as out:
            for part in found:
                with open(part.path, "rb") as records:
                    shutil.copyfileobj(records, out)
        write_atomic(folder / ASSEMBLED, str(assembled.stat().st_size).encode())
        os.replace(assembled, json)
    shutil.rmtree(folder, ignore_errors=True)
    return len(found)
