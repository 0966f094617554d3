"""Frames per second of the whole detection pipeline over a video, as `convdet detect` runs it."""

# To be replaced by the runtime's pipeline, convdet.runtime.pipeline.

from __future__ import annotations

import time
from pathlib import Path

from convdet.measure.frames import VIDEO_FPS
from convdet.runtime.annotate import BoxAnnotator, GridAnnotator
from convdet.runtime.detector import Detector
from convdet.runtime.sinks import VideoSaver
from convdet.runtime.sources import VideoSource


def run_pipeline(detector: Detector, video: Path, out: Path) -> float:
    """Frames per second of decode -> preprocess -> infer -> decode grid -> draw grid and boxes
    -> encode over `video`, decoding and encoding in their own threads (as `convdet detect`
    does); writes `out` (.avi)."""
    errors: list[str] = []
    annotators = (GridAnnotator(), BoxAnnotator())
    frames = 0
    start = time.perf_counter()
    with (
        VideoSource(video) as source,
        VideoSaver(out, fps=VIDEO_FPS, on_error=lambda what, why: errors.append(why)) as saver,
    ):
        for frame in source:
            if frame.error is not None:  # an empty or cut video
                raise OSError(f"{video}: {frame.error}")
            image = frame.image
            result = detector(image)
            for annotator in annotators:
                image = annotator.annotate(image, result)
            saver.write(image)
            frames += 1
    seconds = time.perf_counter() - start
    if errors:
        raise OSError(f"{out}: {errors[0]}")
    return frames / seconds
