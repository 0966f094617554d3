"""`convdet scenes`: generate a seeded multi-digit scene set with ground truth for `evaluate`."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from convdet.cli import CommandError

HELP = "generate multi-digit test scenes with ground truth (images + truth.jsonl)"


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480); argparse type for --size."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT like 640x480, got {text!r}"
        ) from error
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet scenes`."""
    parser.add_argument("--data", required=True, type=Path, help="Keras-layout MNIST .npz")
    parser.add_argument("--out", required=True, type=Path, help="new (or empty) output folder")
    parser.add_argument(
        "--style",
        choices=("mnist", "paper", "multiscale", "all"),
        default="all",
        help="scene style; 'all' makes --count scenes of each (default: all)",
    )
    parser.add_argument("--count", type=int, default=100, help="scenes per style (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--size", type=parse_size, default=(640, 480), help="canvas WxH (default: 640x480)"
    )
    parser.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="which digits to place; the models never trained on 'test' (default: test)",
    )
    parser.add_argument(
        "--max-digits", type=int, default=24, help="at most this many digits a scene (default: 24)"
    )


def run(args: argparse.Namespace) -> int:
    """Generate the scene set and print where it went."""
    from runtime.digits import load_mnist_npz
    from runtime.scenes import STYLES, SceneParams, generate_scenes, write_scene_set

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise CommandError(f"{args.out} exists and is not an empty folder; choose a new --out")
    x_train, y_train, x_test, y_test = load_mnist_npz(args.data)
    images, labels = (x_test, y_test) if args.split == "test" else (x_train, y_train)
    styles = STYLES if args.style == "all" else (args.style,)
    params = [
        SceneParams(style, args.count, args.seed, args.size, args.max_digits) for style in styles
    ]
    manifest = {
        "generator": "convdet scenes",
        "data": str(args.data),
        "data_sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
        "split": args.split,
        "styles": list(styles),
        "count": args.count,
        "seed": args.seed,
        "size": list(args.size),
        "max_digits": args.max_digits,
        "gap": params[0].gap,
    }
    scenes = (scene for p in params for scene in generate_scenes(images, labels, p))
    written = write_scene_set(args.out, scenes, manifest)
    print(f"wrote {written} scenes ({', '.join(styles)}) to {args.out}")
    return 0
