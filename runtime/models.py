"""Where the shipped detectors live and which one the runtime uses when none is given."""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from pathlib import Path

# The architecture shipped as the default detector (chosen by the quality/performance figures).
DEFAULT_ARCH = "deep"


def models_dir() -> Path:
    """The directory of the installed `convdet_models` package (the repo's models/)."""
    return Path(str(files("convdet_models")))


def default_model_path() -> Path:
    """The default detector: `<DEFAULT_ARCH>.onnx` if onnxruntime is installed, else the int8
    TFLite model of the same architecture (for boards with LiteRT only)."""
    if importlib.util.find_spec("onnxruntime") is not None:
        return models_dir() / f"{DEFAULT_ARCH}.onnx"
    return models_dir() / f"{DEFAULT_ARCH}_int8.tflite"
