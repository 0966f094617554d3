"""The receptive field of a detector's grid cells: the input pixels a cell's scores depend on.

Cell i along an axis depends on input pixels `stride * i + start` .. `stride * i + end`
(inclusive) of the input padded to a multiple of the stride. Exported models carry
(start, end) in their metadata; for a file without it, `measure_field` finds it with an
impulse test on the backend itself (two inferences per axis), exactly and for any model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np
from convdet.runtime.grid import round_up

if TYPE_CHECKING:
    from convdet.runtime.backends import Backend

Field = tuple[int, int]  # (start, end): input pixels of cell i are stride*i + start .. + end
Run = Callable[[np.ndarray], np.ndarray]  # (N, H, W, 1) float32 -> (N, gh, gw, C)

# The impulse test's probe frame: this many cells across the perturbed lines, and spacing
# between the stride's perturbations tried from this many pixels, doubled while their effects
# overlap, up to FIELD_LIMIT px either side (a wider field, such as a global pooling's,
# counts as unbounded: such a model always runs dense).
PROBE_CELLS = 8
FIRST_SPACING = 256
FIELD_LIMIT = 1024


_measured: dict[tuple[str, int, int], Field | None] = {}


def model_field(backend: Backend) -> Field | None:
    """The field of `backend`'s cells: its metadata's `receptive_field`, else measured once
    per model file and process (`measure_field`); None for a fixed-size model, an unbounded
    field or a model the probe fails on. It runs the backend: hold its lock, if it has one."""
    info = backend.info
    if info.receptive_field is not None:
        return info.receptive_field
    if backend.fixed_size is not None:
        return None
    status = backend.path.stat()
    key = (str(backend.path.resolve()), status.st_size, status.st_mtime_ns)
    if key not in _measured:
        try:
            _measured[key] = measure_field(backend.run, info.stride, info.input_range)
        except Exception:  # a model the probe cannot run (any engine error) runs dense
            _measured[key] = None
    return _measured[key]


def measure_field(run: Run, stride: int, value_range: tuple[float, float]) -> Field | None:
    """(start, end) of the receptive field of `run`'s cells, measured: one line of pixels per
    phase of the stride changed on a random frame, the cells whose scores moved at all
    (any bit) give the field; the larger of both axes' extents. None when the effects never
    separate (a field wider than FIELD_LIMIT, such as a global pooling's)."""
    fields = [_measure_axis(run, stride, value_range, axis) for axis in (0, 1)]
    if any(field is None for field in fields):
        return None
    starts, ends = zip(*fields, strict=True)
    return min(starts), max(ends)


def _measure_axis(
    run: Run, stride: int, value_range: tuple[float, float], axis: int
) -> Field | None:
    """The field along `axis` (0 rows, 1 columns), widening the probe until effects separate."""
    low, high = value_range
    rng = np.random.default_rng(0)
    spacing = round_up(FIRST_SPACING, stride)
    while spacing <= 2 * FIELD_LIMIT:
        positions = [spacing * (phase + 1) + phase for phase in range(stride)]
        length = spacing * (stride + 1)
        across = PROBE_CELLS * stride
        base = rng.uniform(low, high, (across, length)).astype(np.float32)
        probe = base.copy()
        middle = (low + high) / 2
        for position in positions:
            probe[:, position] = np.where(base[:, position] > middle, low, high)
        frames = [base, probe] if axis == 1 else [base.T, probe.T]
        # one call each: an engine may round the items of one batch differently
        scores = [run(np.ascontiguousarray(frame)[None, :, :, None])[0] for frame in frames]
        changed = scores[0] != scores[1]
        moved = changed.any(axis=(1 - axis, 2))  # per cell along `axis`
        field = _field_from(moved, positions, stride, spacing)
        if field is not None:
            return field
        spacing *= 2
    return None


def _field_from(moved: np.ndarray, positions: list[int], stride: int, spacing: int) -> Field | None:
    """The field from the cells the perturbations moved, each cell counted for the nearest
    perturbation; None unless every perturbation moved cells, all well within half the
    spacing of it and away from the probe's ends (otherwise effects may overlap)."""
    cells = np.flatnonzero(moved)
    if not len(cells) or cells[0] == 0 or cells[-1] == len(moved) - 1:
        return None
    centres = stride * cells + stride / 2
    nearest = np.abs(centres[:, None] - np.array(positions)[None, :]).argmin(axis=1)
    starts, ends = [], []
    for index, position in enumerate(positions):
        mine = cells[nearest == index]
        if not len(mine) or stride * (int(mine[-1]) - int(mine[0]) + 1) >= spacing // 2:
            return None
        starts.append(position - stride * int(mine[-1]))
        ends.append(position - stride * int(mine[0]))
    if max(-min(starts), max(ends)) > FIELD_LIMIT:
        return None
    return min(starts), max(ends)


def marked_blocks(mask: np.ndarray, stride: int) -> np.ndarray:
    """Which stride x stride blocks of a (H, W) uint8 0/255 mask (sides multiples of `stride`)
    hold a marked pixel: (H / stride, W / stride) bool. OpenCV's area resize averages each
    block in integers, so one 255 among stride * stride <= 484 pixels still rounds above 0."""
    height, width = mask.shape
    rows, cols = height // stride, width // stride
    if stride * stride <= 484:
        return cv2.resize(mask, (cols, rows), interpolation=cv2.INTER_AREA) > 0
    return mask.reshape(rows, stride, cols, stride).any(axis=(1, 3))


def cells_seeing(blocks: np.ndarray, field: Field, stride: int) -> np.ndarray:
    """Which cells of a grid see at least one marked block: `blocks` (gh, gw) bool marks the
    stride x stride input blocks (block k spans pixels stride*k .. stride*k + stride - 1),
    the result marks the cells whose field covers a pixel of a marked block.

    Cell i sees blocks i + low .. i + high, so this is a dilation with a (high - low + 1)
    square anchored at (-low, -low) (OpenCV's dilate counts outside pixels as unmarked). The
    offsets are widened to take in the cell's own block, which a convolutional cell always
    sees; a wider window only marks more cells, which is always safe."""
    start, end = field
    low = min(-((stride - 1 - start) // stride), 0)  # ceil((start - stride + 1) / stride)
    high = max(end // stride, 0)
    side = high - low + 1
    kernel = np.ones((side, side), np.uint8)
    marked = cv2.dilate(blocks.astype(np.uint8), kernel, anchor=(-low, -low))
    return marked.astype(bool)
