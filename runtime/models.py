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


def default_model_path(backend: str = "auto") -> Path:
    """The default detector for `backend`: `<DEFAULT_ARCH>.onnx` for "onnx", the int8 TFLite
    model of the same architecture for "tflite" (boards with LiteRT only); "auto" picks ONNX if
    onnxruntime is installed."""
    if backend == "onnx" or (backend == "auto" and _installed("onnxruntime")):
        return models_dir() / f"{DEFAULT_ARCH}.onnx"
    return models_dir() / f"{DEFAULT_ARCH}_int8.tflite"


def resolve_model(name: str) -> Path:
    """`name` as a path, or the shipped model of that file name when no such path exists."""
    path = Path(name)
    if not path.exists() and path.name == name and (models_dir() / name).is_file():
        return models_dir() / name
    return path


def _installed(module: str) -> bool:
    """Whether `module` can be found without importing it; a finder that refuses it (an import
    hook blocking the package, a broken install) counts as not installed."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False
