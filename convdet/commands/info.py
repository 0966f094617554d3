"""`convdet info MODEL`: what a detector file says about itself (metadata, shapes, size)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "print the metadata, input/output shapes and file size of an .onnx or .tflite detector"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet info`."""
    parser.add_argument("model", type=Path, metavar="MODEL", help=".onnx or .tflite detector")


def run(args: argparse.Namespace) -> int:
    """Open the model (checking the contract) and print its description; bad models raise
    ModelContractError, which the CLI prints as one line with exit status 2."""
    from runtime.backends import open_backend

    backend = open_backend(args.model)
    size = args.model.stat().st_size
    print(f"file: {args.model} ({size:,} bytes, {size / 1024:.1f} KiB)")
    print(f"format: {args.model.suffix.lstrip('.').lower()}")
    print(f"input: {backend.input_spec.describe()}")
    print(f"output: {backend.output_spec.describe()}")
    print("metadata:")
    for key in sorted(backend.metadata):
        print(f"  {key}: {backend.metadata[key]}")
    return 0
