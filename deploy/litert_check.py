"""Check a LiteRT-only install (numpy, opencv-python-headless, ai-edge-litert, tqdm, imagesize,
convdet --no-deps).

Run it with that environment's Python from the repository root (`make litert-check` does). It
checks that onnxruntime, GUI OpenCV and TensorFlow are absent and that convdet is the installed
copy, then runs `convdet --help`, `convdet info` and `convdet detect --json -` on the shipped
sample (int8 model, then the default model, which must resolve to the same file) and on a
looped video, requiring stdout to carry only JSON Lines records. Exit status 0, else 1.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from convdet.runtime.shipped import DEFAULT_ARCH

# Distributions a board must not need; any of them installed means the check proves nothing.
ABSENT = ("onnxruntime", "opencv-python", "tensorflow", "tensorflow-cpu", "tflite-runtime")
RECORD_KEYS = {"source", "frame", "width", "height", "detections", "lines"}
STAMP_KEYS = {"run", "time"}  # the run id on every record, the time on videos' and cameras'
DETECTION_KEYS = {"class_id", "label", "score", "box"}
LINE_KEYS = {"text", "box", "detections", "score"}
SAMPLE = Path("samples/digits.png")
MODEL = Path(f"models/{DEFAULT_ARCH}_int8.tflite")  # the default model of a LiteRT-only install


class CheckFailed(Exception):
    """One check that does not hold; the message says which and what was seen."""


def convdet(*args: str) -> str:
    """Run this environment's `convdet` console script; its stdout, or CheckFailed."""
    command = [str(Path(sys.executable).parent / "convdet"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise CheckFailed(f"`convdet {' '.join(args)}` exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def json_records(stdout: str) -> list[dict]:
    """Every stdout line as a detection record (README's JSON Lines schema), or CheckFailed
    naming the line."""
    rows = []
    for number, line in enumerate(stdout.splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError:
            raise CheckFailed(f"stdout line {number} is not JSON: {line!r}") from None
        if not isinstance(row, dict) or "run" not in row or set(row) - STAMP_KEYS != RECORD_KEYS:
            raise CheckFailed(f"stdout line {number} is not a detection record: {line!r}")
        for detection in row["detections"]:
            if set(detection) != DETECTION_KEYS or len(detection["box"]) != 4:
                raise CheckFailed(f"stdout line {number}: bad detection {detection!r}")
        read = sorted(i for line in row["lines"] for i in line.get("detections", []))
        if any(set(line) != LINE_KEYS for line in row["lines"]) or read != list(
            range(len(row["detections"]))
        ):
            raise CheckFailed(f"stdout line {number}: bad lines {row['lines']!r}")
        rows.append(row)
    return rows


def unstamped(rows: list[dict]) -> list[dict]:
    """The records without their run id and time, which differ from run to run."""
    return [{key: value for key, value in row.items() if key not in STAMP_KEYS} for row in rows]


def check_environment() -> str:
    """The heavy distributions are absent and `convdet` is imported from this environment."""
    present = []
    for name in ABSENT:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            present.append(f"{name} {importlib.metadata.version(name)}")
    if present or importlib.util.find_spec("onnxruntime") is not None:
        raise CheckFailed(f"not a LiteRT-only environment: {', '.join(present) or 'onnxruntime'}")
    spec = importlib.util.find_spec("convdet")
    where = Path(spec.origin if spec and spec.origin else "?").resolve()
    if not where.is_relative_to(Path(sys.prefix).resolve()):
        raise CheckFailed(f"convdet is imported from {where}, not from {sys.prefix}")
    litert = importlib.metadata.version("ai-edge-litert")
    return f"none of {', '.join(ABSENT)}; ai-edge-litert {litert}, OpenCV {cv2.__version__}"


def check_image() -> str:
    """One record for the sample with the int8 model, and the same with the default model."""
    explicit = json_records(convdet("detect", str(SAMPLE), "--model", str(MODEL), "--json", "-"))
    if len(explicit) != 1 or (explicit[0]["width"], explicit[0]["height"]) != (640, 480):
        raise CheckFailed(f"expected one 640x480 record, got {explicit!r}")
    default = json_records(convdet("detect", str(SAMPLE), "--json", "-"))
    if unstamped(default) != unstamped(explicit):  # each run has its own run id
        raise CheckFailed(f"the default model is not {MODEL.name}: {default!r} != {explicit!r}")
    return f"{len(explicit[0]['detections'])} detections in {SAMPLE}, same with the default model"


def check_video(folder: Path) -> str:
    """A 10-frame video played 3 times gives records for frames 0..29, in order."""
    video = folder / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    page = cv2.resize(cv2.imread(str(SAMPLE)), (320, 240))
    for shift in range(10):
        writer.write(np.roll(page, 8 * shift, axis=1))
    writer.release()
    rows = json_records(convdet("detect", str(video), "--loop", "3", "--json", "-"))
    frames = [row["frame"] for row in rows]
    if frames != list(range(30)):
        raise CheckFailed(f"expected frames 0..29 of the looped video, got {frames}")
    return f"{len(rows)} records from a video looped 3 times"


def main() -> int:
    """Run every check in order; print one line each, stop at the first failure."""
    with tempfile.TemporaryDirectory() as folder:
        checks = [
            ("environment", check_environment),
            ("help", lambda: f"{len(convdet('--help').splitlines())} lines"),
            ("info", lambda: convdet("info", str(MODEL)).splitlines()[0]),
            ("image", check_image),
            ("video", lambda: check_video(Path(folder))),
        ]
        for name, check in checks:
            try:
                print(f"litert-check: {name}: {check()}", flush=True)
            except CheckFailed as failure:
                print(f"litert-check: {name}: FAILED: {failure}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
