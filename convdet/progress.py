"""Progress of a long command on stderr, shared by `detect` and `evaluate`: a tqdm bar when
stderr is a terminal, otherwise (a log, a service, CI) a line every few seconds with
done/total, rate and ETA, so a run is never silent for minutes."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from convdet.cli import printable


class Progress:
    """Progress towards `total` `unit` (plural, e.g. "images") of `convdet command`: a bar on a
    terminal, else a line every `interval` seconds (0: none); nothing when the total is unknown.
    `print` writes lines around the bar, from any thread."""

    def __init__(self, command: str, total: int | None, unit: str, interval: float) -> None:
        self.prefix = f"convdet {command}: "
        self.total = total
        self.unit = unit
        self.interval = interval
        self.started = time.perf_counter()
        self._logged = self.started
        self._lock = threading.Lock()
        self.bar: Any = None
        if total and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit=unit.removesuffix("s"), file=sys.stderr, dynamic_ncols=True
            )

    def print(self, text: str, file: TextIO) -> None:
        """One line on `file`, with the progress bar moved out of its way."""
        with self._lock:
            if self.bar is None:
                print(text, file=file, flush=True)
            else:
                self.bar.write(text, file=file)

    def message(self, text: str) -> None:
        """One line on stderr, prefixed like the CLI's own errors (file names escaped)."""
        self.print(self.prefix + printable(text), sys.stderr)

    def update(self, done: int) -> None:
        """`done` of the total are finished: move the bar, or log a line when `interval`
        seconds have passed since the last one."""
        if self.bar is not None:
            with self._lock:
                self.bar.update(done - self.bar.n)
            return
        now = time.perf_counter()
        if not self.total or not self.interval or now - self._logged < self.interval:
            return
        self._logged = now
        rate = done / max(now - self.started, 1e-9)
        eta = round((self.total - done) / rate) if rate else 0
        self.message(
            f"{done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, "
            f"ETA {eta // 60}:{eta % 60:02d}"
        )

    def close(self) -> None:
        """Remove the progress bar (before a summary, or when the run ends early)."""
        if self.bar is not None:
            with self._lock:
                self.bar.close()
                self.bar = None
