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
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from convdet.cli import Interrupts, printable
from convdet.commands.detect_flags import add_arguments as add_arguments  # the CLI reads it here
from convdet.commands.detect_flags import check_options, pipeline_options
from convdet.options import error, parse_classes
from convdet.progress import DetectReporter
from convdet.runtime.options import load_detector

if TYPE_CHECKING:
    from convdet.runtime.sources import Source

HELP = "detect digits in images, folders, globs, videos, webcams and streams"


def _check_source(args: argparse.Namespace, source: Source) -> None:
    """Refuse options that do not apply to the kind of source SOURCE is."""
    from convdet.runtime.sources import LiveSource, is_camera

    camera = isinstance(source, LiveSource) and is_camera(source.target)
    if (args.camera_size or args.camera_fps) and not camera:
        error("--camera-size and --camera-fps apply to cameras (0, /dev/video0)")
    if args.save_interval is not None and source.kind == "images":
        error("--save-interval applies to video and camera sources")
    if args.loop != 1 and source.kind != "video":
        error("--loop applies to video files")
    if args.coco is not None and source.kind != "images":
        error("--coco applies to image batches")
    if args.stats and source.kind == "images":
        error("--stats applies to video and camera sources")
    if args.wait is not None and source.kind != "images":
        error("--wait applies to images (video and camera frames flow on)")
    if args.resume and source.kind != "images":
        error(
            "--resume applies to image batches (images, folders, globs, lists), "
            "not to a video, camera or stream"
        )
    if args.resume and args.coco is not None:
        error(
            "--coco and --resume exclude each other: a resumed run's COCO file would hold "
            "only the images it ran, numbered from 1 again"
        )


def run(args: argparse.Namespace) -> int:
    """Run detection on SOURCE; see the module docstring for outputs and exit status. SIGTERM
    is Ctrl-C from the start, so a service stopped while the model loads also exits 130."""
    with Interrupts() as interrupts:
        return _run(args, interrupts)


def _run(args: argparse.Namespace, interrupts: Interrupts) -> int:
    """`run` with SIGINT and SIGTERM already handled by `interrupts`."""
    check_options(args)
    from convdet.runtime.jsonl import RecordError
    from convdet.runtime.outputs import Outputs
    from convdet.runtime.paths import resolved
    from convdet.runtime.pipeline import run_pipeline
    from convdet.runtime.sources import (
        DEFAULT_MAX_PIXELS,
        ImageBatch,
        StreamStopped,
        quiet_opencv,
        resolve_sources,
    )
    from convdet.runtime.targets import plan_targets, resume

    options = pipeline_options(args)
    if args.engine == "ray":
        from convdet.batch.engine import run as run_ray

        return run_ray(args, options, interrupts.deferred)
    save = options.outputs.save
    if save is not None and any(resolved(save) == resolved(Path(spec)) for spec in args.source):
        error(
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
    _check_source(args, source)
    coco_images = None
    if args.coco_images is not None:
        from convdet.data.coco import CocoImageIds

        try:
            coco_images = CocoImageIds.load(args.coco_images)
        except ValueError as refused:
            error(f"--coco-images {refused}")
    targets = plan_targets(options.outputs, args.source, source)
    resumed, retrying = None, None
    if args.resume and isinstance(source, ImageBatch):
        resumed, retrying, source = resume(source, args.json, args.retry_failed)
    detector = load_detector(options.model)
    classes = parse_classes(args.classes, detector.labels, detector.info.background)
    options = replace(options, model=replace(options.model, classes=classes))
    lines = args.json is None and save is None and not args.show
    out = sys.stderr if args.json == "-" else sys.stdout
    status = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_opencv())
        stack.enter_context(source)
        reporter = DetectReporter(source.total, out, source.unit, args.progress_every, lines)
        if resumed is not None:
            reporter.message(resumed)
            reporter.retrying = retrying
        opened = False
        title = f"convdet {printable(source.name)}"
        try:
            with Outputs(
                options, targets, source, detector.labels, reporter, coco_images, title
            ) as outputs:
                opened = True
                run_pipeline(source, detector, outputs, reporter, options, interrupts.deferred)
        except (StreamStopped, RecordError) as stopped:  # the run stops; what was written stays
            reporter.message(str(stopped))
            status = 1
        finally:
            reporter.close()
            if opened:  # after the sinks closed, so late write failures are counted
                reporter.summary(source.dropped if source.live else None)
    return 1 if reporter.failed else status
