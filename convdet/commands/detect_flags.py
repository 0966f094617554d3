"""`convdet detect`'s flags: their definitions and help, their checks (one line, exit 2, on the
first bad value), and the pipeline options (`convdet.runtime.options`) they mean."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from convdet.cli import MAX_THREADS
from convdet.options import (
    add_recheck,
    camera_size,
    choice,
    error,
    given,
    number,
    parse_scales,
    recheck,
)
from convdet.runtime.defaults import (
    DEFAULT_CONF,
    INVERT_MODES,
    MAX_SCALE,
    MIN_SCALE,
    SPARSE_MODES,
)
from convdet.runtime.options import (
    BACKEND_SUFFIXES,
    DrawOptions,
    ModelOptions,
    OutputOptions,
    PipelineOptions,
)

GRID_MODES = ("cells", "heatmap", "off")
ENGINES = ("local", "ray")
Options = TypeVar("Options", PipelineOptions, ModelOptions, DrawOptions, OutputOptions)


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
        "frame's shorter side keeps 64 px, then half an octave more while it keeps 32 px, for "
        "digits of about 16 px up to a third of that side, or all of it on a strip of text)",
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
    add_recheck(model)
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
    engine = parser.add_argument_group("engine (image batches beyond one process)")
    engine.add_argument(
        "--engine",
        default="local",
        metavar="local|ray",
        help="local: this process; ray: Ray Data actors on this machine or a cluster "
        "(--address), for image batches with --json FILE, needs the convdet[ray] extra; the "
        "records are this process's, FILE is assembled in input order from FILE.parts when "
        "the run ends, and --resume goes on after a run that died (default: local)",
    )
    engine.add_argument(
        "--address",
        metavar="ADDR",
        help="--engine ray: the Ray cluster to run on, HOST:PORT of its head or auto (the one "
        "`ray start` began on this machine); inputs and a --model file must be at the same "
        "path on every machine, or in an object store (default: $RAY_ADDRESS, else a local "
        "Ray for the run)",
    )
    engine.add_argument(
        "--actors",
        metavar="N",
        help="--engine ray: detector actors, each with one model and --threads inference "
        "threads, 1 unless given (default: the cluster's CPUs over --threads)",
    )
    engine.add_argument(
        "--batch-size",
        metavar="N",
        help="--engine ray: images per task and part file; a killed actor's batch is run "
        "again (default: 64)",
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


def check_options(args: argparse.Namespace) -> None:
    """Convert and check option values in place; one-line CommandError on the first bad one."""
    args.conf = number("--conf", float, 0.0, 1.0)(args.conf)
    args.scales = parse_scales(args.scales)
    args.invert = choice("--invert", INVERT_MODES)(args.invert)
    args.backend = choice("--backend", ("auto", *BACKEND_SUFFIXES))(args.backend)
    args.threads = given(args.threads, number("--threads", int, 1, MAX_THREADS))
    args.sparse = choice("--sparse", SPARSE_MODES)(args.sparse)
    args.temporal = choice("--temporal", ("on", "off"))(args.temporal) == "on"
    args.recheck = recheck(args.recheck)
    args.vid_stride = number("--vid-stride", int, 1)(args.vid_stride)
    args.loop = number("--loop", int, 0)(args.loop)
    args.max_pixels = given(args.max_pixels, number("--max-pixels", int, 1))
    args.io_threads = given(args.io_threads, number("--io-threads", int, 0, 64))
    args.save_interval = given(args.save_interval, number("--save-interval", int, 1))
    args.progress_every = number("--progress-every", float, 0.0)(args.progress_every)
    args.camera_size = given(args.camera_size, camera_size)
    args.camera_fps = given(args.camera_fps, number("--camera-fps", float, 0.1, 1000.0))
    if args.save_interval is not None and args.save is None:
        error("--save-interval needs --save DIR")
    for flag, option in ((args.save_crop, "--save-crop"), (args.save_txt, "--save-txt")):
        if flag and args.save is None:
            error(f"{option} needs --save DIR")
    if args.save_conf and not args.save_txt:
        error("--save-conf needs --save-txt")
    if args.coco_images is not None and args.coco is None:
        error("--coco-images needs --coco FILE")
    if args.append and args.json in (None, "-"):
        error("--append needs --json FILE")
    if args.resume and (not args.append or args.json in (None, "-")):
        error("--resume needs --json FILE --append (the records to resume from)")
    if args.retry_failed and not args.resume:
        error("--retry-failed needs --resume")
    args.wait = given(args.wait, number("--wait", float, 0.0))
    if args.wait is not None and not args.show:
        error("--wait needs --show")
    if args.no_grid and args.grid not in (None, "off"):
        error(f"--no-grid is --grid off; it excludes --grid {args.grid}")
    args.grid = "off" if args.no_grid else choice("--grid", GRID_MODES)(args.grid or "cells")
    args.line_width = number("--line-width", int, 1, 50)(args.line_width)
    if args.stats and args.no_stats:
        error("--stats and --no-stats exclude each other")
    if args.stats and args.save is None:
        error("--stats needs --save DIR (the window shows the stats anyway)")
    _check_engine(args)


def _check_engine(args: argparse.Namespace) -> None:
    """Convert and check --engine and its options (one-line CommandError on a bad one)."""
    args.engine = choice("--engine", ENGINES)(args.engine)
    args.actors = given(args.actors, number("--actors", int, 1, 4096))
    args.batch_size = given(args.batch_size, number("--batch-size", int, 1, 65536))
    if args.engine == "local":
        if args.address is not None or args.actors or args.batch_size:
            error("--address, --actors and --batch-size apply to --engine ray")
        return
    if args.json in (None, "-"):
        error("--engine ray needs --json FILE (the records, assembled when the run ends)")
    if args.save is not None or args.show or args.coco is not None:
        error("--engine ray writes --json FILE only; --save, --show and --coco run locally")


def pipeline_options(args: argparse.Namespace) -> PipelineOptions:
    """The checked `args` as the pipeline's options (--classes are set once the model loads)."""
    return _from_args(
        PipelineOptions,
        args,
        model=_from_args(ModelOptions, args, classes=None),
        draw=_from_args(
            DrawOptions,
            args,
            scores=not args.hide_conf,
            legend=not args.no_legend,
            window_stats=not args.no_stats,
            saved_stats=args.stats,
        ),
        outputs=_from_args(
            OutputOptions, args, save=None if args.save is None else Path(args.save)
        ),
    )


def _from_args(kind: type[Options], args: argparse.Namespace, **given: Any) -> Options:
    """A `kind` options dataclass: `given` fields, the others from the option of their name
    (left at their default when detect has no such option)."""
    names = [field.name for field in fields(kind) if field.name not in given]
    return kind(**given, **{name: getattr(args, name) for name in names if name in args})
