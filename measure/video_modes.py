"""End to end on a video of a still page: the runtime's whole pipeline (what `convdet detect
VIDEO --save DIR` runs) with dense, sparse and temporal inference, and the Keras baseline's loop,
over the same video of a digit moving on one page, with camera noise, as a camera filming a
desk sees it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from convdet.data.motion import moving_digit_video
from convdet.measure.frames import write_video
from convdet.measure.keras_baseline import KerasPredict, run_baseline_pipeline
from convdet.measure.latency import CAMERA_NOISE, PIPELINE_RUNS
from convdet.measure.pipeline_fps import pipeline_fps
from convdet.runtime.annotate import class_colors
from convdet.runtime.detector import Detector

if TYPE_CHECKING:
    from convdet.measure.benchmark import Settings

PAGE_STYLE = "notebook"  # the scene style of the page in the video
# Detector options of each mode, in the table's order.
VIDEO_MODES: dict[str, dict[str, object]] = {
    "dense": {"sparse": "off"},
    "sparse": {},
    "temporal": {"temporal": True},
}


@dataclass
class VideoModesRow:
    """Pipeline frames per second of one model over the still-page video, per mode of
    VIDEO_MODES, and of the Keras baseline's loop (None when it was not measured)."""

    style: str
    model: str
    size: tuple[int, int]
    frames: int
    noise: float  # camera noise, sigma in grey codes
    fps: dict[str, float]
    keras_fps: float | None

    @property
    def speedup(self) -> dict[str, float]:
        """Each mode's frame rate over the Keras baseline's (empty without it)."""
        if not self.keras_fps:
            return {}
        return {mode: fps / self.keras_fps for mode, fps in self.fps.items()}


def measure_video_modes(
    model: Path,
    page: np.ndarray,
    digit: np.ndarray,
    settings: Settings,
    predict: KerasPredict | None,
) -> VideoModesRow:
    """Write the still-page video (`settings.frames` frames of `digit` moving on `page`) and
    time the pipeline in each mode and the baseline's loop on it, in turns, the best of
    PIPELINE_RUNS passes each (a burst of other load hits one pass, not every mode's best)."""
    height, width = page.shape[:2]
    frames = moving_digit_video(page, digit, settings.frames, noise=CAMERA_NOISE)
    video = write_video(frames, settings.workdir / f"still_page_{width}x{height}.avi")
    detectors = {
        mode: Detector(model, threads=settings.threads, **options)
        for mode, options in VIDEO_MODES.items()
    }
    baseline = settings.workdir / f"keras_{video.stem}.avi"
    stride = detectors["dense"].info.stride
    colors = class_colors(len(detectors["dense"].labels))
    passes: dict[str, list[float]] = {mode: [] for mode in [*VIDEO_MODES, "keras"]}
    try:
        for _ in range(PIPELINE_RUNS):
            for mode, detector in detectors.items():
                passes[mode].append(pipeline_fps(detector, video, settings.workdir))
            if predict is not None:
                passes["keras"].append(
                    run_baseline_pipeline(predict, video, baseline, stride, colors)
                )
    finally:
        video.unlink(missing_ok=True)
        baseline.unlink(missing_ok=True)
    return VideoModesRow(
        style=PAGE_STYLE,
        model=model.name,
        size=(width, height),
        frames=len(frames),
        noise=CAMERA_NOISE,
        fps={mode: max(passes[mode]) for mode in VIDEO_MODES},
        keras_fps=max(passes["keras"]) if passes["keras"] else None,
    )
