"""The fan-out of a detection run's outcomes: JSON records and COCO results (`write`), then
the annotated frame saved, the crops and label files, the window (`draw`)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from convdet.runtime.annotate import (
    BoxAnnotator,
    GridAnnotator,
    HeatmapAnnotator,
    LegendAnnotator,
    LinesAnnotator,
    StatsAnnotator,
    as_bgr,
)
from convdet.runtime.jsonl import JsonlSink
from convdet.runtime.label_formats import CocoResults, yolo_labels
from convdet.runtime.records import run_id, utc_time
from convdet.runtime.savers import AnnotatedImageSaver, VideoSaver
from convdet.runtime.targets import Targets, live_name
from convdet.runtime.window import Window

if TYPE_CHECKING:
    from convdet.data.coco import CocoImageIds
    from convdet.runtime.options import PipelineOptions
    from convdet.runtime.pipeline import Reporter
    from convdet.runtime.records import Outcome
    from convdet.runtime.sources import Frame, Source

LAYERS = {"cells": GridAnnotator, "heatmap": HeatmapAnnotator}  # --grid: its annotator


class Outputs:
    """The sinks of one run, opened on entry, closed on exit: `number` gives a frame its COCO
    image id, `write` an outcome's record, `draw` its annotated frame (in a window titled
    `title`). Failures of files written in the background reach `reporter.failure`."""

    def __init__(
        self,
        options: PipelineOptions,
        targets: Targets,
        source: Source,
        labels: Sequence[str],
        reporter: Reporter,
        coco_images: CocoImageIds | None = None,
        title: str = "convdet",
    ) -> None:
        self.options = options
        self.targets = targets
        self.source = source
        self.labels = labels
        self.reporter = reporter
        self.coco_images = coco_images
        self.title = title  # the --show window's
        self.run = run_id()
        self.live = source.kind != "images"  # videos, cameras, streams: records carry the time
        self.image_id = 0  # the position in the batch of the latest frame, from 1 (--coco)
        self.drawn = 0  # frames drawn so far (--save-interval counts them)
        self.started = time.strftime("%Y%m%d-%H%M%S")  # in frame names: unique across restarts
        draw = options.draw
        self.layers = [
            *([LAYERS[draw.grid]()] if draw.grid in LAYERS else []),
            BoxAnnotator(thickness=draw.line_width, show_score=draw.scores),
            LinesAnnotator(),
            *([LegendAnnotator()] if draw.legend else []),
        ]
        self.json: JsonlSink | None = None
        self.coco: CocoResults | None = None
        self.files: AnnotatedImageSaver | None = None
        self.images: AnnotatedImageSaver | None = None
        self.video: VideoSaver | None = None
        self.window: Window | None = None
        self.stats: StatsAnnotator | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Outputs:
        with contextlib.ExitStack() as stack:
            self._open(stack)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open(self, stack: contextlib.ExitStack) -> None:
        """Open the sinks the options and targets ask for, each entered on `stack`."""
        outputs, targets, source, reporter = (
            self.options.outputs,
            self.targets,
            self.source,
            self.reporter,
        )
        if targets.json is not None:
            self.json = stack.enter_context(JsonlSink(targets.json, append=outputs.append))
            if self.json.repaired:
                reporter.message(
                    f"{targets.json}: removed an incomplete last line ({self.json.repaired} "
                    "bytes, from a run that was killed or ran out of space) before appending"
                )
        if targets.coco is not None:
            self.coco = stack.enter_context(CocoResults(targets.coco, on_error=reporter.failure))
        if targets.folder is not None and targets.folder != outputs.save:
            moved = f" (--json {targets.json})" if targets.json != outputs.json else ""
            reporter.message(
                f"{outputs.save} already holds results; this run saves to {targets.folder}{moved}"
            )
        io_threads = self.options.io_threads
        if targets.video is not None:
            # A file's frames play at its rate over the stride; a live source's at the rate
            # they were processed (dropped frames left out), measured over the run.
            video_file = source.fps and source.kind == "video"
            fps = source.fps / self.options.vid_stride if video_file else None
            self.video = stack.enter_context(
                VideoSaver(
                    targets.video,
                    fps=fps or source.fps or 10.0,
                    on_error=reporter.failure,
                    protect=targets.protect,
                    measured=source.live,
                )
            )
        if targets.folder is not None and (
            targets.video is None or outputs.save_crop or outputs.save_txt
        ):
            # One saver for annotated images, crops and label files: no two share a name.
            self.files = stack.enter_context(
                AnnotatedImageSaver(
                    targets.folder,
                    on_error=reporter.failure,
                    protect=targets.protect,
                    workers=2 if io_threads is None else min(io_threads, 2),
                )
            )
            self.images = self.files if targets.video is None else None
        if outputs.show:
            try:
                self.window = stack.enter_context(Window(self.title))
            except OSError as error:
                reporter.message(f"--show: {error}; continuing without a window")
        # FPS, latency and dropped frames: on a bar below the frame (covering nothing), shown
        # in the window unless --no-stats, burned into saved frames only with --stats.
        draw = self.options.draw
        in_window = self.window is not None and draw.window_stats
        if self.live and (in_window or draw.saved_stats):
            self.stats = StatsAnnotator(bar=True)

    @property
    def annotating(self) -> bool:
        """Whether any output shows or saves annotated frames."""
        return bool(self.images or self.video or self.window)

    def number(self, frame: Frame) -> tuple[int, str | None]:
        """`frame`'s --coco image id: its position in the batch, or with --coco-images its
        ground-truth image's id; and why it has none (no ground-truth image is that input),
        which is the input's error."""
        self.image_id += 1
        if self.coco_images is None:
            return self.image_id, None
        try:
            self.image_id = self.coco_images.take(frame.relpath, frame.source)
        except ValueError as error:
            return self.image_id, str(error)
        return self.image_id, None

    def write(self, outcome: Outcome) -> None:
        """Write one outcome's record (schema: `convdet.runtime.records`) to --json, stamped
        with the run id (and for videos, cameras and streams the wall-clock time), and its
        detections to --coco."""
        if self.coco is not None and outcome.result is not None:
            self.coco.add(outcome.image_id, outcome.result.detections)
        if self.json is not None:
            stamp = {"time": utc_time()} if self.live else {}
            self.json.write({**outcome.record, **stamp, "run": self.run})

    def draw(self, outcome: Outcome) -> bool:
        """Save the crops and label file of a processed outcome, then save and show its
        annotated frame (drawn in place, so after the crops are cut); False when the user
        closed the window."""
        frame, result = outcome.frame, outcome.result
        assert result is not None and frame.image is not None
        drawn, self.drawn = self.drawn, self.drawn + 1
        outputs = self.options.outputs
        if outputs.save_crop:
            self._save_crops(frame, result)
        if outputs.save_txt and self.files is not None:
            name = frame.relpath if frame.index is None else self._frame_stem(frame)
            text = yolo_labels(result.detections, frame.image.shape, outputs.save_conf)
            self.files.save_text(PurePath("labels", name).with_suffix(".txt"), text)
        if not self.annotating:
            return True
        image = frame.image
        for layer in self.layers:
            image = layer.annotate(image, result)
        shown = image
        if self.stats is not None:
            self.stats.dropped = self.source.dropped
            shown = self.stats.annotate(image, result)  # a new, taller array: image unchanged
            image = shown if self.options.draw.saved_stats else image
        interval = outputs.save_interval
        if self.images is not None and (interval is None or drawn % interval == 0):
            self.images.save(self._relpath(frame), image)
        if self.video is not None:
            self.video.write(image)
        # Images stay in the window until a key (or --wait); video and camera frames flow on.
        hold = 0.0 if self.live else (outputs.wait or math.inf)
        return self.window is None or self.window.show(shown, hold)

    def _save_crops(self, frame: Frame, result: Any) -> None:
        """Each detection's box, as drawn, cut from the input frame (as BGR uint8) and saved
        as crops/LABEL/STEM_I.jpg, with the frame index for video and camera frames."""
        if not len(result.detections) or self.files is None or frame.image is None:
            return
        image = as_bgr(frame.image)
        stem = self._stem(frame) if frame.index is None else self._frame_stem(frame)
        boxes = result.detections.pixel_boxes(*image.shape[:2])
        for index, ((x1, y1, x2, y2), class_id) in enumerate(
            zip(boxes, result.detections.class_id, strict=True)
        ):
            crop = image[y1 : y2 + 1, x1 : x2 + 1].copy()  # the frame is drawn on next
            self.files.save(PurePath("crops", self.labels[class_id], f"{stem}_{index}.jpg"), crop)

    @staticmethod
    def _stem(frame: Frame) -> str:
        """The input's name without its extension; camera0, video0 or stream for live sources."""
        return frame.relpath.stem if frame.relpath else live_name(frame.source)

    @classmethod
    def _frame_stem(cls, frame: Frame) -> str:
        """The stem of a video or camera frame's crops and label file: STEM_FRAME."""
        return f"{cls._stem(frame)}_{frame.index:08d}"

    def _relpath(self, frame: Frame) -> PurePath:
        """Where an annotated frame is saved: an image's own relative path, a video or camera
        frame's STEM/START-FRAME.jpg."""
        if frame.index is None:
            assert frame.relpath is not None
            return frame.relpath
        return PurePath(self._stem(frame), f"{self.started}-{frame.index:08d}.jpg")
