"""`convdet evaluate`: precision, recall, F1, confusion, localization error, count match and
string figures on a scene set or on a COCO folder of real images (one fixed split of it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from convdet.cli import CommandError
from convdet.options import add_recheck, choice, given, number, parse_scales, recheck
from convdet.runtime.defaults import COCO_SPLITS, DEFAULT_CONF, GROUPING_METHODS, INVERT_MODES

if TYPE_CHECKING:
    from convdet.data.scenes import SceneSet

HELP = (
    "measure detection and string-reading quality on a scene set made by `convdet scenes` "
    "or on a COCO folder of real images with a box per digit"
)
DEFAULT_SPLIT = "dev"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet evaluate`; values are checked in `run` so errors stay one line."""
    parser.add_argument(
        "scenes",
        type=Path,
        metavar="PATH",
        help="a scene set folder (truth.jsonl) or a COCO folder (annotations.json)",
    )
    parser.add_argument(
        "--split",
        default=None,
        metavar="|".join(COCO_SPLITS),
        help=f"COCO folders: which fixed split of the images to score (default: {DEFAULT_SPLIT}, "
        "for choosing settings). test is the held-out part: report it, never tune on it",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="a .onnx or .tflite detector, or a shipped one's name with or without its "
        "extension, as `convdet info` lists them (default: the shipped default model)",
    )
    parser.add_argument(
        "--conf",
        default=str(DEFAULT_CONF),
        metavar="X",
        help="minimum detection score (digit probability times class share), also the "
        f"grid's cell threshold (default: {DEFAULT_CONF})",
    )
    parser.add_argument(
        "--scales",
        default="auto",
        metavar="LIST|auto",
        help="comma-separated resize factors run as given, e.g. 1 or 0.5,1,2 (default: auto, "
        "as for detect: the image pyramid 1, 0.5, 0.25, ... chosen from each frame's size)",
    )
    parser.add_argument(
        "--invert",
        metavar="|".join(INVERT_MODES),
        default="auto",
        help="dark-ink inversion (default: auto)",
    )
    parser.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="remove uneven lighting before inference (default: the runtime's, on)",
    )
    add_recheck(parser)
    parser.add_argument(
        "--grouping",
        metavar="|".join(GROUPING_METHODS),
        default="peaks",
        help="cells -> boxes: local peaks + NMS, or connected components (default: peaks)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON"
    )
    parser.add_argument(
        "--progress-every",
        default="10",
        metavar="S",
        help="a progress bar on stderr when it is a terminal, otherwise (a log, CI) a line "
        "every S seconds with done/total, rate and ETA (default: 10; 0: no lines)",
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate the model on every scene, print the table, optionally write the JSON figures."""
    from convdet.measure.evaluate import evaluate_scene_set, format_report
    from convdet.progress import Progress

    _check_options(args)
    scenes = _load(args.scenes, args.split)

    from convdet.measure.evaluate import detector_functions
    from convdet.runtime.detector import Detector
    from convdet.runtime.grouping import Grouping

    options = {} if args.normalize is None else {"normalize": args.normalize}
    detector = Detector(
        args.model,
        conf=args.conf,
        scales=args.scales,
        invert=args.invert,
        grouping=Grouping(method=args.grouping),
        recheck=args.recheck,
        **options,
    )

    detect, readouts = detector_functions(detector)
    coco = scenes.manifest.get("format") == "coco"
    progress = Progress("evaluate", len(scenes.truths), "scenes", args.progress_every)
    try:
        tallies = evaluate_scene_set(
            scenes, detect, readouts, lambda done, _total: progress.update(done)
        )
    finally:
        progress.close()
    settings = {
        "conf": detector.conf,
        "scales": "auto" if detector.pyramid else list(detector.scales),
        "invert": args.invert,
        "normalize": detector.preprocessor.normalize,
        "grouping": args.grouping,
    }
    print(f"model {detector.model_path}  " + "  ".join(f"{k} {v}" for k, v in settings.items()))
    if coco:
        print(f"{args.scenes}: split {scenes.manifest['split']}, {len(scenes.truths)} images")
    print(format_report(tallies, detector.labels))
    if args.json is not None:
        figures = {
            "scenes": str(args.scenes),
            "scene_manifest": scenes.manifest,
            "model": str(detector.model_path),
            "settings": settings,
            "styles": {style: tally.summary() for style, tally in tallies.items()},
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Convert and check option values in place; one-line CommandError on the first bad one."""
    args.split = given(args.split, choice("--split", COCO_SPLITS))
    args.conf = number("--conf", float, 0.0, 1.0)(args.conf)
    args.scales = parse_scales(args.scales)
    args.invert = choice("--invert", INVERT_MODES)(args.invert)
    args.grouping = choice("--grouping", GROUPING_METHODS)(args.grouping)
    args.recheck = recheck(args.recheck)
    args.progress_every = number("--progress-every", float, 0.0)(args.progress_every)


def _load(path: Path, split: str | None) -> SceneSet:
    """The scene set at `path`, or one `split` of the COCO folder there; CommandError if neither."""
    from convdet.data.coco import is_coco_folder, load_coco_set
    from convdet.data.scenes import TRUTH_FILE, load_scene_set

    if not path.is_dir():
        raise CommandError(f"{path}: no such folder (make one with convdet scenes)")
    if not is_coco_folder(path):
        if split is not None:
            raise CommandError("--split applies to COCO folders (with annotations.json)")
        if not (path / TRUTH_FILE).is_file():
            raise CommandError(
                f"{path}: neither a scene set ({TRUTH_FILE}; make one with convdet scenes) "
                "nor a COCO folder (annotations.json)"
            )
        return load_scene_set(path)
    scenes = load_coco_set(path, split or DEFAULT_SPLIT)
    if not scenes.truths:
        everything = len(load_coco_set(path, "all").truths)
        raise CommandError(
            f"{path}: no images in split {split or DEFAULT_SPLIT} ({everything} in all; "
            "--split all scores every image)"
        )
    return scenes
