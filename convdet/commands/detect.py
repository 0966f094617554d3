"""`convdet detect SOURCE...`: run the detector on images, folders, videos, webcams and streams.

Outputs: `--json` JSON Lines (or `-` for stdout), `--save DIR` annotated images or video
(in a fresh DIR-2, DIR-3, ... when DIR holds results, so nothing is overwritten),
`--show` a window; with none of them, one line per image and a summary. Exit status: 0 ok,
1 if any file failed, a live source stopped or a JSON record could not be written (the run
stops there), 2 for command errors, 130 on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, TextIO

from convdet.cli import MAX_THREADS, CommandError, Interrupts, printable
from convdet.progress import Progress
from convdet.runtime.defaults import DEFAULT_CONF, MAX_SCALE, MIN_SCALE

HELP = "detect digits in images, folders, globs, videos, webcams and streams"

BACKEND_SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}
INVERT_MODES = ("auto", "on", "off")
SPARSE_MODES = (
    "auto",
    "on",
    "off",
)  # convdet.runtime.sparse's, named here so --help imports nothing
GRID_MODES = ("cells", "heatmap", "off")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet detect`; values are checked in `run` so errors stay one line."""
    parser.add_argument(
        "source",
        nargs="+",
        metavar="SOURCE",
        help="image, folder, glob, text file listing images, video file, webcam index "
        "(0, 1, ...) or device (/dev/video0), or stream URL (rtsp://, http://, ...); several "
        "images, folders, globs and lists run as one batch, a video, camera or stream alone",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        metavar="PATH",
        help="a .onnx or .tflite detector, or a shipped one's name with or without its "
        "extension, e.g. deep, deep_int8 or separable.onnx, as `convdet info` lists them "
        "(default: the shipped default model)",
    )
    model.add_argument(
        "--backend",
        default="auto",
        metavar="auto|onnx|tflite",
        help="which runtime to use; without --model picks the shipped model "
        "for it (default: auto, from the model's extension)",
    )
    model.add_argument(
        "--conf",
        default=str(DEFAULT_CONF),
        metavar="X",
        help="minimum detection score (digit probability times class share), also the "
        f"grid's cell threshold (default: {DEFAULT_CONF})",
    )
    model.add_argument(
        "--classes",
        metavar="LIST",
        help="comma-separated labels or class ids of the model's digit classes, e.g. 3,7: "
        "only their detections go to every output (records, drawing, the files --save "
        "writes, the summary); `lines` are read after this filter, from the kept digits "
        "alone, so each line's detection indices point into the record's detections and its "
        "text holds only these classes (a string broken by a left-out digit may read as two lines; "
        "run without --classes to read whole strings) (default: all classes)",
    )
    model.add_argument(
        "--scales",
        default="auto",
        metavar="LIST|auto",
        help=f"comma-separated resize factors of {MIN_SCALE:g} to {MAX_SCALE:g}, run as given "
        "(less those at which a frame is smaller than one grid cell); 2,1,0.5,0.25 adds "
        "digits of about 8-16 px (default: auto, the scales 1, 0.5, 0.25, ... halving while the "
        "frame's shorter side keeps 64 px, for digits of about 16 px up to a third of that "
        "side)",
    )
    model.add_argument(
        "--invert",
        default="auto",
        metavar="auto|on|off",
        help="invert frames to light-on-dark: auto detects dark ink on paper (default: auto)",
    )
    model.add_argument(
        "--threads",
        metavar="N",
        help=f"inference threads, 1 to {MAX_THREADS} (default: the runtime's)",
    )
    model.add_argument(
        "--sparse",
        default="auto",
        metavar="auto|on|off",
        help="run the model only where cells see ink, with the same results: auto where it "
        "pays, on always, off never (default: auto)",
    )
    model.add_argument(
        "--temporal",
        default="off",
        metavar="on|off",
        help="video and cameras: keep the scores of cells whose pixels did not change beyond "
        "noise since the previous frame (default: off)",
    )
    inputs = parser.add_argument_group("input")
    inputs.add_argument("--recursive", action="store_true", help="descend into subfolders")
    inputs.add_argument(
        "--vid-stride",
        default="1",
        metavar="N",
        help="process every N-th video or camera frame (default: 1)",
    )
    inputs.add_argument(
        "--loop",
        default="1",
        metavar="N",
        help="video files: play the file N times, 0 endlessly, frame indices counting on, "
        "for a demo that never ends or a soak test of a long run (default: 1)",
    )
    inputs.add_argument(
        "--camera-size",
        metavar="WxH",
        help="cameras: ask for frames of this size, e.g. 1280x720 (default: the driver's)",
    )
    inputs.add_argument(
        "--camera-fps",
        metavar="N",
        help="cameras: ask for this frame rate (default: the driver's)",
    )
    inputs.add_argument(
        "--max-pixels",
        metavar="N",
        help="refuse images and video frames with more pixels, read from the file header "
        "or the video's properties before decoding; a camera or stream is refused from its "
        "properties when it opens and stopped at any frame that arrives larger "
        "(default: 40000000)",
    )
    inputs.add_argument(
        "--io-threads",
        metavar="N",
        help="threads decoding and writing images alongside inference; "
        "0 disables the overlap (default: up to 4)",
    )
    outputs = parser.add_argument_group("output")
    outputs.add_argument(
        "--json",
        metavar="FILE|-",
        help="write JSON Lines, one record per image or frame ('-': stdout); "
        "an existing non-empty FILE is refused unless --append, and so is an input file "
        "or a file --save writes",
    )
    outputs.add_argument(
        "--coco",
        metavar="FILE",
        help="image batches: a COCO results file, a JSON list of {image_id, category_id, "
        "bbox [x, y, w, h], score}, written when the run ends (also when it is stopped), "
        "atomically; image_id is the image's position in the batch from 1, in the order of "
        "the records (each SOURCE in turn, a folder's or glob's files sorted by path), or "
        "with --coco-images its ground truth's id, and category_id the model's class id (the "
        "digit, for the shipped models); an existing FILE is refused, and so is an input file "
        "or a file --json or --save writes",
    )
    outputs.add_argument(
        "--coco-images",
        metavar="GT",
        help='with --coco: take each image_id from the COCO file GT (its "images" list of '
        "{id, file_name}, as the ground truth you score against), the image whose file_name "
        "is the input's path relative to its SOURCE folder, else the one image with its base "
        "name; an input GT does not name is that input's failure",
    )
    outputs.add_argument(
        "--progress-every",
        default="10",
        metavar="S",
        help="image batches and video files: a progress bar on stderr when it is a terminal, "
        "otherwise (a log, a service) a line every S seconds with done/total, rate and ETA "
        "(default: 10; 0: no lines)",
    )
    outputs.add_argument(
        "--append",
        action="store_true",
        help="add records to an existing --json FILE (an incomplete last line, from a run "
        "that was killed or ran out of space, is removed first)",
    )
    outputs.add_argument(
        "--resume",
        action="store_true",
        help="image batches, with --json FILE --append: skip every input FILE already has a "
        "record for (its source as written), so a stopped batch goes on where it ended; "
        "failed inputs count as done unless --retry-failed",
    )
    outputs.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: run the inputs whose records in FILE are all errors again, "
        "appending their new records",
    )
    outputs.add_argument(
        "--save",
        metavar="DIR",
        help="annotated images (mirroring the sources' relative paths) or, for "
        "videos and cameras, an annotated MJPG video named after the input (clip.mp4: "
        "DIR/clip.avi, which a killed run leaves playable) inside DIR; when DIR already holds "
        "files, a fresh DIR-2 (DIR-3, ...) is used instead and a --json FILE inside DIR "
        "moves with it; images in DIR and its numbered folders are never read as inputs",
    )
    outputs.add_argument(
        "--save-interval",
        metavar="N",
        help="video and camera sources: instead of a video, save every N-th "
        "processed frame as an image named by the run's start and the frame's index "
        "(for headless boards)",
    )
    outputs.add_argument(
        "--save-crop",
        action="store_true",
        help="with --save: each detection's box (clipped to the frame, as drawn) cut from the "
        "input as DIR/crops/LABEL/STEM_I.jpg, I its index in the record's detections "
        "(video and camera frames: STEM_FRAME_I.jpg)",
    )
    outputs.add_argument(
        "--save-txt",
        action="store_true",
        help="with --save: a YOLO label file per image or frame, DIR/labels/ and the image's "
        "relative path with .txt (video and camera frames: STEM_FRAME.txt), a line "
        "'class_id cx cy w h' per detection, normalized to 0..1 by the frame's size; "
        "empty for an image without detections",
    )
    outputs.add_argument(
        "--save-conf",
        action="store_true",
        help="with --save-txt: the score as a sixth column of each label line",
    )
    outputs.add_argument(
        "--show",
        action="store_true",
        help="a window at the frame's size (fitted to the screen) showing the annotated "
        "frames and, for videos and cameras, FPS, latency and dropped frames below them; "
        "q, Esc or closing the window ends the run; images stay until a key (see --wait)",
    )
    outputs.add_argument(
        "--wait",
        metavar="S",
        help="--show with images: seconds each image stays in the window, 0 until a key "
        "is pressed: q or Esc quits, any other key shows the next image (default: 0)",
    )
    drawing = parser.add_argument_group("drawing (--save, --show)")
    drawing.add_argument(
        "--grid",
        metavar="cells|heatmap|off",
        help="how the grid cells are drawn: cells, a tile in its class colour on each cell "
        "above --conf; heatmap, every cell's most likely digit's colour weighted by the "
        "cell's digit score (1 - P(background)), so background stays the frame; off, "
        "none (default: cells)",
    )
    drawing.add_argument("--no-grid", action="store_true", help="the same as --grid off")
    drawing.add_argument(
        "--no-legend",
        action="store_true",
        help="leave out the legend, a strip right of the frame naming the class colours",
    )
    drawing.add_argument(
        "--line-width", default="2", metavar="N", help="box line width in pixels (default: 2)"
    )
    drawing.add_argument(
        "--hide-conf", action="store_true", help="label boxes with the digit alone, no score"
    )
    drawing.add_argument(
        "--no-stats",
        action="store_true",
        help="no FPS/latency/dropped bar below the frames in the window",
    )
    drawing.add_argument(
        "--stats",
        action="store_true",
        help="videos and cameras: the FPS/latency/dropped bar in saved videos and frames too "
        "(by default only the window shows it)",
    )


