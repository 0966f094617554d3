"""The model contract's metadata: what a detector file says about itself, parsed and checked.

Every fact the runtime needs (class names, background index, stride, window, cell geometry,
input polarity and range) comes from here, never from constants in runtime code. ONNX files
carry these keys in `metadata_props`; TFLite files in a sidecar `<model stem>.json`.
All values are strings, as in ONNX; structured values are JSON.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from convdet.runtime.errors import ConvdetError

POLARITIES = ("light-on-dark", "dark-on-light")
REQUIRED_KEYS = ("classes", "background", "stride", "window", "cell_offset", "polarity", "arch")
# Sane ranges of the values the runtime allocates or computes with (the shipped models: 11
# classes, stride 8, window 28): a forged file cannot make it allocate gigabytes, and a NaN
# or infinity never reaches a record.
MAX_CLASSES = 1024
MAX_STRIDE = 64
MAX_WINDOW = 512
MAX_FIXED_SIDE = 16384
MAX_INPUT_MAGNITUDE = 1e6
MAX_RECEPTIVE_FIELD = 4096  # px either side of a cell's stride offset


def sidecar_path(model_path: Path) -> Path:
    """Where a TFLite model's metadata lives: `<stem>.json` beside the `.tflite` file."""
    return model_path.with_suffix(".json")


class ModelContractError(ConvdetError, ValueError):
    """A model file that is not a convdet detector (bad shapes, missing or bad metadata)."""


