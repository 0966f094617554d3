"""How closely the detector's grid matches a real sliding window of the 28x28 classifier.

Cell (i, j) stands for the classifier window centred at `cell_centre(i), cell_centre(j)`
(see ModelInfo.cell_offset). Running the classifier on every such window at stride 8 and
comparing labels with the detector's grid measures what convolutionalization changes: only
the context a cell sees beyond its window (the classifier sees zeros there).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from convdet.runtime.grid import windows_for_cells
from convdet.runtime.modelinfo import ModelInfo


@dataclass(frozen=True)
class Agreement:
    """Label agreement between the detector's grid and the sliding-window classifier."""

    cells: int
    all_cells: float  # fraction of all cells with the same argmax
    digit_cells: float  # same, over the cells where either side sees a digit


def sliding_window_labels(
    classifier: keras.Model, image: np.ndarray, info: ModelInfo, grid: tuple[int, int]
) -> np.ndarray:
    """Classifier argmax (gh, gw) on the window each grid cell stands for (zeros outside)."""
    rows, cols = grid
    batch = windows_for_cells(image.astype(np.float32), info, rows, cols)
    return classifier.predict(batch, batch_size=1024, verbose=0).argmax(-1).reshape(rows, cols)


def window_agreement(
    classifier: keras.Model, detector: keras.Model, image: np.ndarray, info: ModelInfo
) -> Agreement:
    """Compare the detector's grid on `image` (H, W float32, padded to the stride) with the
    classifier run on every corresponding window."""
    height, width = image.shape
    pad_h, pad_w = -height % info.stride, -width % info.stride
    padded = np.pad(image.astype(np.float32), ((0, pad_h), (0, pad_w)))
    grid = np.asarray(detector(padded[None, :, :, None], training=False))[0].argmax(-1)
    windows = sliding_window_labels(classifier, padded, info, grid.shape)
    same = grid == windows
    digits = (grid != info.background) | (windows != info.background)
    return Agreement(
        cells=int(same.size),
        all_cells=float(same.mean()),
        digit_cells=float(same[digits].mean()) if digits.any() else 1.0,
    )
