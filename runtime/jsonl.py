"""The records file of `convdet detect --json`: JSON Lines written so a crash never leaves half a
record, and which inputs a file has no record for yet (what `--resume` runs).

Each record is appended whole and flushed: a write that fails part-way (a full disk, an I/O
error) is cut off again, so the file always ends with a complete record; an incomplete last
line left by a killed run is removed before appending. A file that already holds results is
never written over.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from convdet.runtime.errors import ConvdetError, DataError


class RecordError(ConvdetError, OSError):
    """A JSON record that could not be written whole (disk full, I/O error); the file was cut
    back to the records before it."""


class JsonlSink:
    """JSON Lines to a file or stdout (`-`), one record per line, each written whole and flushed.

    An existing non-empty file is refused unless `append=True`, so results already written are
    never destroyed. A record is on disk whole or not at all: a write that fails part-way is cut
    off again and raises RecordError. Appending first removes an incomplete last line (left by
    a killed run or an older writer) so every line stays a record; `repaired` is its length.
    """

    def __init__(self, target: str | Path, *, append: bool = False, stdout: TextIO | None = None):
        self.target = str(target)
        self.append = append
        self.stdout = stdout
        self.records = 0
        self.repaired = 0
        self._fd: int | None = None

    def __enter__(self) -> JsonlSink:
        if self.target == "-":
            self.stdout = self.stdout or sys.stdout
            return self
        Path(self.target).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.target, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        size = os.fstat(fd).st_size
        if size and not self.append:
            os.close(fd)
            raise FileExistsError(
                f"{self.target} already holds results; pass --append to add to it "
                "or choose another file"
            )
        self._fd = fd
        complete = _complete_length(fd, size)
        if complete < size:
            os.ftruncate(fd, complete)
            self.repaired = size - complete
        return self

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a single line."""
        line = json.dumps(record, allow_nan=False) + "\n"
        if self._fd is None:
            assert self.stdout is not None, "JsonlSink used outside its `with` block"
            self.stdout.write(line)
            self.stdout.flush()
        else:
            self._write_whole(line.encode("utf-8"))
        self.records += 1

    def _write_whole(self, data: bytes) -> None:
        """Append `data` in as many write() calls as it takes; if one fails, cut off what was
        written, so the file still ends with a complete record."""
        assert self._fd is not None
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as error:
            if written:  # from the end: our bytes are the file's last (O_APPEND)
                os.ftruncate(self._fd, max(os.fstat(self._fd).st_size - written, 0))
            raise RecordError(
                f"{self.target}: {error.strerror or error}; record {self.records + 1} of this "
                "run not written, the file ends with the last complete record"
            ) from error

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        elif self.stdout is not None:
            self.stdout.flush()


def _complete_length(fd: int, size: int, block: int = 1 << 16) -> int:
    """How many of the file's first `size` bytes are whole lines: up to its last newline."""
    end = size
    while end > 0:
        start = max(end - block, 0)
        os.lseek(fd, start, os.SEEK_SET)
        newline = os.read(fd, end - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def unrecorded(
    path: str | Path, inputs: Iterable[str], retry_failed: bool = False
) -> tuple[set[str], set[str]]:
    """Which `inputs` (source strings, as records name them) the JSON Lines file at `path` has
    no record for yet, and which of those have only `error` records (re-run as they are not
    counted done when `retry_failed`), so `detect --resume` runs only the rest.

    The file is read a line at a time and no record is kept: memory is one set of references
    to the input strings (about 50 bytes an input, some 500 MB for 10M inputs, however long
    the file) plus the failed sources retried. A missing file has no records; a last line
    without its newline is skipped, as the --append repair removes it; any other line that is
    not a record with a `source` is a DataError (a ValueError) naming its line."""
    pending = set(inputs)
    failed: set[str] = set()
    try:
        file = open(path, "rb")  # noqa: SIM115 (a `with` below; a missing file has no records)
    except FileNotFoundError:
        return pending, failed
    with file:
        for number, line in enumerate(file, 1):
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
                source = record["source"]
            except (ValueError, TypeError, KeyError):
                source = None
            if not isinstance(source, str):
                raise DataError(
                    f"{path} line {number} is not a convdet record with a source; "
                    "--resume cannot tell which input it was"
                )
            if retry_failed and "error" in record:
                if source in pending:
                    failed.add(source)
            else:
                pending.discard(source)
    return pending, failed & pending
