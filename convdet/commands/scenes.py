"""`convdet scenes`: generate a seeded multi-digit scene set with ground truth for `evaluate`."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from convdet.cli import CommandError
from convdet.options import MAX_SEED, choice, names, number, size
from convdet.runtime.defaults import CAMERA_STYLES, CLASSIC_STYLES, MNIST_SPLITS, STYLES

HELP = "generate multi-digit test scenes with ground truth (images + truth.jsonl)"
# --style names these groups of styles, besides the styles themselves.
STYLE_GROUPS = {"all": STYLES, "classic": CLASSIC_STYLES, "camera": CAMERA_STYLES}


def parse_styles(text: str) -> tuple[str, ...]:
    """'classic,large' -> the styles named, groups expanded, in STYLES order; CommandError
    naming the choices otherwise."""
    wanted = set(names("--style", STYLES, STYLE_GROUPS)(text))
    return tuple(style for style in STYLES if style in wanted)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet scenes`; values are checked in `run` so errors stay one line."""
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
        "--count", default="100", metavar="N", help="scenes per style (default: 100)"
    )
    parser.add_argument("--seed", default="0", metavar="N", help="random seed (default: 0)")
    parser.add_argument(
        "--size",
        default="640x480",
        metavar="WxH",
        help="canvas width and height in pixels (default: 640x480)",
    )
    parser.add_argument(
        "--split",
        metavar="|".join(MNIST_SPLITS),
        default="test",
        help="which digits to place; the models never trained on 'test' (default: test)",
    )
    parser.add_argument(
        "--max-digits",
        default="24",
        metavar="N",
        help="at most this many digits a scene (default: 24)",
    )


def _check_options(args: argparse.Namespace) -> None:
    """Convert and check option values in place; one-line CommandError on the first bad one."""
    args.style = parse_styles(args.style)
    args.count = number("--count", int, 0)(args.count)
    args.seed = number("--seed", int, 0, MAX_SEED)(args.seed)
    args.size = size("--size")(args.size)
    args.split = choice("--split", MNIST_SPLITS)(args.split)
    args.max_digits = number("--max-digits", int, 1)(args.max_digits)


def run(args: argparse.Namespace) -> int:
    """Generate the scene set and print where it went."""
    _check_options(args)
    from convdet.data.digits import load_mnist_npz
    from convdet.data.scenes import SceneParams, generate_scenes, write_scene_set

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise CommandError(f"{args.out} exists and is not an empty folder; choose a new --out")
    x_train, y_train, x_test, y_test = load_mnist_npz(args.data)
    images, labels = (x_test, y_test) if args.split == "test" else (x_train, y_train)
    if not len(images):
        raise CommandError(f"--data {args.data}: no {args.split} digits to place")
    styles = args.style
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
