"""`convdet export`: a trained run -> ONNX and TFLite (fp32, fp16, int8) files, parity-checked."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a trained detector to ONNX and TFLite with metadata [needs convdet[train]]"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet export`."""
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
        type=int,
        default=48,
        metavar="N",
        help="320x240 scenes of training digits that set the int8 ranges (default: 48, as the "
        "shipped files were made; more take longer)",
    )


def run(args: argparse.Namespace) -> int:
    """Export, print the parity table and per-file accuracy; exit 1 if a check failed."""
    from convdet.cli import CommandError

    for required in ("run.json", "detector.keras"):
        if not (args.run / required).is_file():
            raise CommandError(f"{args.run}: not a training run (no {required})")
    if args.data is not None and not args.data.is_file():
        raise CommandError(f"--data {args.data}: no such file")
    if args.calibration_scenes < 3:
        count = args.calibration_scenes
        raise CommandError(f"--calibration-scenes must be at least 3, got {count}")

    import json

    from convdet.export.data import load_mnist
    from convdet.export.package import export_run
    from convdet.export.parity import INT8_AGREEMENT, pooled_agreements

    name = args.name or json.loads((args.run / "run.json").read_text())["arch"]
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
