"""One input through the detector: its `Outcome` and the JSON record `convdet detect --json`
writes for it, the same from the pipeline, a script or a distributed batch's worker.

The record of an input the detector ran on (all fields always present):

- `source` (str): the input as its SOURCE named it (a file's path, a video's path, a camera's
  index or device, a stream's URL);
- `frame` (int or null): the frame's index in a video or camera (counting every frame, strided
  or not), null for an image;
- `width`, `height` (int): the frame's size in pixels;
- `detections` (list): one {`class_id` (int), `label` (str), `score` (float, 4 decimals),
  `box` ([x1, y1, x2, y2] in input pixels, 1 decimal)} per digit, as `Detections.to_records`;
- `lines` (list): the digits read as written strings, in reading order: {`text` (str), `box`
  ([x1, y1, x2, y2]), `detections` (indices into `detections`), `score` (float)}.

The record of an input that failed has `source`, `frame` and `error` (str, one line: why)
instead of the size, detections and lines. The writer (`convdet.runtime.outputs`) then adds
`time` (videos, cameras and streams: the UTC time of the write, ISO 8601 with ms: `utc_time`)
and `run` (the run's id: `run_id`), which describe the run, not the input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from convdet.runtime.errors import ConvdetError
from convdet.runtime.sources import DEFAULT_MAX_PIXELS, Frame, ImageBatch

if TYPE_CHECKING:
    from convdet.runtime.detections import Detections
    from convdet.runtime.detector import Detector, Result
    from convdet.runtime.options import PipelineOptions
    from convdet.runtime.reading import Line

# What makes one frame's failure, not the run's: the runtime's typed refusals, a frame too
# large for the memory left, and the RuntimeError ONNX Runtime and LiteRT raise when inference
# itself fails (a buffer they cannot allocate). Anything else is a bug and propagates.
FRAME_FAILURES = (ConvdetError, MemoryError, RuntimeError)


def detection_record(
    source: str,
    frame: int | None,
    shape: Sequence[int],
    detections: Detections,
    labels: Sequence[str],
    lines: Sequence[Line],
) -> dict[str, Any]:
    """The JSON Lines record of one image or frame (schema: the module docstring), with the
    written `lines` read from its detections (text, box, detection indices, score)."""
    return {
        "source": source,
        "frame": frame,
        "width": int(shape[1]),
        "height": int(shape[0]),
        "detections": detections.to_records(labels),
        "lines": [line.to_record() for line in lines],
    }


def failure_record(source: str, frame: int | None, error: str) -> dict[str, Any]:
    """The JSON Lines record of a file or frame that could not be processed, saying why, so a
    reader of the records alone sees every input (schema: the module docstring)."""
    return {"source": source, "frame": frame, "error": error}


def utc_time(compact: bool = False) -> str:
    """The wall-clock time now in ISO 8601 UTC with milliseconds, '2026-12-01T16:40:00.123Z'
    (compact: '20261201T164000.123Z'), which places live records in time."""
    now = datetime.now(timezone.utc)
    stamp = "%Y%m%dT%H%M%S." if compact else "%Y-%m-%dT%H:%M:%S."
    return now.strftime(stamp) + f"{now.microsecond // 1000:03d}Z"


def run_id() -> str:
    """An id of this run, its start and the process id ('20261201T164000.123Z-4242'), so the
    records of one run, and a restart between two, show in an appended file."""
    return f"{utc_time(compact=True)}-{os.getpid()}"


@dataclass(frozen=True)
class Outcome:
    """What became of one input: its `frame`, the detector's `result` (None when it failed),
    `error` (why it failed, else None), its JSON `record` and its COCO `image_id` (0: none)."""

    frame: Frame
    result: Result | None
    error: str | None
    record: dict[str, Any]
    image_id: int = 0


def analyse(
    detector: Detector,
    frame: Frame,
    classes: tuple[int, ...] | None = None,
    refused: str | None = None,
    image_id: int = 0,
) -> Outcome:
    """Run `detector` on `frame` (its result kept to `classes`, if given) unless the frame, or
    the caller (`refused`: why this input has no result), already says why it failed."""
    error = frame.error or refused
    result = None
    if error is None:
        try:
            result = detector(frame.image)
            if classes is not None:
                result = result.only(classes)
        except FRAME_FAILURES as failure:
            error = str(failure).strip() or type(failure).__name__
    if result is None:
        assert error is not None
        return Outcome(
            frame, None, error, failure_record(frame.source, frame.index, error), image_id
        )
    assert frame.image is not None
    record = detection_record(
        frame.source,
        frame.index,
        frame.image.shape,
        result.detections,
        detector.labels,
        result.lines,
    )
    return Outcome(frame, result, None, record, image_id)


def read_frame(path: str | Path, max_pixels: int | None = None) -> Frame:
    """The image file at `path` as a batch reads it: its frame, or its failure as the frame's
    error (`max_pixels` None: the sources' default)."""
    path = Path(path)
    batch = ImageBatch(
        [(path, PurePath(path.name))], max_pixels=max_pixels or DEFAULT_MAX_PIXELS, workers=0
    )
    return next(iter(batch))


def record_for(detector: Detector, item: Frame | str | Path, options: PipelineOptions) -> dict:
    """The JSON record (module docstring) that `convdet detect --json` writes for `item`, a
    frame or an image file's path, with `options`' classes and max pixels; without `run` and
    `time`, which the run's writer adds. What a distributed batch's worker calls per input."""
    frame = item if isinstance(item, Frame) else read_frame(item, options.max_pixels)
    return analyse(detector, frame, options.model.classes).record
