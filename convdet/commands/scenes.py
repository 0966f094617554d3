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


def parse_styles(text: str) -> tuple[str, ...]:
    """'classic,large' -> the styles named, groups expanded, in STYLES order; CommandError
    naming the choices otherwise."""
    from convdet.data.camera import CAMERA_STYLES
    from convdet.data.scenes import CLASSIC_STYLES, STYLES

    groups = {"all": STYLES, "classic": CLASSIC_STYLES, "camera": CAMERA_STYLES}
    wanted: set[str] = set()
    for name in filter(None, (part.strip() for part in text.split(","))):
        if name not in groups and name not in STYLES:
            choices = ", ".join([*STYLES, *groups])
            raise CommandError(f"--style {name!r}: choose from {choices}")
        wanted.update(groups.get(name, (name,)))
    if not wanted:
        raise CommandError("--style: name at least one style")
    return tuple(style for style in STYLES if style in wanted)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet scenes`."""
    parser.add_argument(
        "--data", required=True, type=Path, metavar="NPZ", help="Keras-layout MNIST .npz"
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="new (or empty) output folder"
    )
    parser.add_argument(
        "--style",
        default="all",
        metavar="LIST",
        help="comma-separated scene styles or groups, --count scenes of each: mnist, paper, "
        "multiscale (group 'classic': MNIST frames on plain canvases); notebook, strings, large, "
        "clutter, empty (group 'camera': handwriting photographed on real-looking pages, "
        "'empty' with no digit); all, every style (default: all)",
    )
    parser.add_argument(
        "--count", type=int, default=100, metavar="N", help="scenes per style (default: 100)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default: 0)")
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(640, 480),
        metavar="WxH",
        help="canvas width and height in pixels (default: 640x480)",
    )
    parser.add_argument(
        "--split",
        choices=("test", "train"),
        metavar="test|train",
        default="test",
        help="which digits to place; the models never trained on 'test' (default: test)",
    )
    parser.add_argument(
        "--max-digits",
        type=int,
        default=24,
        metavar="N",
        help="at most this many digits a scene (default: 24)",
    )


def run(args: argparse.Namespace) -> int:
    """Generate the scene set and print where it went."""
    from convdet.data.digits import load_mnist_npz
    from convdet.data.scenes import SceneParams, generate_scenes, write_scene_set

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise CommandError(f"{args.out} exists and is not an empty folder; choose a new --out")
    x_train, y_train, x_test, y_test = load_mnist_npz(args.data)
    images, labels = (x_test, y_test) if args.split == "test" else (x_train, y_train)
    styles = parse_styles(args.style)
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
