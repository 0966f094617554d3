"""`convdet export`: a trained run -> ONNX and TFLite (fp32, fp16, int8) files, parity-checked."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from convdet.cli import CommandError
from convdet.options import number

HELP = "export a trained detector to ONNX and TFLite with metadata [needs convdet[train]]"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet export`; values are checked in `run` so errors stay one line."""
    parser.add_argument(
        "run", type=Path, metavar="RUN", help="folder written by `convdet train --out`"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("models"),
        metavar="DIR",
        help="folder for the .onnx and .tflite files (default: models)",
    )
    parser.add_argument(
        "--name", metavar="STEM", help="file stem (default: the run's architecture)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="NPZ",
        help="MNIST .npz for calibration and checks (default: keras.datasets download)",
    )
    parser.add_argument(
        "--calibration-scenes",
        default="48",
        metavar="N",
        help="320x240 scenes of training digits that set the int8 ranges (default: 48, as the "
        "shipped files were made; more take longer)",
    )


def run(args: argparse.Namespace) -> int:
    """Export, print the parity table and per-file accuracy; exit 1 if a check failed."""
    args.calibration_scenes = number("--calibration-scenes", int, 3)(args.calibration_scenes)
    for required in ("run.json", "detector.keras"):
        if not (args.run / required).is_file():
            raise CommandError(f"{args.run}: not a training run (no {required})")
    if args.data is not None and not args.data.is_file():
        raise CommandError(f"--data {args.data}: no such file")

    from convdet.export.data import load_mnist
    from convdet.export.package import export_run
    from convdet.export.parity import INT8_AGREEMENT, pooled_agreements

    name = args.name or _arch(args.run)
    report = export_run(args.run, args.out, name, load_mnist(args.data), args.calibration_scenes)
    for row in report.parity:
        print(row.describe())
    for backend, pooled in pooled_agreements(report.parity).items():
        print(
            f"{backend}: digit-cell agreement over all sizes {pooled:.2%} "
            f"(at least {INT8_AGREEMENT:.0%}; each size's ok/FAILED above is this verdict)"
        )
    for check in report.detections:
        print(check.describe())
    for file, accuracy in report.digit_accuracy.items():
        print(f"{file}: digit accuracy {accuracy:.2%}")
    agreement = report.window_agreement
    print(
        f"sliding-window agreement on a 480x640 scene: {agreement.all_cells:.2%} of "
        f"{agreement.cells} cells, {agreement.digit_cells:.2%} of cells with a digit"
    )
    print("all checks passed" if report.passed else "SOME CHECKS FAILED")
    return 0 if report.passed else 1


def _arch(run: Path) -> str:
    """The architecture a training run names in its run.json; CommandError if it names none."""
    try:
        arch = json.loads((run / "run.json").read_text(encoding="utf-8")).get("arch")
    except (ValueError, AttributeError) as error:  # not UTF-8, not JSON, not an object
        raise CommandError(f"{run}: not a training run (run.json: {error})") from None
    if not isinstance(arch, str):
        raise CommandError(f"{run}: not a training run (run.json names no arch)")
    return arch
