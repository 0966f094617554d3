"""convdet runtime: run an exported detector with numpy, OpenCV and ONNX Runtime or LiteRT.

Never imports TensorFlow, Keras or tf2onnx. LiteRT is imported only for `.tflite` models,
ONNX Runtime only for `.onnx` models.

    from runtime import Detector, GridAnnotator
    detector = Detector()                      # the shipped default model
    result = detector(frame)                   # any frame OpenCV gives
    texts = [line.text for line in result.lines]   # the digit strings, in reading order
    image = GridAnnotator().annotate(frame.copy(), result)
"""

from runtime.annotate import (
    BoxAnnotator,
    GridAnnotator,
    HeatmapAnnotator,
    LegendAnnotator,
    LinesAnnotator,
    StatsAnnotator,
)
from runtime.backends import Backend, open_backend
from runtime.detections import Detections
from runtime.detector import Detector, Result
from runtime.grid import GridGeometry
from runtime.grouping import Grouping
from runtime.modelinfo import ModelContractError, ModelInfo
from runtime.models import default_model_path, sample_path
from runtime.reading import Line, read_lines

__all__ = [
    "Backend",
    "BoxAnnotator",
    "Detections",
    "Detector",
    "GridAnnotator",
    "GridGeometry",
    "Grouping",
    "HeatmapAnnotator",
    "LegendAnnotator",
    "Line",
    "LinesAnnotator",
    "ModelContractError",
    "ModelInfo",
    "Result",
    "StatsAnnotator",
    "default_model_path",
    "open_backend",
    "read_lines",
    "sample_path",
]
