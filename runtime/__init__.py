"""convdet runtime: run an exported detector with numpy, OpenCV and ONNX Runtime or LiteRT.

Never imports TensorFlow, Keras or tf2onnx. LiteRT is imported only for `.tflite` models,
ONNX Runtime only for `.onnx` models.

    from convdet import Detector, GridAnnotator
    detector = Detector()                      # the shipped default model
    result = detector(frame)                   # any frame OpenCV gives
    texts = [line.text for line in result.lines]   # the digit strings, in reading order
    image = GridAnnotator().annotate(frame.copy(), result)
"""

# ruff: noqa: F401 (the TYPE_CHECKING imports are the public names, exported via __all__)

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ loads these
    from convdet.runtime.annotate import (
        BoxAnnotator,
        GridAnnotator,
        HeatmapAnnotator,
        LegendAnnotator,
        LinesAnnotator,
        StatsAnnotator,
    )
    from convdet.runtime.backends import Backend, open_backend
    from convdet.runtime.detections import Detections
    from convdet.runtime.detector import Detector, Result
    from convdet.runtime.grid import GridGeometry
    from convdet.runtime.grouping import Grouping
    from convdet.runtime.modelinfo import ModelContractError, ModelInfo
    from convdet.runtime.reading import Line, read_lines
    from convdet.runtime.shipped import default_model_path, sample_path

# Public name -> the module defining it. Names load on first use (PEP 562), so importing a
# light submodule (errors, defaults) or the `convdet` front door does not pull in OpenCV.
_HOMES = {
    "Backend": "backends",
    "BoxAnnotator": "annotate",
    "Detections": "detections",
    "Detector": "detector",
    "GridAnnotator": "annotate",
    "GridGeometry": "grid",
    "Grouping": "grouping",
    "HeatmapAnnotator": "annotate",
    "LegendAnnotator": "annotate",
    "Line": "reading",
    "LinesAnnotator": "annotate",
    "ModelContractError": "modelinfo",
    "ModelInfo": "modelinfo",
    "Result": "detector",
    "StatsAnnotator": "annotate",
    "default_model_path": "shipped",
    "open_backend": "backends",
    "read_lines": "reading",
    "sample_path": "shipped",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use and kept."""
    if name not in _HOMES:
        raise AttributeError(f"module 'convdet.runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"convdet.runtime.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's own names and the public names not loaded yet."""
    return sorted({*globals(), *__all__})
