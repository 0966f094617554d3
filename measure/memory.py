"""Peak resident memory of `convdet detect` on a video, run in a child process so that the
benchmark's own memory does not count."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from convdet.runtime.sources import VideoSource


@dataclass
class DetectRun:
    """`convdet detect VIDEO --save DIR` in a child process: its peak resident memory."""

    command: list[str]
    model: str
    frames: int
    seconds: float
    peak_rss_mb: float


# Runs `convdet detect` with the given arguments, then reports the process's peak RSS (VmHWM
# belongs to this process image; ru_maxrss would include the parent's memory at fork).
PEAK_RSS_SCRIPT = """
import resource, sys
from convdet.cli import main
status = main(sys.argv[1:])
try:
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"peak_rss_kb {peak}", file=sys.stderr)
sys.exit(status)
"""


def detect_run(video: Path, model: Path, workdir: Path, threads: int | None) -> DetectRun:
    """Run `convdet detect` on `video` with an annotated video output, in a child process, and
    take its peak resident memory."""
    arguments = ["detect", str(video), "--model", str(model), "--save", str(workdir / "detect")]
    arguments += ["--threads", str(threads)] if threads else []
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_SCRIPT, *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    lines = done.stderr.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("peak_rss_kb "):
        raise OSError(f"convdet detect failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    with VideoSource(video) as source:
        frames = source.frame_count
    peak_mb = int(lines[-1].split()[1]) / 1024
    shown = ["convdet", "detect", video.name, "--model", model.name, "--save", "DIR"]
    return DetectRun([*shown, *arguments[6:]], model.name, frames, seconds, peak_mb)
