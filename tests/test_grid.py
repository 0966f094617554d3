"""Grid geometry (cell windows and tiles in frame pixels) and per-cell decoding."""

from __future__ import annotations

import numpy as np
import pytest
from convdet.runtime.grid import (
    GridGeometry,
    decode_cells,
    digit_score,
    round_up,
    windows_for_cells,
)
from convdet.runtime.modelinfo import ModelInfo


def test_cell_boxes_follow_stride_offset_and_scale() -> None:
    geometry = GridGeometry(stride=8, cell_offset=6.0, window=28)
    boxes = geometry.cell_boxes(np.array([0, 2]), np.array([0, 3]))
    np.testing.assert_allclose(boxes, [[-8, -8, 20, 20], [16, 8, 44, 36]])
    half = GridGeometry(stride=8, cell_offset=6.0, window=28, scale=0.5)
    np.testing.assert_allclose(half.cell_boxes(np.array([1]), np.array([1])), [[0, 0, 56, 56]])


def test_round_up_pads_to_the_stride() -> None:
    assert [round_up(side, 8) for side in (100, 127, 128, 0)] == [104, 128, 128, 0]
    np.testing.assert_array_equal(round_up(np.array([1, 8, 9, -7]), 8), [8, 8, 16, 0])


@pytest.mark.parametrize(
    ("offset", "scale", "length", "cells", "expected"),
    [
        # Tiles are stride wide and centred on the cell centres 4, 12, 20.
        (4.0, 1.0, 24, 3, [0] * 8 + [1] * 8 + [2] * 8),
        # Centres 6, 14: cell 0's tile is [2, 10), pixels 0-1 lie outside the grid.
        (6.0, 1.0, 20, 2, [-1, -1] + [0] * 8 + [1] * 8 + [-1, -1]),
        # At scale 0.5 each tile covers 16 frame pixels.
        (4.0, 0.5, 34, 2, [0] * 16 + [1] * 16 + [-1, -1]),
    ],
)
def test_pixel_cells_map_frame_pixels_to_tiles(offset, scale, length, cells, expected) -> None:
    geometry = GridGeometry(stride=8, cell_offset=offset, window=28, scale=scale)
    assert geometry.pixel_cells(length, cells).tolist() == expected


def test_decode_marks_background_and_low_confidence() -> None:
    scores = np.zeros((1, 3, 4), np.float32)
    scores[0, 0] = [0.9, 0.05, 0.05, 0.0]  # confident class 0
    scores[0, 1] = [0.4, 0.3, 0.3, 0.0]  # class 1 would be argmax 0 but under conf
    scores[0, 2] = [0.1, 0.1, 0.0, 0.8]  # background (index 3)
    cell_class, confidence = decode_cells(scores, background=3, conf=0.5)
    assert cell_class.tolist() == [[0, 3, 3]]
    np.testing.assert_allclose(confidence, [[0.9, 0.4, 0.8]])
    np.testing.assert_allclose(digit_score(scores, 3), [[1.0, 1.0, 0.2]])


def test_decode_rejects_a_flat_array() -> None:
    with pytest.raises(ValueError, match=r"expected a \(rows, cols, classes\) grid, got shape"):
        decode_cells(np.zeros((3, 4), np.float32), background=3, conf=0.5)


def test_windows_are_the_cells_windows() -> None:
    """A digit placed exactly on cell (r, c)'s window comes back as that cell's window."""
    info = ModelInfo((*"0123456789", "background"), 10, 8, 28, cell_offset=6.0)
    rows, cols = 6, 8
    image = np.zeros((rows * info.stride, cols * info.stride), np.float32)
    digit = np.arange(info.window**2, dtype=np.float32).reshape(info.window, info.window)
    row, col = 3, 4
    top = round(info.cell_centre(row) - info.window / 2)
    left = round(info.cell_centre(col) - info.window / 2)
    image[top : top + info.window, left : left + info.window] = digit
    windows = windows_for_cells(image, info, rows, cols)
    assert windows.shape == (rows * cols, info.window, info.window, 1)
    np.testing.assert_array_equal(windows[row * cols + col, :, :, 0], digit)
    # Cell (0, 0)'s window starts before the image: zeros there, the image after.
    corner = windows[0, :, :, 0]
    before = -round(info.cell_centre(0) - info.window / 2)
    assert before > 0 and not corner[:before].any() and not corner[:, :before].any()
