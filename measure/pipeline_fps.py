"""Frames per second of the whole detection pipeline over a video: the runtime's own pipeline,
what `convdet detect VIDEO --save DIR` runs (reader thread, detector, annotation with the
default layers, writer thread encoding the saved video)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from convdet.runtime.detector import Detector
from convdet.runtime.options import OutputOptions, PipelineOptions
from convdet.runtime.outputs import Outputs
from convdet.runtime.pipeline import run_pipeline
from convdet.runtime.records import Outcome
from convdet.runtime.sources import VideoSource
from convdet.runtime.targets import plan_targets


class _Counted:
    """The pipeline's reporter for a measurement: counts frames, keeps the first failure."""

    def __init__(self) -> None:
        self.frames = 0
        self.failures: list[str] = []

    def message(self, text: str) -> None:
        """Nothing to show while timing."""

    def failure(self, what: str, why: str) -> None:
        self.failures.append(f"{what}: {why}")

    def recorded(self, outcome: Outcome) -> None:
        if outcome.error is not None:  # an empty or cut video
            self.failures.append(f"{outcome.frame.source}: {outcome.error}")

    def step(self) -> None:
        self.frames += 1


def pipeline_fps(detector: Detector, video: Path, workdir: Path) -> float:
    """Frames per second of `detector` over `video` through the pipeline, saving the annotated
    video in a folder of its own in `workdir` (as `--save`), removed after; OSError if a frame
    or the saved video failed."""
    reporter = _Counted()
    with tempfile.TemporaryDirectory(dir=workdir) as saved:
        options = PipelineOptions(outputs=OutputOptions(save=Path(saved)))
        start = time.perf_counter()
        with VideoSource(video) as source:
            targets = plan_targets(options.outputs, [str(video)], source)
            with Outputs(options, targets, source, detector.labels, reporter) as outputs:
                run_pipeline(source, detector, outputs, reporter, options)
        seconds = time.perf_counter() - start
    if reporter.failures or not reporter.frames:
        raise OSError(reporter.failures[0] if reporter.failures else f"{video}: no frames")
    return reporter.frames / seconds
