"""`convdet evaluate`: precision, recall, F1, confusion and localization error on a scene set."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from convdet.cli import CommandError
from convdet.commands.detect import parse_scales
from runtime.defaults import DEFAULT_CONF

HELP = "measure detection quality on a scene set made by `convdet scenes`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet evaluate`."""
    parser.add_argument("scenes", type=Path, metavar="SCENES", help="scene set folder")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: shipped)")
    parser.add_argument(
        "--conf", type=float, default=DEFAULT_CONF, help=f"confidence threshold ({DEFAULT_CONF})"
    )
    parser.add_argument(
        "--scales",
        default="1",
        metavar="LIST",
        help="comma-separated resize factors, as for detect, e.g. 0.5,1,2 (default: 1)",
    )
    parser.add_argument(
        "--invert",
        choices=("auto", "on", "off"),
        default="auto",
        help="dark-ink inversion (default: auto)",
    )
    parser.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="remove uneven lighting before inference (default: the runtime's, on)",
    )
    parser.add_argument(
        "--grouping",
        choices=("peaks", "components"),
        default="peaks",
        help="cells -> boxes: local peaks + NMS, or connected components (default: peaks)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write figures")


def run(args: argparse.Namespace) -> int:
    """Evaluate the model on every scene, print the table, optionally write the JSON figures."""
    from runtime.evaluate import evaluate_scene_set, format_report
    from runtime.scenes import load_scene_set

    if not args.scenes.is_dir():
        raise CommandError(f"{args.scenes}: no such folder (make one with convdet scenes)")
    scenes = load_scene_set(args.scenes)

    from runtime.detector import Detector
    from runtime.evaluate import detector_functions
    from runtime.grouping import Grouping

    options = {} if args.normalize is None else {"normalize": args.normalize}
    detector = Detector(
        args.model,
        conf=args.conf,
        scales=parse_scales(args.scales),
        invert=args.invert,
        grouping=Grouping(method=args.grouping),
        **options,
    )

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{done}/{total} scenes", end="" if done < total else "\n", file=sys.stderr)

    detect, readouts = detector_functions(detector)
    tallies = evaluate_scene_set(scenes, detect, readouts, progress)
    settings = {
        "conf": detector.conf,
        "scales": list(detector.scales),
        "invert": args.invert,
        "normalize": detector.preprocessor.normalize,
        "grouping": args.grouping,
    }
    print(f"model {detector.model_path}  " + "  ".join(f"{k} {v}" for k, v in settings.items()))
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
