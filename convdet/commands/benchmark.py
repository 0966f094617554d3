"""`convdet benchmark`: latency, full-pipeline FPS, memory and footprint of the shipped models,
side by side with the Keras baseline and with sliding windows, in one run."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

from convdet.cli import MAX_THREADS, CommandError, install_hint
from convdet.options import given, number, parse_size

HELP = "measure speed, memory and footprint against the Keras baseline and sliding windows"

# Where `keras.datasets.mnist.load_data()` keeps the MNIST it downloads ($KERAS_HOME, else
# ~/.keras): the full 60k/10k in the Keras layout --data takes.
DEFAULT_DATA = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets/mnist.npz"
QUICK = {
    "repeat": 3,
    "warmup": 1,
    "frames": 6,
    "matmul_side": 1024,
    "sparse_styles": ("notebook", "blank", "full"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet benchmark`; values are checked in `run` so errors stay one line."""
    parser.add_argument(
        "--models",
        default="wide,deep,separable,basic",
        metavar="LIST",
        help="comma-separated architectures (all their shipped files this install can run) "
        "or model files, paths or shipped names like deep_int8 "
        "(default: wide,deep,separable,basic)",
    )
    parser.add_argument(
        "--sizes",
        default="320x240,640x480,1280x720",
        metavar="LIST",
        help="comma-separated frame sizes WxH (default: 320x240,640x480,1280x720)",
    )
    parser.add_argument("--repeat", default="30", metavar="N", help="timed runs (default: 30)")
    parser.add_argument(
        "--warmup", default="5", metavar="N", help="untimed runs first (default: 5)"
    )
    parser.add_argument(
        "--threads",
        metavar="N",
        help=f"inference threads, 1 to {MAX_THREADS} (default: the runtime's)",
    )
    parser.add_argument(
        "--frames", default="60", metavar="N", help="frames of each test video (default: 60)"
    )
    parser.add_argument(
        "--video",
        type=Path,
        metavar="FILE",
        help="take frames from this video (resized to each size) instead of digit scenes",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="NPZ",
        help="MNIST .npz (Keras layout) for the digit scenes (default: where "
        f"keras.datasets.mnist.load_data() keeps it, {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--no-keras",
        dest="keras",
        action="store_false",
        help="skip the Keras baseline (Keras predict, np.vectorize colours) even when "
        "TensorFlow is installed",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the first size only, 3 repeats, 6 frames, 3 frame styles: a smoke test, not figures",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    """'320x240,640x480' -> ((320, 240), (640, 480)), each side at least 28 px."""
    try:
        sizes = tuple(parse_size(part) for part in text.split(",") if part.strip())
    except argparse.ArgumentTypeError as error:
        raise CommandError(f"--sizes: {error}") from None
    if not sizes or any(min(size) < 28 for size in sizes):
        raise CommandError(f"--sizes: expected sizes of at least 28x28 like 640x480, got {text!r}")
    return sizes


def _models(text: str) -> tuple[Path, ...]:
    """Model files named by --models: an architecture stands for its shipped files that this
    install can run (.onnx with onnxruntime, .tflite with LiteRT); a file or a shipped model's
    name (`resolve_model`) is taken as it is, CommandError saying what to install when its
    engine is missing."""
    from convdet.measure.benchmark import VARIANTS
    from convdet.runtime.modelinfo import ModelContractError
    from convdet.runtime.shipped import installed, models_dir, resolve_model

    engines = {
        ".onnx": installed("onnxruntime"),
        ".tflite": installed("ai_edge_litert") or installed("tflite_runtime"),
    }
    files: list[Path] = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        shipped = [models_dir() / f"{item}{variant}" for variant in VARIANTS]
        shipped = [path for path in shipped if path.is_file()]
        if not shipped:
            try:
                path = resolve_model(item)
            except ModelContractError as error:
                raise CommandError(f"--models: {error}") from None
            if path.suffix in engines and not engines[path.suffix]:
                module = "onnxruntime" if path.suffix == ".onnx" else "ai_edge_litert"
                hint = install_hint(module)
                raise CommandError(f"--models {item}: {module} is not installed: {hint}")
            files.append(path)
            continue
        runnable = [path for path in shipped if engines[path.suffix]]
        if not runnable:
            raise CommandError(f"--models {item}: no engine installed for its shipped files")
        files += runnable
    if not files:
        raise CommandError("--models: expected architectures or model files, got nothing")
    return tuple(dict.fromkeys(files))


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the report, optionally write the figures as JSON."""
    from convdet.measure.benchmark import Settings, run_benchmark
    from convdet.measure.keras_baseline import keras_predictor
    from convdet.measure.report import format_report

    sizes = _sizes(args.sizes)
    counts = {
        "repeat": given(args.repeat, number("--repeat", int, 1)),
        "warmup": given(args.warmup, number("--warmup", int, 0)),
        "frames": given(args.frames, number("--frames", int, 1)),
    }
    threads = given(args.threads, number("--threads", int, 1, MAX_THREADS))
    if args.video is not None and not args.video.is_file():
        raise CommandError(f"--video: no such file: {args.video}")
    if args.video is None and not args.data.is_file():
        raise CommandError(
            f"--data: no such file: {args.data} (give a Keras-layout MNIST .npz, or --video FILE)"
        )
    if args.json is not None and not args.json.parent.is_dir():
        raise CommandError(f"--json: no such folder: {args.json.parent}")
    models = _models(args.models)
    if args.quick:
        sizes, counts = sizes[:1], {**counts, **QUICK}
    keras = args.keras and importlib.util.find_spec("tensorflow") is not None
    with tempfile.TemporaryDirectory(prefix="convdet-benchmark-") as workdir:
        settings = Settings(
            models=models,
            workdir=Path(workdir),
            sizes=sizes,
            threads=threads,
            video=args.video,
            data=args.data,
            **counts,
        )
        figures = run_benchmark(
            settings,
            keras_predictor if keras else None,
            lambda text: print(f"convdet benchmark: {text}", file=sys.stderr, flush=True),
        )
    if args.keras and not keras:
        figures.notes.append("the Keras baseline needs TensorFlow: pip install 'convdet[train]'")
    print(format_report(figures))
    if args.json is not None:
        args.json.write_text(json.dumps(figures.to_json(), indent=2) + "\n", encoding="utf-8")
    return 0
