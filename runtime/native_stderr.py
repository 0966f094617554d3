"""Lines that native libraries print on file descriptor 2 themselves, taken off while they run.

libjpeg (inside OpenCV) and LiteRT's XNNPACK delegate write warnings and notices straight to
descriptor 2, with no setting to stop them; convdet reports errors in lines of its own, and
libjpeg's "premature end of data segment" is the only sign of a JPEG cut short. While a block
runs, descriptor 2 goes to a pipe; afterwards the lines the caller claims are handed to it and
any other line (another thread's message) is passed on, a moment late but never lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

_DESCRIPTOR = threading.Lock()  # one block at a time holds descriptor 2


@contextlib.contextmanager
def native_lines(claimed: re.Pattern[str]) -> Iterator[list[str]]:
    """Run the block with descriptor 2 on a pipe; the yielded list then holds the lines that
    match `claimed` (stripped), and the other lines go on to descriptor 2."""
    lines: list[str] = []
    with _DESCRIPTOR:
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        kept = os.dup(2)
        os.dup2(write_end, 2)
        os.close(write_end)
        try:
            yield lines
        finally:
            os.dup2(kept, 2)
            os.close(kept)
            with os.fdopen(read_end, "rb") as pipe:
                captured = pipe.read().decode("utf-8", "replace").splitlines(keepends=True)
            lines.extend(line.strip() for line in captured if claimed.match(line))
            others = "".join(line for line in captured if not claimed.match(line))
            if others:
                os.write(2, others.encode())
