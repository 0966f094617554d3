"""`convdet info [MODEL]`: what a detector file says about itself (metadata, shapes, size), or
with no MODEL the shipped detectors, one line each."""

from __future__ import annotations

import argparse

from convdet.cli import install_hint

HELP = (
    "print the metadata, input/output shapes and file size of an .onnx or .tflite detector; "
    "without MODEL, list the shipped detectors"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet info`."""
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help=".onnx or .tflite detector, or a shipped one's name, with or without its "
        "extension (deep, deep_int8, separable.onnx); omit it to list the shipped detectors",
    )


def run(args: argparse.Namespace) -> int:
    """Open the model (checking the contract) and print its description; bad models raise
    ModelContractError, which the CLI prints as one line with exit status 2."""
    from convdet.runtime.backends import open_backend

    if args.model is None:
        return _list_shipped()
    backend = open_backend(args.model)  # a path or a shipped name (`resolve_model`)
    path = backend.path
    size = path.stat().st_size
    print(f"file: {path} ({size:,} bytes, {size / 1024:.1f} KiB)")
    print(f"format: {path.suffix.lstrip('.').lower()}")
    print(f"input: {backend.input_spec.describe()}")
    print(f"output: {backend.output_spec.describe()}")
    print("metadata:")
    for key in sorted(backend.metadata):
        print(f"  {key}: {backend.metadata[key]}")
    return 0


def _list_shipped() -> int:
    """One line per shipped detector (name, size, metadata), saying which runs by default; a
    file this install cannot open says what to install instead of its metadata."""
    from convdet.measure.tables import text_table
    from convdet.runtime.backends import open_backend
    from convdet.runtime.shipped import default_model_path, models_dir, shipped_models

    print(f"shipped detectors in {models_dir()} (default: {default_model_path().name}):")
    rows = [("name", "bytes", "arch", "precision", "pooling", "stride", "classes")]
    for path in shipped_models():
        size = f"{path.stat().st_size:,}"
        try:
            info = open_backend(path).info
        except ModuleNotFoundError as error:
            rows.append((path.name, size, f"({install_hint(error.name)})"))
            continue
        classes = str(len(info.classes))
        rows.append(
            (path.name, size, info.arch, info.precision, info.pooling, str(info.stride), classes)
        )
    for line in text_table(rows, right={1}):
        print(f"  {line}")
    print(
        "convdet info NAME prints one's metadata and shapes; --model NAME runs it (NAME may "
        "leave out the extension: deep means deep.onnx, or deep_int8.tflite without onnxruntime)"
    )
    return 0
