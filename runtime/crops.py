"""Crop planning for sparse inference: which input rectangles to run so that given grid cells
come out exactly as on the whole frame.

A crop starts and ends on multiples of the stride (so every layer's map of the crop is an
aligned part of the frame's map) and covers the receptive field of each cell it gives, clipped
to the padded frame (where the frame's own padding starts, the crop's does too). Crop sides are
rounded up to a few bucket sizes, so a backend sees a bounded number of input shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from convdet.runtime.field import Field
from convdet.runtime.grid import round_up

# Bucket sides in cells: four per octave from 4 cells up (4, 5, 6, 7, 8, 10, 12, 14, 16, ...).
BUCKET_CELLS = tuple(
    base * quarter // 4 for base in (4, 8, 16, 32, 64, 128, 256, 512) for quarter in (4, 5, 6, 7)
)
# What one more backend call costs, as input pixels of work (a 48x48 crop): merging two crops
# whose union costs less than both plus this saves time.
CALL_COST_PX = 48 * 48
# Groups of cells merged pair by pair at most; beyond, one crop holds them all (the greedy
# merge costs the square of the groups per step, and so many crops would not pay anyway).
MAX_GROUPS = 64


@dataclass(frozen=True)
class Crop:
    """Input pixels rows[0]:rows[1], cols[0]:cols[1] to run, and the grid cells
    cells[0]:cells[1] (rows), cells[2]:cells[3] (columns) its output gives exactly."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    cells: tuple[int, int, int, int]

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the crop's input."""
        return self.rows[1] - self.rows[0], self.cols[1] - self.cols[0]

    @property
    def area(self) -> int:
        """Input pixels of the crop."""
        height, width = self.shape
        return height * width


def crop_spans(
    first: np.ndarray, last: np.ndarray, limit: int, field: Field, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input pixels (starts, stops) of crops giving cells first[k]..last[k] (inclusive) along
    an axis of `limit` padded pixels: their fields clipped to the frame, on stride multiples,
    grown to the smallest bucket side that holds them (the whole side when none below it
    does), towards the end or back from the frame's end."""
    start = np.maximum(0, (stride * first + field[0]) // stride * stride)
    stop = np.minimum(limit, round_up(stride * last + field[1] + 1, stride))
    sides = [cells * stride for cells in BUCKET_CELLS if cells * stride < limit]
    buckets = np.array([*sides, limit], dtype=np.int64)
    side = buckets[np.searchsorted(buckets, stop - start)]
    start = np.minimum(start, limit - side)
    return start, start + side


def plan_crops(needed: np.ndarray, field: Field, stride: int) -> list[Crop]:
    """Crops giving every True cell of `needed` (gh, gw): one per connected group of cells,
    merged greedily while a merged crop costs less than its parts (CALL_COST_PX per call; one
    crop for more than MAX_GROUPS groups), sorted by shape so that a backend resizes its input
    as few times as possible."""
    rows, cols = needed.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(needed.astype(np.uint8), connectivity=8)
    if count <= 1:
        return []
    left, top, width, height = (stats[1:, k].astype(np.int64) for k in range(4))
    boxes = np.stack([top, top + height - 1, left, left + width - 1], axis=1)  # inclusive
    if len(boxes) > MAX_GROUPS:
        low, high = boxes.min(axis=0), boxes.max(axis=0)
        boxes = np.array([[low[0], high[1], low[2], high[3]]])
    limits = (stride * rows, stride * cols)

    def spans(box: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        return crop_spans(box[:, 2 * axis], box[:, 2 * axis + 1], limits[axis], field, stride)

    def cost(box: np.ndarray) -> np.ndarray:
        """Input pixels plus call cost of the crops of boxes (N, 4)."""
        (top, bottom), (left, right) = spans(box, 0), spans(box, 1)
        return (bottom - top) * (right - left) + CALL_COST_PX

    costs = cost(boxes)
    while len(boxes) > 1:
        a, b = np.triu_indices(len(boxes), k=1)
        unions = np.stack(
            [
                np.minimum(boxes[a, 0], boxes[b, 0]),
                np.maximum(boxes[a, 1], boxes[b, 1]),
                np.minimum(boxes[a, 2], boxes[b, 2]),
                np.maximum(boxes[a, 3], boxes[b, 3]),
            ],
            axis=1,
        )
        savings = costs[a] + costs[b] - cost(unions)
        best = int(savings.argmax())
        if savings[best] < 0:
            break
        keep = np.ones(len(boxes), bool)
        keep[[a[best], b[best]]] = False
        boxes = np.concatenate([boxes[keep], unions[best : best + 1]])
        costs = np.concatenate([costs[keep], cost(unions[best : best + 1])])
    (top, bottom), (left, right) = spans(boxes, 0), spans(boxes, 1)
    crops = [
        Crop(
            rows=(int(top[k]), int(bottom[k])),
            cols=(int(left[k]), int(right[k])),
            cells=(int(box[0]), int(box[1]) + 1, int(box[2]), int(box[3]) + 1),
        )
        for k, box in enumerate(boxes)
    ]
    return sorted(crops, key=lambda crop: crop.shape)
