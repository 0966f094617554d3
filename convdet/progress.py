"""Progress of a long command on stderr, shared by `detect` and `evaluate`: a tqdm bar when
stderr is a terminal, otherwise (a log, a service, CI) a line every few seconds with
done/total, rate and ETA, so a run is never silent for minutes; and what `detect` prints of
its run (`DetectReporter`)."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

from convdet.cli import printable

if TYPE_CHECKING:
    from convdet.runtime.records import Outcome


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
        """One line on `file`, with the progress bar moved out of its way. The line and its
        newline go out in one write: `print` writes them apart, and a native library's block
        (see `native_stderr`) taking descriptor 2 between the two glues the next line on."""
        with self._lock:
            if self.bar is None:
                file.write(text + "\n")
                file.flush()
            else:
                self.bar.write(text + "\n", file=file, end="")

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


class DetectReporter(Progress):
    """What `convdet detect` prints of a run (the pipeline's Reporter): per-file failures (once
    each, from any thread), with `lines` a line per image or frame, the final summary, and
    progress when the total is known (see `Progress`)."""

    def __init__(
        self, total: int | None, out: TextIO, unit: str, interval: float, lines: bool
    ) -> None:
        super().__init__("detect", total, unit, interval)
        self.out = out
        self.lines = lines
        self.processed = 0
        self.failed = 0
        self.counts: Counter[str] = Counter()
        self.retrying: set[str] | None = None  # --retry-failed: earlier failures run again
        self.retried = 0

    def failure(self, what: str, why: str) -> None:
        """A file (input or output) that failed; counted for the exit status."""
        self.message(f"{what}: {why}")
        with self._lock:
            self.failed += 1

    def recorded(self, outcome: Outcome) -> None:
        """Count an input or frame whose record was just written: a failure, or a processed
        one with its digits (and with `lines` its line: digits per class and the strings read,
        in reading order); an earlier failure run again counts as retried."""
        frame, result = outcome.frame, outcome.result
        if result is None or frame.image is None:
            self.failure(frame.source, outcome.error or "")
        else:
            self.processed += 1
            labels = [result.labels[class_id] for class_id in result.detections.class_id]
            self.counts.update(labels)
            if self.lines:
                name = frame.source if frame.index is None else f"{frame.source}#{frame.index}"
                height, width = frame.image.shape[:2]
                read = "".join(f' "{line.text}"' for line in result.lines)
                self.print(
                    f"{printable(name)}: {width}x{height}, {describe(Counter(labels))}"
                    + (f", read{read}" if read else ""),
                    self.out,
                )
        if self.retrying is not None and frame.source in self.retrying:
            self.retried += 1

    def step(self) -> None:
        """Show progress after each image or frame, processed or failed."""
        self.update(self.processed + self.failed)

    def summary(self, dropped: int | None) -> None:
        """The final line: processed, failed, digits per class, rate (and dropped frames)."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        noun = self.unit if self.processed != 1 else self.unit.removesuffix("s")
        parts = [f"{self.processed} {noun} processed"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if dropped is not None:
            parts.append(f"{dropped} dropped")
        if self.retrying is not None:
            parts.append(
                f"{self.retried} earlier failure{'s' if self.retried != 1 else ''} retried"
            )
        parts.append(describe(self.counts))
        parts.append(f"{self.processed / elapsed:.1f} {self.unit}/s")
        self.print("; ".join(parts), self.out)


def describe(counts: Counter[str]) -> str:
    """'3 digits (7 x2, 1 x1)' or 'no digits'."""
    total = sum(counts.values())
    if not total:
        return "no digits"
    per_class = ", ".join(f"{label} x{count}" for label, count in sorted(counts.items()))
    return f"{total} digit{'s' if total > 1 else ''} ({per_class})"
