"""Soak test: resident memory of a long `convdet detect` run, watched from outside the process.

Runs `convdet detect VIDEO --loop N --json -` (what a headless service does: a video looped
stands in for hours of camera frames), reads the JSON Lines as they arrive, refusing any stdout
line that is not a record, and samples the child's resident memory (VmRSS and its peak VmHWM
from Linux /proc) every `every` records. Options after `--` go to `convdet detect`:

    python -m convdet.measure.soak clip.mp4 --loop 2000 --every 500 -- \
        --model models/deep_int8.tflite
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


@dataclass(frozen=True)
class Sample:
    """The child's resident memory after `records` records, `seconds` into the run."""

    seconds: float
    records: int
    rss_mib: float


@dataclass(frozen=True)
class SoakReport:
    """Memory samples of one run, its peak resident memory and its exit status."""

    samples: list[Sample]
    peak_mib: float
    records: int
    exit_status: int

    def growth_mib(self, warmup: float = 0.25) -> float:
        """RSS growth after warm-up: median of the last quarter of the samples taken after the
        first `warmup` fraction, minus the median of their first quarter (robust to noise)."""
        settled = self.samples[int(len(self.samples) * warmup) :]
        if len(settled) < 2:
            raise ValueError(f"growth needs at least 2 samples after warm-up, got {len(settled)}")
        quarter = max(1, len(settled) // 4)
        first = statistics.median(sample.rss_mib for sample in settled[:quarter])
        last = statistics.median(sample.rss_mib for sample in settled[-quarter:])
        return last - first


def process_memory(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a running process in MiB, or None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if "VmRSS" not in fields:  # a zombie: exited, not yet reaped
        return None
    rss, peak = (int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
    return rss, peak


def soak(
    video: str | Path,
    loops: int,
    every: int,
    detect_options: Sequence[str] = (),
    stderr: TextIO | None = None,
    on_sample: Callable[[Sample], None] | None = None,
) -> SoakReport:
    """Run detection over `video` played `loops` times; sample memory every `every` records,
    passing each sample to `on_sample` as it is taken (a run may last hours). Raises ValueError
    when a stdout line is not a JSON record (stdout must carry only records)."""
    command = [sys.executable, "-m", "convdet", "detect", str(video), "--loop", str(loops)]
    command += ["--json", "-", *detect_options]
    start = time.perf_counter()
    samples: list[Sample] = []
    peak = 0.0
    records = 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True) as child:
        assert child.stdout is not None
        for line in child.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                child.kill()
                raise ValueError(f"stdout line {records + 1} is not JSON: {line!r}") from None
            # A frame that failed is a record too: it carries "error" instead of detections.
            if not isinstance(record, dict) or not {"detections", "error"} & record.keys():
                child.kill()
                raise ValueError(f"stdout line {records + 1} is not a detection record: {line!r}")
            records += 1
            memory = process_memory(child.pid) if records % every == 0 else None
            if memory is not None:
                samples.append(Sample(time.perf_counter() - start, records, memory[0]))
                peak = max(peak, memory[1])
                if on_sample is not None:
                    on_sample(samples[-1])
    return SoakReport(samples, peak, records, child.returncode)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a soak from the command line, print the samples and a summary; the detect status."""
    parser = argparse.ArgumentParser(
        prog="python -m convdet.measure.soak",
        usage="%(prog)s VIDEO [--loop N] [--every K] [-- DETECT OPTIONS]",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("video", help="a video file, looped")
    parser.add_argument("--loop", type=int, default=100, help="passes over the video (100)")
    parser.add_argument("--every", type=int, default=100, help="records between samples (100)")
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    print(f"{'seconds':>9} {'frames':>9} {'RSS MiB':>9}", flush=True)

    def show(sample: Sample) -> None:
        print(f"{sample.seconds:9.1f} {sample.records:9d} {sample.rss_mib:9.1f}", flush=True)

    report = soak(args.video, args.loop, args.every, argv[split + 1 :], on_sample=show)
    try:
        growth = f"{report.growth_mib():+.2f} MiB"
    except ValueError:  # too few samples
        growth = "n/a"
    print(
        f"{report.records} frames; peak RSS {report.peak_mib:.1f} MiB; "
        f"RSS growth after warm-up {growth}; detect exit status {report.exit_status}"
    )
    return report.exit_status


if __name__ == "__main__":
    sys.exit(main())
