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
    if _installed("onnxruntime"):
        return models_dir() / f"{DEFAULT_ARCH}.onnx"
    return models_dir() / f"{DEFAULT_ARCH}_int8.tflite"


def _installed(module: str) -> bool:
    """Whether `module` can be found without importing it; a finder that refuses it (an import
    hook blocking the package, a broken install) counts as not installed."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False
