"""Sliding windows against the detector: the 28x28 classifier ONNX run on every cell's window of
a frame, its time and labels next to one detector inference on the same input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from convdet.measure.latency import prepared_input
from convdet.measure.timing import Timing, model_flops, time_calls
from convdet.runtime.backends import session_options
from convdet.runtime.detector import Detector
from convdet.runtime.grid import windows_for_cells

if TYPE_CHECKING:
    from convdet.measure.benchmark import Settings

WINDOW_BATCH = 512  # sliding windows per classifier call


@dataclass
class WindowsRow:
    """The 28x28 classifier on every cell's window vs the detector on the whole frame."""

    arch: str
    size: tuple[int, int]
    windows: int
    windows_timing: Timing  # cutting the windows + classifier batches
    detector_timing: Timing  # detector inference, same engine and threads
    windows_gflops: float | None
    detector_gflops: float | None
    agreement: float  # all cells: classifier argmax == detector argmax
    digit_agreement: float | None  # cells where either says a digit

    @property
    def speedup(self) -> float:
        """Sliding windows' time over the detector's."""
        return self.windows_timing.median_ms / self.detector_timing.median_ms


def measure_windows(
    classifier: Path,
    detector: Detector,
    frame: np.ndarray,
    settings: Settings,
    detector_flops: float | None,
) -> WindowsRow:
    """Run the classifier ONNX on every stride-spaced window of one prepared frame in batches
    of WINDOW_BATCH and compare labels and time with the detector on the same input."""
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(classifier), session_options(settings.threads), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    batch = prepared_input(detector, frame)
    scores = detector.backend.run(batch)[0]
    rows, cols = scores.shape[:2]

    def classify() -> np.ndarray:
        image, fill = batch[0, :, :, 0], float(detector.preprocessor.background)
        windows = windows_for_cells(image, detector.info, rows, cols, fill)
        chunks = range(0, len(windows), WINDOW_BATCH)
        return np.concatenate(
            [session.run(None, {name: windows[k : k + WINDOW_BATCH]})[0] for k in chunks]
        )

    labels = classify().argmax(axis=-1).reshape(rows, cols)
    grid = scores.argmax(axis=-1)
    warmup, repeat = min(settings.warmup, 1), max(settings.repeat // 10, 1)
    windows_timing = time_calls(classify, warmup, repeat)
    detector_timing = time_calls(lambda: detector.backend.run(batch), warmup, settings.repeat)
    background = detector.info.background
    digit = (labels != background) | (grid != background)
    window_flops = model_flops(classifier, detector.info.window, detector.info.window)
    height, width = frame.shape[:2]
    return WindowsRow(
        arch=detector.info.arch,
        size=(width, height),
        windows=rows * cols,
        windows_timing=windows_timing,
        detector_timing=detector_timing,
        windows_gflops=None if window_flops is None else window_flops * rows * cols / 1e9,
        detector_gflops=None if detector_flops is None else detector_flops / 1e9,
        agreement=float(np.mean(labels == grid)),
        digit_agreement=float(np.mean(labels[digit] == grid[digit])) if digit.any() else None,
    )