@dataclass(frozen=True)
class ModelInfo:
    """Facts a user of a detector needs, travelling inside the model file.

    `cell_offset` is the centre, in input pixels (continuous coordinates, pixel p spans
    [p, p+1)), of the window seen by grid cell 0 when the input is padded to a multiple of
    `stride`; cell i is centred at `stride * i + cell_offset` along each axis.
    """

    classes: tuple[str, ...]
    background: int
    stride: int
    window: int
    cell_offset: float
    polarity: str = "light-on-dark"
    input_range: tuple[float, float] = (0.0, 1.0)
    arch: str = ""
    pooling: str = ""
    precision: str = "fp32"
    test_accuracy: dict[str, float] = field(default_factory=dict)
    trained_on: str = ""
    producer: dict[str, str] = field(default_factory=dict)
    fixed_input: tuple[int, int] | None = None
    classifier_cell: int | None = None  # on an unpadded window x window input, this cell
    # (row = column) computes the 28x28 classifier
    receptive_field: tuple[int, int] | None = None  # (start, end): cell i's scores depend on
    # input pixels stride * i + start .. stride * i + end along each axis (convdet.runtime.field)
    classifier_padded: bool = False  # the classifier cell reads the window at the top-left of
    # an input padded to a multiple of the stride, as it was trained (Preprocessor.windows)

    def __post_init__(self) -> None:
        if not 2 <= len(self.classes) <= MAX_CLASSES:
            raise ModelContractError(
                f"classes: expected 2 to {MAX_CLASSES} names, got {len(self.classes)}"
            )
        if not all(isinstance(name, str) and 0 < len(name) <= 100 for name in self.classes):
            raise ModelContractError("classes: expected names of 1 to 100 characters")
        _check_int("background", self.background, 0, len(self.classes) - 1)
        _check_int("stride", self.stride, 1, MAX_STRIDE)
        _check_int("window", self.window, 1, MAX_WINDOW)
        _check_float("cell_offset", self.cell_offset, -self.window, self.window)
        if len(self.input_range) != 2:
            raise ModelContractError(f"input_range: expected [low, high], got {self.input_range}")
        low, high = self.input_range
        _check_float("input_range", low, -MAX_INPUT_MAGNITUDE, MAX_INPUT_MAGNITUDE)
        _check_float("input_range", high, low, MAX_INPUT_MAGNITUDE)
        if high == low:
            raise ModelContractError(f"input_range: expected low < high, got {self.input_range}")
        if self.fixed_input is not None:
            if len(self.fixed_input) != 2:
                raise ModelContractError(
                    f"fixed_input: expected [height, width] or null, got {self.fixed_input}"
                )
            for side in self.fixed_input:
                _check_int("fixed_input", side, 1, MAX_FIXED_SIDE)
        if self.receptive_field is not None:
            if len(self.receptive_field) != 2:
                raise ModelContractError(
                    f"receptive_field: expected [start, end] or null, got {self.receptive_field}"
                )
            start, end = self.receptive_field
            _check_int("receptive_field", start, -MAX_RECEPTIVE_FIELD, MAX_RECEPTIVE_FIELD)
            _check_int("receptive_field", end, start, MAX_RECEPTIVE_FIELD)
        if self.classifier_cell is not None:
            _check_int("classifier_cell", self.classifier_cell, 0, MAX_FIXED_SIDE)
        if not isinstance(self.classifier_padded, bool):
            raise ModelContractError(
                f"classifier_padded: expected true or false, got {self.classifier_padded!r}"
            )
        if not isinstance(self.test_accuracy, dict):
            raise ModelContractError("test_accuracy: expected a JSON object")
        for key, value in self.test_accuracy.items():
            _check_float(f"test_accuracy {key}", value, -MAX_INPUT_MAGNITUDE, MAX_INPUT_MAGNITUDE)
        if self.polarity not in POLARITIES:
            raise ModelContractError(
                f"polarity: expected one of {', '.join(POLARITIES)}, got {self.polarity!r}"
            )

    @property
    def num_classes(self) -> int:
        """Number of output channels, background included."""
        return len(self.classes)

    def to_metadata(self) -> dict[str, str]:
        """The string map stored in the model file (ONNX metadata_props or TFLite sidecar)."""
        values = asdict(self)
        if not self.classifier_padded:  # absent means false: older exports keep their bytes
            del values["classifier_padded"]
        return {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in values.items()
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str = "model") -> ModelInfo:
        """Parse and validate a metadata map; raise ModelContractError naming what is wrong."""
        missing = [key for key in REQUIRED_KEYS if key not in metadata]
        if missing:
            raise ModelContractError(
                f"{source}: not a convdet detector, metadata lacks {', '.join(missing)}"
            )
        try:
            fields: dict[str, Any] = {
                "classes": tuple(json.loads(metadata["classes"])),
                "background": int(metadata["background"]),
                "stride": int(metadata["stride"]),
                "window": int(metadata["window"]),
                "cell_offset": float(metadata["cell_offset"]),
                "polarity": metadata["polarity"],
                "arch": metadata["arch"],
            }
            optional = {
                "input_range": lambda v: tuple(json.loads(v)),
                "pooling": str,
                "precision": str,
                "test_accuracy": json.loads,
                "trained_on": str,
                "producer": json.loads,
                "fixed_input": _optional_tuple,
                "classifier_cell": json.loads,
                "receptive_field": _optional_tuple,
                "classifier_padded": json.loads,
            }
            for key, parse in optional.items():
                if key in metadata:
                    fields[key] = parse(metadata[key])
        except (ValueError, TypeError, OverflowError) as error:
            raise ModelContractError(f"{source}: unreadable metadata ({error})") from error
        try:
            return cls(**fields)
        except ModelContractError as error:
            raise ModelContractError(f"{source}: bad metadata, {error}") from None

    def cell_centre(self, index: float) -> float:
        """Input-pixel coordinate of the centre of grid cell `index` along one axis."""
        return self.stride * index + self.cell_offset


def _optional_tuple(value: str) -> tuple | None:
    """A JSON array as a tuple, JSON null as None."""
    parsed = json.loads(value)
    return None if parsed is None else tuple(parsed)


def _check_int(key: str, value: object, low: int, high: int) -> None:
    """ModelContractError unless `value` is an integer (not a bool) in low..high."""
    integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integer or not low <= value <= high:
        raise ModelContractError(f"{key}: expected an integer in {low}..{high}, got {value!r}")


def _check_float(key: str, value: object, low: float, high: float) -> None:
    """ModelContractError unless `value` is a finite number in low..high (NaN never is)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not math.isfinite(value) or not low <= value <= high:
        raise ModelContractError(f"{key}: expected a number in {low:g}..{high:g}, got {value!r}")
