"""The model contract's metadata: what a detector file says about itself, parsed and checked.

Every fact the runtime needs (class names, background index, stride, window, cell geometry,
input polarity and range) comes from here, never from constants in runtime code. ONNX files
carry these keys in `metadata_props`; TFLite files in a sidecar `<model stem>.json`.
All values are strings, as in ONNX; structured values are JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

POLARITIES = ("light-on-dark", "dark-on-light")
REQUIRED_KEYS = ("classes", "background", "stride", "window", "cell_offset", "polarity", "arch")


def sidecar_path(model_path: Path) -> Path:
    """Where a TFLite model's metadata lives: `<stem>.json` beside the `.tflite` file."""
    return model_path.with_suffix(".json")


class ModelContractError(ValueError):
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

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise ModelContractError(f"classes: expected at least 2 names, got {len(self.classes)}")
        if not 0 <= self.background < len(self.classes):
            raise ModelContractError(
                f"background: expected an index in 0..{len(self.classes) - 1}, "
                f"got {self.background}"
            )
        if self.stride < 1 or self.window < 1:
            raise ModelContractError(
                f"stride and window must be positive, got {self.stride} and {self.window}"
            )
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
                "fixed_input": lambda v: None if json.loads(v) is None else tuple(json.loads(v)),
                "classifier_cell": json.loads,
            }
            for key, parse in optional.items():
                if key in metadata:
                    fields[key] = parse(metadata[key])
        except (ValueError, TypeError) as error:
            raise ModelContractError(f"{source}: unreadable metadata ({error})") from error
        return cls(**fields)

    def cell_centre(self, index: float) -> float:
        """Input-pixel coordinate of the centre of grid cell `index` along one axis."""
        return self.stride * index + self.cell_offset