def _number(
    value: str | None, option: str, kind: type, minimum: float, maximum: float = float("inf")
) -> Any:
    """`value` converted by `kind` and checked against [minimum, maximum], else CommandError."""
    if value is None:
        return None
    try:
        number = kind(value)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise CommandError(f"{option}: expected {noun}, got {value!r}") from None
    if not minimum <= number <= maximum:
        upper = "" if maximum == float("inf") else f" and at most {maximum:g}"
        raise CommandError(f"{option}: expected at least {minimum:g}{upper}, got {value}")
    return number


def _choice(value: str, option: str, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`, else CommandError."""
    if value not in choices:
        raise CommandError(f"{option}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def parse_scales(text: str) -> tuple[float, ...] | None:
    """'0.5,1,2' -> (0.5, 1.0, 2.0), each factor in MIN_SCALE..MAX_SCALE, or 'auto' -> None
    (the runtime's image pyramid); CommandError otherwise."""
    if text.strip() == "auto":
        return None
    parts = [part for part in text.split(",") if part.strip()] or [""]
    return tuple(_number(part, "--scales", float, MIN_SCALE, MAX_SCALE) for part in parts)


def parse_classes(
    text: str | None, labels: Sequence[str], background: int
) -> tuple[int, ...] | None:
    """'3,7' -> the class ids (a label first, else an id) of the model's digit classes, or None
    when not given (all classes); CommandError for an unknown class or the background."""
    if text is None:
        return None
    classes = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        if part in labels:
            class_id = labels.index(part)
        elif part.isdigit() and int(part) < len(labels):
            class_id = int(part)
        else:
            digits = ", ".join(label for i, label in enumerate(labels) if i != background)
            raise CommandError(f"--classes: no class {part!r} in this model (it has {digits})")
        if class_id == background:
            raise CommandError(f"--classes: {part!r} is the background class, not a digit")
        classes.append(class_id)
    if not classes:
        raise CommandError(f"--classes: expected labels or class ids, got {text!r}")
    return tuple(dict.fromkeys(classes))


def _check_options(args: argparse.Namespace) -> None:
    """Convert and check option values in place; one-line CommandError on the first bad one."""
    args.conf = _number(args.conf, "--conf", float, 0.0, 1.0)
    args.scales = parse_scales(args.scales)
    args.invert = _choice(args.invert, "--invert", INVERT_MODES)
    args.backend = _choice(args.backend, "--backend", ("auto", *BACKEND_SUFFIXES))
    args.threads = _number(args.threads, "--threads", int, 1, MAX_THREADS)
    args.sparse = _choice(args.sparse, "--sparse", SPARSE_MODES)
    args.temporal = _choice(args.temporal, "--temporal", ("on", "off")) == "on"
    args.vid_stride = _number(args.vid_stride, "--vid-stride", int, 1)
    args.loop = _number(args.loop, "--loop", int, 0)
    args.max_pixels = _number(args.max_pixels, "--max-pixels", int, 1)
    args.io_threads = _number(args.io_threads, "--io-threads", int, 0, 64)
    args.save_interval = _number(args.save_interval, "--save-interval", int, 1)
    args.progress_every = _number(args.progress_every, "--progress-every", float, 0.0)
    args.camera_size = _camera_size(args.camera_size)
    args.camera_fps = _number(args.camera_fps, "--camera-fps", float, 0.1, 1000.0)
    if args.save_interval is not None and args.save is None:
        raise CommandError("--save-interval needs --save DIR")
    for flag, option in ((args.save_crop, "--save-crop"), (args.save_txt, "--save-txt")):
        if flag and args.save is None:
            raise CommandError(f"{option} needs --save DIR")
    if args.save_conf and not args.save_txt:
        raise CommandError("--save-conf needs --save-txt")
    if args.coco_images is not None and args.coco is None:
        raise CommandError("--coco-images needs --coco FILE")
    if args.append and args.json in (None, "-"):
        raise CommandError("--append needs --json FILE")
    if args.resume and (not args.append or args.json in (None, "-")):
        raise CommandError("--resume needs --json FILE --append (the records to resume from)")
    if args.retry_failed and not args.resume:
        raise CommandError("--retry-failed needs --resume")
    args.wait = _number(args.wait, "--wait", float, 0.0)
    if args.wait is not None and not args.show:
        raise CommandError("--wait needs --show")
    if args.no_grid and args.grid not in (None, "off"):
        raise CommandError(f"--no-grid is --grid off; it excludes --grid {args.grid}")
    args.grid = "off" if args.no_grid else _choice(args.grid or "cells", "--grid", GRID_MODES)
    args.line_width = _number(args.line_width, "--line-width", int, 1, 50)
    if args.stats and args.no_stats:
        raise CommandError("--stats and --no-stats exclude each other")
    if args.stats and args.save is None:
        raise CommandError("--stats needs --save DIR (the window shows the stats anyway)")


def _camera_size(text: str | None) -> tuple[int, int] | None:
    """'1280x720' -> (1280, 720), each side 1..16384 px; None if not given, else CommandError."""
    from convdet.commands.scenes import parse_size

    if text is None:
        return None
    try:
        size = parse_size(text)
    except argparse.ArgumentTypeError as error:
        raise CommandError(f"--camera-size: {error}") from None
    if not all(1 <= side <= 16384 for side in size):
        raise CommandError(f"--camera-size: expected sides of 1 to 16384 px, got {text!r}")
    return size


def _model_path(model: str | None, backend: str) -> Path | None:
    """The model file to load: --model (a path, or a shipped model's name), or the shipped
    default for --backend; None lets the runtime choose its default."""
    from convdet.runtime.shipped import default_model_path, resolve_model

    if model is None:
        return None if backend == "auto" else default_model_path(backend)
    path = resolve_model(model, backend)
    if backend != "auto" and path.suffix.lower() != BACKEND_SUFFIXES[backend]:
        suffix = BACKEND_SUFFIXES[backend]
        raise CommandError(f"--backend {backend} runs {suffix} models, got {model}")
    return path


class Reporter(Progress):
    """Messages and counts of one run: per-file failures (once each, from any thread), per-image
    lines, the final summary, and progress when the total is known (see `Progress`)."""

    def __init__(self, total: int | None, out: TextIO, unit: str, interval: float) -> None:
        super().__init__("detect", total, unit, interval)
        self.out = out
        self.processed = 0
        self.failed = 0
        self.counts: Counter[str] = Counter()
        self.retrying: set[str] | None = None  # --retry-failed: earlier failures run again
        self.retried = 0

    def failure(self, what: str, why: str) -> None:
        """A file (input or output) that failed; counted for the exit status."""
        self.message(f"{what}: {why}")
        with self._lock:
            self.failed += 1

    def detected(
        self, name: str, labels: list[str], texts: list[str], size: tuple[int, int], line: bool
    ) -> None:
        """Count one processed image or frame; with `line`, print its one-line summary (digits
        per class and the strings read, in reading order)."""
        self.processed += 1
        self.counts.update(labels)
        if line:
            read = "".join(f' "{text}"' for text in texts)
            self.print(
                f"{printable(name)}: {size[1]}x{size[0]}, {_describe(Counter(labels))}"
                + (f", read{read}" if read else ""),
                self.out,
            )

    def recorded(self, source: str) -> None:
        """Count an input whose record was just written as retried if it failed before."""
        if self.retrying is not None and source in self.retrying:
            self.retried += 1

    def step(self) -> None:
        """Show progress after each image or frame, processed or failed."""
        self.update(self.processed + self.failed)

    def summary(self, dropped: int | None) -> None:
        """The final line: processed, failed, digits per class, rate (and dropped frames)."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        noun = self.unit if self.processed != 1 else self.unit.removesuffix("s")
        parts = [f"{self.processed} {noun} processed"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if dropped is not None:
            parts.append(f"{dropped} dropped")
        if self.retrying is not None:
            parts.append(
                f"{self.retried} earlier failure{'s' if self.retried != 1 else ''} retried"
            )
        parts.append(_describe(self.counts))
        parts.append(f"{self.processed / elapsed:.1f} {self.unit}/s")
        self.print("; ".join(parts), self.out)


def _describe(counts: Counter[str]) -> str:
    """'3 digits (7 x2, 1 x1)' or 'no digits'."""
    total = sum(counts.values())
    if not total:
        return "no digits"
    per_class = ", ".join(f"{label} x{count}" for label, count in sorted(counts.items()))
    return f"{total} digit{'s' if total > 1 else ''} ({per_class})"


class Outputs:
    """The sinks of one run, entered on `stack`: `record` writes a result's record, `draw`
    saves and shows its annotated frame."""

    def __init__(
        self,
        args: argparse.Namespace,
        targets: Targets,
        source: Any,
        detector: Any,
        reporter: Reporter,
        stack: contextlib.ExitStack,
        coco_images: Any = None,
    ) -> None:
        from convdet.runtime import (
            BoxAnnotator,
            GridAnnotator,
            HeatmapAnnotator,
            LegendAnnotator,
            LinesAnnotator,
            StatsAnnotator,
        )
        from convdet.runtime.sinks import (
            AnnotatedImageSaver,
            CocoResults,
            JsonlSink,
            VideoSaver,
            Window,
            run_id,
        )

        self.labels = detector.labels
        self.source = source
        self.run = run_id()
        self.live = source.kind != "images"  # videos, cameras, streams: records carry the time
        self.json = (
            None
            if targets.json is None
            else stack.enter_context(JsonlSink(targets.json, append=args.append))
        )
        if self.json is not None and self.json.repaired:
            reporter.message(
                f"{targets.json}: removed an incomplete last line ({self.json.repaired} bytes, "
                "from a run that was killed or ran out of space) before appending"
            )
        grid = {"cells": GridAnnotator, "heatmap": HeatmapAnnotator}.get(args.grid)
        self.layers = [
            *([] if grid is None else [grid()]),
            BoxAnnotator(thickness=args.line_width, show_score=not args.hide_conf),
            LinesAnnotator(),
            *([] if args.no_legend else [LegendAnnotator()]),
        ]
        self.coco = (
            None
            if targets.coco is None
            else stack.enter_context(CocoResults(targets.coco, on_error=reporter.failure))
        )
        self.coco_images = coco_images  # a CocoImageIds (--coco-images), or None
        self.image_id = 0  # the position in the batch of the latest frame, from 1 (--coco)
        self.files = self.images = self.video = self.window = None
        self.save_crop, self.save_txt = args.save_crop, args.save_txt
        self.save_conf = args.save_conf
        self.interval = args.save_interval
        self.started = time.strftime("%Y%m%d-%H%M%S")  # in frame names: unique across restarts
        if targets.folder is not None and targets.folder != Path(args.save):
            moved = f" (--json {targets.json})" if targets.json != args.json else ""
            reporter.message(
                f"{args.save} already holds results; this run saves to {targets.folder}{moved}"
            )
        writers = 2 if args.io_threads is None else min(args.io_threads, 2)
        if targets.video is not None:
            # A file's frames play at its rate over the stride; a live source's at the rate
            # they were processed (dropped frames left out), measured over the run.
            fps = source.fps / args.vid_stride if source.fps and source.kind == "video" else None
            self.video = stack.enter_context(
                VideoSaver(
                    targets.video,
                    fps=fps or source.fps or 10.0,
                    on_error=reporter.failure,
                    protect=targets.protect,
                    measured=source.kind == "live",
                )
            )
        if targets.folder is not None and (
            targets.video is None or self.save_crop or self.save_txt
        ):
            # One saver for annotated images, crops and label files: no two share a name.
            self.files = stack.enter_context(
                AnnotatedImageSaver(
                    targets.folder,
                    on_error=reporter.failure,
                    protect=targets.protect,
                    workers=writers,
                )
            )
            self.images = self.files if targets.video is None else None
        if args.show:
            try:
                self.window = stack.enter_context(Window(f"convdet {printable(source.name)}"))
            except OSError as error:
                reporter.message(f"--show: {error}; continuing without a window")
        # Images stay in the window until a key (or --wait); video and camera frames flow on.
        self.hold = 0.0 if source.kind != "images" else (args.wait or math.inf)
        # FPS, latency and dropped frames: on a bar below the frame (covering nothing), shown
        # in the window unless --no-stats, burned into saved frames only with --stats.
        self.saved_stats = self.live and args.stats
        in_window = self.window is not None and not args.no_stats
        self.stats = StatsAnnotator(bar=True) if self.live and (in_window or args.stats) else None

    @property
    def annotating(self) -> bool:
        return bool(self.images or self.video or self.window)

    def _write(self, record: dict[str, Any]) -> None:
        """Write one record to --json, if given, stamped with the run id (and for videos,
        cameras and streams the wall-clock time)."""
        if self.json is None:
            return
        from convdet.runtime.sinks import utc_time

        stamp = {"time": utc_time()} if self.live else {}
        self.json.write({**record, **stamp, "run": self.run})

    def number(self, frame: Any) -> str | None:
        """Give `frame` its --coco image_id: its position in the batch, or with --coco-images
        its ground-truth image's id; why it has none (no ground-truth image is that input) is
        the input's error, returned."""
        self.image_id += 1
        if self.coco_images is None:
            return None
        try:
            self.image_id = self.coco_images.take(frame.relpath, frame.source)
        except ValueError as error:
            return str(error)
        return None

    def failed(self, frame: Any, error: str) -> None:
        """Write the record of a file or frame that could not be processed."""
        from convdet.runtime.sinks import failure_record

        self._write(failure_record(frame.source, frame.index, error))

    def record(self, frame: Any, result: Any) -> None:
        """Write one result's record to --json and its detections to --coco, if given."""
        from convdet.runtime.sinks import detection_record

        if self.coco is not None:
            self.coco.add(self.image_id, result.detections)
        self._write(
            detection_record(
                frame.source,
                frame.index,
                frame.image.shape,
                result.detections,
                self.labels,
                result.lines,
            )
        )

    def draw(self, frame: Any, result: Any, processed: int) -> bool:
        """Save the crops and label file of one result, then save and show its annotated frame
        (the `processed`-th, from 0; drawn in place, so after the crops are cut); False when
        the user closed the window."""
        if self.save_crop:
            self._save_crops(frame, result)
        if self.save_txt:
            from convdet.runtime.sinks import yolo_labels

            name = frame.relpath if frame.index is None else self._frame_stem(frame)
            text = yolo_labels(result.detections, frame.image.shape, self.save_conf)
            self.files.save_text(PurePath("labels", name).with_suffix(".txt"), text)
        if not self.annotating:
            return True
        image = frame.image
        for layer in self.layers:
            image = layer.annotate(image, result)
        if self.stats is not None:
            self.stats.dropped = self.source.dropped
            shown = self.stats.annotate(image, result)  # a new, taller array: image unchanged
            image = shown if self.saved_stats else image
        else:
            shown = image
        if self.images is not None and (self.interval is None or processed % self.interval == 0):
            self.images.save(self._relpath(frame), image)
        if self.video is not None:
            self.video.write(image)
        return self.window is None or self.window.show(shown, self.hold)

    def _save_crops(self, frame: Any, result: Any) -> None:
        """Each detection's box, as drawn, cut from the input frame (as BGR uint8) and saved
        as crops/LABEL/STEM_I.jpg, with the frame index for video and camera frames."""
        from convdet.runtime.annotate import as_bgr

        if not len(result.detections):
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
    def _stem(frame: Any) -> str:
        """The input's name without its extension; camera0, video0 or stream for live sources."""
        return frame.relpath.stem if frame.relpath else _live_name(frame.source)

    @classmethod
    def _frame_stem(cls, frame: Any) -> str:
        """The stem of a video or camera frame's crops and label file: STEM_FRAME."""
        return f"{cls._stem(frame)}_{frame.index:08d}"

    def _relpath(self, frame: Any) -> PurePath:
        if frame.index is None:
            return frame.relpath
        return PurePath(self._stem(frame), f"{self.started}-{frame.index:08d}.jpg")


@dataclass(frozen=True)
class Targets:
    """Where one run writes, decided and checked before the model loads: the --json file, the
    --save folder and, for a video or camera without --save-interval, the video in it, the
    --coco file; and the files no saver may write over: the inputs and the --json file (frame
    names come only as frames do, so this guard, not a check beforehand, keeps them off the
    records)."""

    json: str | None
    folder: Path | None
    video: Path | None
    protect: list[Path]
    coco: Path | None = None


def _targets(args: argparse.Namespace, source: Any) -> Targets:
    """The run's Targets: a fresh --save folder when the one named holds results, taking a
    --json or --coco FILE inside it along; CommandError when --json or --coco names an input
    or a file --save writes, --coco an existing file or the --json one, or --append a --json
    FILE that had to move."""
    from convdet.runtime.paths import fresh_folder
    from convdet.runtime.sinks import VIDEO_SUFFIX

    inputs = [path for path, _relpath in getattr(source, "files", [])]
    inputs += [Path(spec) for spec in args.source if Path(spec).is_file()]  # videos, lists
    inputs += [] if args.coco_images is None else [Path(args.coco_images)]
    save = None if args.save is None else Path(args.save)
    folder = None if save is None else fresh_folder(save)
    json = args.json if args.json in (None, "-") else _moved(args.json, save, folder)
    if args.append and json != args.json:
        raise CommandError(
            f"--append: --json {args.json} is inside --save {save}, which holds earlier results, "
            f"so this run saves to {folder}; to append, give a --json FILE outside {save}"
        )
    coco = None if args.coco is None else Path(_moved(args.coco, save, folder))
    video = None
    if folder is not None and source.kind != "images" and args.save_interval is None:
        # MJPG in AVI, for video files as for cameras: each frame is a whole JPEG chunk on
        # disk as soon as the writer's buffer flushes, so a killed run (SIGKILL, power loss)
        # leaves a file that plays up to its last flushed frame. OpenCV's MP4 (mp4v) keeps
        # its index (moov) for the end, so a killed MP4 does not open at all, and its FFmpeg
        # writer cannot be told to fragment (OPENCV_FFMPEG_WRITER_OPTIONS reaches the codec,
        # not the muxer). The name stays the input's stem: clip.mp4 -> DIR/clip.avi.
        path = getattr(source, "path", None)
        video = folder / f"{path.stem if path else _live_name(source.name)}{VIDEO_SUFFIX}"
    if coco is not None:
        _check_output("--coco", coco, inputs, folder, video, source)
        if json not in (None, "-") and coco.resolve() == Path(json).resolve():
            raise CommandError(f"--coco {coco} is the --json file; choose another file")
        if os.path.lexists(coco):
            raise CommandError(f"--coco {coco} already exists; choose another file")
    if json in (None, "-"):
        return Targets(json, folder, video, inputs, coco)
    _check_output("--json", Path(json), inputs, folder, video, source)
    return Targets(json, folder, video, [*inputs, Path(json)], coco)


def _moved(path: str, save: Path | None, folder: Path | None) -> str:
    """`path`, or when it lies inside the --save folder `save` and the run saves to a fresh
    `folder` instead (as `save` holds results), the same place inside `folder`."""
    if save is None or folder == save or not Path(path).resolve().is_relative_to(save.resolve()):
        return path
    return str(folder / Path(path).resolve().relative_to(save.resolve()))


def _check_output(
    option: str,
    output: Path,
    inputs: list[Path],
    folder: Path | None,
    video: Path | None,
    source: Any,
) -> None:
    """Refuse an `option` FILE (--json, --coco) that is an input, the --save folder, or a file
    --save writes (an annotated image or video), before anything is written."""
    from convdet.runtime.sinks import AnnotatedImageSaver, SaveError, file_id

    found = file_id(output)
    if found is not None and found in {file_id(path) for path in inputs}:
        raise CommandError(
            f"{option} {output} is an input file; choose another file for the records"
        )
    if folder is None or not output.resolve().is_relative_to(folder.resolve()):
        return
    relative = PurePath(output.resolve().relative_to(folder.resolve()))
    if relative == PurePath():
        raise CommandError(f"{option} {output} is the --save folder; choose a file for the records")
    if video is not None:
        saved = {PurePath(video.name)}
    else:
        saved = set()
        for _path, relpath in getattr(source, "files", []):
            with contextlib.suppress(SaveError):  # refused paths are reported when saved
                saved.add(AnnotatedImageSaver.output_relpath(relpath))
    if relative in saved:
        what = "video" if video is not None else "image"
        raise CommandError(
            f"{option} {output} is where --save writes an annotated {what}; "
            "choose another file for the records"
        )


def _live_name(name: str) -> str:
    """A file name for a live source: camera0, video0 for /dev/video0, or `stream` for URLs."""
    from convdet.runtime.sources import is_video_device

    if name.isdigit():
        return f"camera{name}"
    return Path(name).name if is_video_device(name) else "stream"


def _resume(source: Any, json: str, retry_failed: bool) -> tuple[str, set[str] | None, Any]:
    """For --resume: the line saying how much of the batch `source` the --json FILE already
    holds, the earlier failures run again (None without `retry_failed`), and the batch kept
    to the inputs still to do."""
    from convdet.runtime.sinks import unrecorded

    inputs = [str(path) for path, _relpath in source.files]
    pending, failed = unrecorded(json, inputs, retry_failed)
    rest = source.only(pending)
    line = (
        f"resuming: {source.total - rest.total} of {source.total} inputs already in {json}, "
        f"{rest.total} to go"
    )
    if retry_failed:
        line += f" ({len(failed)} of them failed before and are retried)"
    return line, failed if retry_failed else None, rest


def _detect_all(
    source: Any,
    detector: Any,
    outputs: Outputs,
    reporter: Reporter,
    lines: bool,
    classes: tuple[int, ...] | None,
    interrupts: Interrupts,
) -> None:
    """The main loop: every frame through the detector (its result kept to `classes`, if
    given) and the outputs; a frame's record is written and counted in one block that a
    signal does not split (`interrupts.deferred`), before it is drawn, so a run stopped at any
    point (Ctrl-C, SIGTERM) counts the records that are there: none that is not, and none left
    out."""
    for frame in source:
        unnumbered = outputs.number(frame)
        error = frame.error or unnumbered
        if error is None:
            try:
                result = detector(frame.image)
                if classes is not None:
                    result = result.only(classes)
            except Exception as refused:  # any failure is this frame's: counted, run goes on
                error = str(refused).strip() or type(refused).__name__
        if error is not None:
            with interrupts.deferred():
                outputs.failed(frame, error)
                reporter.failure(frame.source, error)
                reporter.recorded(frame.source)
        else:
            name = frame.source if frame.index is None else f"{frame.source}#{frame.index}"
            labels = [detector.labels[i] for i in result.detections.class_id]
            texts = [line.text for line in result.lines]
            processed = reporter.processed
            with interrupts.deferred():
                outputs.record(frame, result)
                reporter.detected(name, labels, texts, frame.image.shape[:2], lines)
                reporter.recorded(frame.source)
            if not outputs.draw(frame, result, processed):
                return
        reporter.step()


def run(args: argparse.Namespace) -> int:
    """Run detection on SOURCE; see the module docstring for outputs and exit status. SIGTERM
    is Ctrl-C from the start, so a service stopped while the model loads also exits 130."""
    with Interrupts() as interrupts:
        return _run(args, interrupts)


def _run(args: argparse.Namespace, interrupts: Interrupts) -> int:
    """`run` with SIGINT and SIGTERM already handled by `interrupts`."""
    _check_options(args)
    from convdet.runtime import Detector
    from convdet.runtime.paths import resolved
    from convdet.runtime.sinks import RecordError
    from convdet.runtime.sources import (
        DEFAULT_MAX_PIXELS,
        StreamStopped,
        is_camera,
        quiet_opencv,
        resolve_sources,
    )

    save = Path(args.save) if args.save is not None else None
    if save is not None and any(resolved(save) == resolved(Path(spec)) for spec in args.source):
        raise CommandError(
            f"--save {args.save} is the source folder; annotated images would overwrite the inputs"
        )
    source = resolve_sources(
        args.source,
        recursive=args.recursive,
        vid_stride=args.vid_stride,
        loops=args.loop,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
        workers=min(4, os.cpu_count() or 1) if args.io_threads is None else args.io_threads,
        exclude=save,
        camera_size=args.camera_size,
        camera_fps=args.camera_fps,
    )
    camera = source.kind == "live" and is_camera(getattr(source, "target", ""))
    if (args.camera_size or args.camera_fps) and not camera:
        raise CommandError("--camera-size and --camera-fps apply to cameras (0, /dev/video0)")
    if args.save_interval is not None and source.kind == "images":
        raise CommandError("--save-interval applies to video and camera sources")
    if args.loop != 1 and source.kind != "video":
        raise CommandError("--loop applies to video files")
    if args.coco is not None and source.kind != "images":
        raise CommandError("--coco applies to image batches")
    if args.stats and source.kind == "images":
        raise CommandError("--stats applies to video and camera sources")
    if args.wait is not None and source.kind != "images":
        raise CommandError("--wait applies to images (video and camera frames flow on)")
    if args.resume and source.kind != "images":
        raise CommandError(
            "--resume applies to image batches (images, folders, globs, lists), "
            "not to a video, camera or stream"
        )
    if args.resume and args.coco is not None:
        raise CommandError(
            "--coco and --resume exclude each other: a resumed run's COCO file would hold "
            "only the images it ran, numbered from 1 again"
        )
    coco_images = None
    if args.coco_images is not None:
        from convdet.data.coco import CocoImageIds

        try:
            coco_images = CocoImageIds.load(args.coco_images)
        except ValueError as error:
            raise CommandError(f"--coco-images {error}") from None
    targets = _targets(args, source)
    resumed, retrying = None, None
    if args.resume:
        resumed, retrying, source = _resume(source, args.json, args.retry_failed)
    detector = Detector(
        _model_path(args.model, args.backend),
        conf=args.conf,
        scales=args.scales,
        invert=args.invert,
        threads=args.threads,
        sparse=args.sparse,
        temporal=args.temporal,
    )
    classes = parse_classes(args.classes, detector.labels, detector.info.background)
    lines = args.json is None and save is None and not args.show
    out = sys.stderr if args.json == "-" else sys.stdout
    status = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_opencv())
        stack.enter_context(source)
        unit = "images" if source.kind == "images" else "frames"
        reporter = Reporter(source.total, out, unit, args.progress_every)
        if resumed is not None:
            reporter.message(resumed)
            reporter.retrying = retrying
        opened = False
        try:
            with contextlib.ExitStack() as sinks:
                outputs = Outputs(args, targets, source, detector, reporter, sinks, coco_images)
                opened = True
                _detect_all(source, detector, outputs, reporter, lines, classes, interrupts)
        except (StreamStopped, RecordError) as error:  # the run stops; what was written stays
            reporter.message(str(error))
            status = 1
        finally:
            reporter.close()
            if opened:  # after the sinks closed, so late write failures are counted
                reporter.summary(source.dropped if source.kind == "live" else None)
    return 1 if reporter.failed else status
