"""The Keras baseline, measured against the runtime: Keras `model.predict` on the
convolutionalized detector, colours mapped per grid cell through `np.vectorize`, and the
one-step-after-the-other video loop built of them.

Only `keras_predictor` imports TensorFlow, when called; the benchmark is handed it as a
`KerasFactory`, so importing or running the benchmark never imports TensorFlow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from convdet.measure.frames import VIDEO_FPS
from convdet.measure.latency import ModelRow, best_fps
from convdet.measure.timing import Timing, time_calls
from convdet.runtime.annotate import GridAnnotator, class_colors
from convdet.runtime.detector import Detector

if TYPE_CHECKING:
    from convdet.measure.benchmark import Settings

KerasPredict = Callable[[np.ndarray], np.ndarray]  # (1, H, W, 1) float32 -> (1, gh, gw, C)
KerasFactory = Callable[[str, str], KerasPredict]  # (arch, pooling) -> predict


def keras_predictor(arch: str, pooling: str) -> KerasPredict:
    """Keras `model.predict` on the convolutionalized detector built from its spec (untrained
    weights: only the time counts). Imports TensorFlow, so only called when it is installed."""
    from convdet.export.networks import build_detector
    from convdet.export.specs import get_spec

    model = build_detector(get_spec(arch), pooling)
    return lambda batch: model.predict(batch, verbose=0)


def baseline_colour_grid(cell_class: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """The baseline's colour mapping, kept only to be measured against: one Python call per
    grid cell and channel through `np.vectorize`. The runtime uses GridAnnotator instead."""
    channels = [np.vectorize(lambda c, k=k: colors[c][k])(cell_class) for k in range(3)]
    return np.dstack(channels).astype(np.uint8)


def baseline_overlay(
    frame: np.ndarray, cell_class: np.ndarray, stride: int, colors: np.ndarray
) -> np.ndarray:
    """The baseline's drawing: the vectorized colour grid scaled up by `stride` and blended
    half and half over the whole frame."""
    colours = baseline_colour_grid(cell_class, colors)
    rows, cols = cell_class.shape
    tiles = cv2.resize(colours, (cols * stride, rows * stride), interpolation=cv2.INTER_NEAREST)
    height, width = frame.shape[:2]
    return cv2.addWeighted(frame, 0.5, tiles[:height, :width], 0.5, 0.0)


def baseline_input(frame: np.ndarray) -> np.ndarray:
    """The baseline's preprocessing: gray / 255 as a (1, H, W, 1) batch."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    return gray[None, ..., None]


def run_baseline_pipeline(
    predict: KerasPredict, video: Path, out: Path, stride: int, colors: np.ndarray
) -> float:
    """Frames per second of the baseline's loop over `video`, one step after the other in one
    thread: decode, Keras predict, argmax, np.vectorize colours, blend, encode. Plain OpenCV
    capture and writer, not the runtime's threaded VideoSource and VideoSaver, which would
    overlap decoding and encoding with the baseline's work."""
    capture = cv2.VideoCapture(str(video))
    writer: cv2.VideoWriter | None = None
    frames = 0
    start = time.perf_counter()
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            cell_class = predict(baseline_input(frame))[0].argmax(axis=-1)
            image = baseline_overlay(frame, cell_class, stride, colors)
            if writer is None:
                size = (image.shape[1], image.shape[0])
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, size)
            writer.write(image)
            frames += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return frames / (time.perf_counter() - start)


@dataclass
class KerasBaselineRow:
    """The Keras baseline for one architecture at one size, with the runtime's figures beside
    it."""

    arch: str
    size: tuple[int, int]
    predict: Timing
    colour_ms: float  # np.vectorize colour grid + blend
    pipeline_fps: float
    runtime_model: str
    runtime_infer_ms: float
    runtime_grid_ms: float  # GridAnnotator
    runtime_pipeline_fps: float

    @property
    def speedup(self) -> float:
        """Full pipeline: the runtime's FPS over the baseline's."""
        return self.runtime_pipeline_fps / self.pipeline_fps


def measure_keras_baseline(
    predict: KerasPredict,
    detector: Detector,
    frames: list[np.ndarray],
    video: Path,
    runtime_row: ModelRow,
    settings: Settings,
) -> KerasBaselineRow:
    """Time the baseline's Keras predict, its colour mapping and its whole loop on the same
    frames as `runtime_row` (the runtime's default-precision model of the same architecture)."""
    batch = baseline_input(frames[0])
    predicted = predict(batch)
    cell_class = predicted[0].argmax(axis=-1)
    stride, colors = detector.info.stride, class_colors(len(detector.labels))
    timing = time_calls(lambda: predict(batch), settings.warmup, settings.repeat)
    colour_ms = time_calls(
        lambda: baseline_overlay(frames[0], cell_class, stride, colors), 1, settings.repeat
    ).median_ms
    result = detector(frames[0])
    grid = GridAnnotator()
    grid_ms = time_calls(
        lambda: grid.annotate(frames[0].copy(), result), 1, settings.repeat
    ).median_ms
    out = settings.workdir / f"keras_{runtime_row.arch}_{video.stem}.avi"
    fps = best_fps(lambda: run_baseline_pipeline(predict, video, out, stride, colors))
    out.unlink(missing_ok=True)
    return KerasBaselineRow(
        arch=runtime_row.arch,
        size=runtime_row.size,
        predict=timing,
        colour_ms=colour_ms,
        pipeline_fps=fps,
        runtime_model=runtime_row.model,
        runtime_infer_ms=runtime_row.infer.median_ms,
        runtime_grid_ms=grid_ms,
        runtime_pipeline_fps=runtime_row.pipeline_fps,
    )
