"""Score-grid geometry and per-cell decoding.

The runtime pads the (scaled) input at the bottom/right to a multiple of `stride`, so the
padding never shifts coordinates: grid cell (i, j) looks at a `window` x `window` patch of the
model input centred at (`stride*j + cell_offset`, `stride*i + cell_offset`) in continuous pixel
coordinates (pixel p spans [p, p+1)). `cell_offset` is derived by the exporter from the layer
arithmetic ('same' padding, stride-2 convolutions) and read from the model's metadata.
A grid computed on a frame resized by `scale` maps back to frame pixels by dividing by `scale`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from convdet.runtime.modelinfo import ModelInfo

IntLike = TypeVar("IntLike", int, np.ndarray)


@dataclass(frozen=True)
class GridGeometry:
    """Where the cells of one score grid sit in frame pixels (model geometry + input scale)."""

    stride: int
    cell_offset: float
    window: int
    scale: float = 1.0

    @classmethod
    def from_info(cls, info: ModelInfo, scale: float = 1.0) -> GridGeometry:
        """The geometry of `info`'s model run on a frame resized by `scale`."""
        return cls(info.stride, info.cell_offset, info.window, scale)

    def cell_boxes(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Boxes (N, 4) xyxy in frame pixels of the windows seen by cells (rows[k], cols[k])."""
        half = self.window / (2 * self.scale)
        cx = (self.stride * np.asarray(cols, dtype=np.float32) + self.cell_offset) / self.scale
        cy = (self.stride * np.asarray(rows, dtype=np.float32) + self.cell_offset) / self.scale
        return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)

    def pixel_cells(self, length: int, cells: int) -> np.ndarray:
        """For each frame pixel 0..length-1 along one axis, the index of the cell whose
        `stride`-wide tile (centred on the cell centre) contains it; -1 outside the grid."""
        model_coord = (np.arange(length, dtype=np.float64) + 0.5) * self.scale
        index = np.floor((model_coord - self.cell_offset) / self.stride + 0.5).astype(np.int64)
        index[(index < 0) | (index >= cells)] = -1
        return index


def round_up(value: IntLike, stride: int) -> IntLike:
    """`value` (an int or an integer array) rounded up to a multiple of `stride`: the size of
    an input padded for the grid, or the end of a crop on the grid's pixel blocks."""
    return -(-value // stride) * stride


def decode_cells(scores: np.ndarray, background: int, conf: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell class (background where the argmax is background or its probability < `conf`)
    and confidence (the argmax probability), from a (gh, gw, C) softmax grid."""
    if scores.ndim != 3:
        raise ValueError(f"scores: expected a (rows, cols, classes) grid, got shape {scores.shape}")
    cell_class = scores.argmax(axis=-1)
    confidence = np.take_along_axis(scores, cell_class[..., None], axis=-1)[..., 0]
    cell_class[confidence < conf] = background
    return cell_class, confidence


def digit_score(scores: np.ndarray, background: int) -> np.ndarray:
    """Per-cell probability that the cell sees a digit at all: 1 - P(background)."""
    return 1.0 - scores[..., background]


def windows_for_cells(
    image: np.ndarray, info: ModelInfo, rows: int, cols: int, fill: float = 0.0
) -> np.ndarray:
    """The (rows * cols, window, window, 1) windows the grid's cells stand for, cut from a
    padded model input: cell i's window starts at `cell_centre(i) - window / 2`, `fill` (the
    model's background value) outside the image. Views, not copies, of one padded array."""
    window, stride = info.window, info.stride
    origin = round(info.cell_centre(0) - window / 2)
    before = max(-origin, 0)
    height, width = image.shape
    below = max(origin + stride * (rows - 1) + window - height, 0)
    right = max(origin + stride * (cols - 1) + window - width, 0)
    padded = np.pad(image, ((before, below), (before, right)), constant_values=fill)
    first = origin + before
    views = np.lib.stride_tricks.sliding_window_view(padded, (window, window))
    cells = views[first::stride, first::stride][:rows, :cols]
    return cells.reshape(rows * cols, window, window, 1)
