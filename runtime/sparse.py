"""Sparse inference: the model run only where a cell's receptive field holds ink, every other
cell given the scores the model gives on a blank input, with the same result as dense.

A cell whose field is all background value scores exactly as on a blank frame of the same
size, which `BlankGrid` builds from one small blank inference; cells that see ink come from
crops (`convdet.runtime.crops`) run through the backend and pasted in.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from convdet.runtime.crops import plan_crops
from convdet.runtime.defaults import SPARSE_MODES
from convdet.runtime.errors import OptionError
from convdet.runtime.field import Field, cells_seeing, marked_blocks

# Above this share of the frame's pixels in crops, "auto" runs the whole frame instead: with
# wide.onnx on MNIST-style 640x480 frames of 1 to 20 digits, crops covering 12% of the frame
# took 0.14x the whole frame's time, 56% 0.58x, 79% 0.72-0.76x, 89% 0.86x and 98% 1.2x.
DENSE_COVERAGE = 0.9
BLANK_CACHE = 16  # background grids kept, per grid shape

Run = Callable[[np.ndarray], np.ndarray]  # (1, H, W, 1) float32 -> (1, gh, gw, C)


def check_mode(mode: str) -> None:
    """OptionError (a ValueError) unless `mode` is one of SPARSE_MODES."""
    if mode not in SPARSE_MODES:
        raise OptionError(f"sparse: expected one of {', '.join(SPARSE_MODES)}, got {mode!r}")


class BlankGrid:
    """The scores a model gives on a blank (all background value) input of any padded size.

    Away from the frame's edges every cell of a blank input scores alike; a cell within its
    field of an edge scores by its distance to that edge. So one blank input of
    (top band + 1 + bottom band) cells a side holds every distinct cell, and larger grids
    repeat its middle row and column.
    """

    def __init__(self, run: Run, field: Field, stride: int, background: float) -> None:
        self._run = run
        self._stride = stride
        self._background = np.float32(background)
        start, end = field
        self._before = -(start // stride) if start < 0 else 0  # cells whose field starts above 0
        self._after = max(end, 0) // stride  # cells whose field ends past the padded side
        self._small: dict[tuple[int, int], np.ndarray] = {}
        self._grids: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, rows: int, cols: int) -> np.ndarray:
        """The (rows, cols, C) scores of a blank input of rows x cols cells (read-only)."""
        grid = self._grids.get((rows, cols))
        if grid is None:
            if len(self._grids) >= BLANK_CACHE:
                self._grids.pop(next(iter(self._grids)))
            row_map, col_map = self._index(rows), self._index(cols)
            small = self._blank(len(set(row_map)), len(set(col_map)))
            grid = small[np.ix_(row_map, col_map)]
            grid.setflags(write=False)
            self._grids[rows, cols] = grid
        return grid

    def _index(self, cells: int) -> list[int]:
        """For each of `cells` cells along an axis, its cell in the small blank input."""
        distinct = self._before + 1 + self._after
        if cells <= distinct:
            return list(range(cells))
        middle = cells - self._before - self._after
        after = range(self._before + 1, distinct)
        return [*range(self._before), *([self._before] * middle), *after]

    def _blank(self, rows: int, cols: int) -> np.ndarray:
        """Scores of a blank input of rows x cols cells, computed once per size."""
        scores = self._small.get((rows, cols))
        if scores is None:
            shape = (1, rows * self._stride, cols * self._stride, 1)
            scores = self._run(np.full(shape, self._background, np.float32))[0]
            self._small[rows, cols] = scores
        return scores


class SparseInference:
    """Scores of padded model inputs computed only where needed, equal to dense inference.

    `mode` "on" always runs crops; "auto" runs the whole frame when crops would cover more
    than DENSE_COVERAGE of it; "off" runs whole frames (cells a caller asks for still keep
    the rest of `base`, see `cells`). `last_coverage` is the share of the last frame's pixels
    run through the model.
    """

    def __init__(
        self, run: Run, field: Field, stride: int, background: float, mode: str = "auto"
    ) -> None:
        check_mode(mode)
        self.run = run
        self.field = field
        self.stride = stride
        self.background = np.float32(background)
        self.mode = mode
        self.blank = BlankGrid(run, field, stride, background)
        self.last_coverage = 1.0

    def ink_cells(self, image: np.ndarray) -> np.ndarray:
        """Cells (gh, gw) whose field holds a pixel of `image` (H, W, padded) that is not the
        background value: the only cells whose scores differ from a blank input's."""
        ink = cv2.compare(image, float(self.background), cv2.CMP_NE)
        return cells_seeing(marked_blocks(ink, self.stride), self.field, self.stride)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Scores (gh, gw, C) of one padded model input (H, W) float32."""
        rows, cols = image.shape[0] // self.stride, image.shape[1] // self.stride
        if self.mode == "off":
            return self._dense(image)
        return self.cells(image, np.ones((rows, cols), bool), self.blank(rows, cols))

    def cells(self, image: np.ndarray, wanted: np.ndarray, base: np.ndarray) -> np.ndarray:
        """`base` (gh, gw, C) with the `wanted` cells recomputed on `image`: those whose field
        holds no ink from the blank grid (unless mode is "off"), the others from crops or, when
        crops would cost about as much, from the whole frame."""
        rows, cols = wanted.shape
        everything = bool(wanted.all())
        scores = np.array(base, dtype=np.float32)
        if self.mode != "off":
            blank = wanted & ~self.ink_cells(image)
            scores[blank] = self.blank(rows, cols)[blank]
            wanted = wanted & ~blank
        share = wanted.mean()  # crops cover at least the wanted cells
        if share == 0.0:
            self.last_coverage = 0.0
            return scores
        dense_anyway = self.mode == "auto" and share > DENSE_COVERAGE
        crops = [] if dense_anyway else plan_crops(wanted, self.field, self.stride)
        coverage = sum(crop.area for crop in crops) / image.size if crops else 1.0
        if coverage >= 1.0 or (self.mode != "on" and coverage > DENSE_COVERAGE):
            dense = self._dense(image)
            if everything:  # the blank cells too: dense gives them exactly the blank scores
                return dense
            np.copyto(scores, dense, where=wanted[..., None])
            return scores
        for crop in crops:
            (top, bottom), (left, right) = crop.rows, crop.cols
            part = image[top:bottom, left:right]
            out = self.run(np.ascontiguousarray(part)[None, :, :, None])[0]
            first_row, last_row, first_col, last_col = crop.cells
            row, col = top // self.stride, left // self.stride
            scores[first_row:last_row, first_col:last_col] = out[
                first_row - row : last_row - row, first_col - col : last_col - col
            ]
        self.last_coverage = coverage
        return scores

    def _dense(self, image: np.ndarray) -> np.ndarray:
        """Scores of the whole padded input."""
        self.last_coverage = 1.0
        return self.run(np.ascontiguousarray(image)[None, :, :, None])[0]
