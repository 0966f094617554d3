"""Cells -> detections: group the cells of one or more score grids into boxes in frame pixels.

Default ("peaks"): a digit is a local maximum of the per-cell digit score (1 - P(background))
at or above `conf`; its class is the argmax of the digit probabilities (optionally averaged over
the neighbouring cells), its score that class's probability, and its box the cell's window,
re-centred by a parabolic fit of the digit score around the peak (sub-cell accuracy). Detections
of all scales are merged with class-agnostic NMS that also drops boxes mostly inside a
better-scored one (the same digit seen at two scales). "components" (connected non-background
cells, one box each) is kept for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from runtime.detections import Detections
from runtime.grid import GridGeometry, decode_cells, digit_score

METHODS = ("peaks", "components")


@dataclass(frozen=True)
class Grouping:
    """How cells become detections (see `find_peaks` for `radius`, `smooth`, `pool`, `refine`).
    `iou` and `containment` are the NMS thresholds: a box is dropped if it overlaps a better
    one by IoU > `iou`, or if more than `containment` of the smaller box lies inside it."""

    method: str = "peaks"
    iou: float = 0.3
    containment: float = 0.7
    radius: int = 2
    smooth: bool = False
    pool: int = 1
    refine: int = 3

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {self.method!r}")

    def __call__(
        self,
        grids: Sequence[tuple[np.ndarray, GridGeometry]],
        background: int,
        conf: float,
        frame_shape: tuple[int, int],
    ) -> Detections:
        """Detections in frame pixels from (scores, geometry) pairs, one per scale, merged."""
        group = find_peaks if self.method == "peaks" else find_components
        options = (
            {"radius": self.radius, "smooth": self.smooth, "pool": self.pool, "refine": self.refine}
            if self.method == "peaks"
            else {}
        )
        parts = [group(scores, geometry, background, conf, **options) for scores, geometry in grids]
        merged = nms(Detections.concatenate(parts), self.iou, self.containment)
        return clip_boxes(merged, frame_shape)


def find_peaks(
    scores: np.ndarray,
    geometry: GridGeometry,
    background: int,
    conf: float,
    radius: int = 2,
    smooth: bool = False,
    pool: int = 1,
    refine: int = 3,
) -> Detections:
    """One detection per local maximum of the digit score within `radius` cells (taken on the
    score's 3x3 mean if `smooth`, so a saturated plateau gives one peak, near its middle) whose
    cell reaches `conf`. Class: argmax of the digit probabilities summed over the cells within
    `pool` of the peak; score: the peak's digit score times that class's share of the summed
    digit probabilities (with pool 0: the class probability at the peak). Box: the cell window,
    centred on the centroid of the digit score (where >= `conf`) within `refine` cells of the
    peak (0: on the peak cell)."""
    digit = digit_score(scores, background).astype(np.float32)
    ranked, strong = digit, digit >= conf
    if smooth:  # the blurred maximum may sit beside the strong cell: accept a strong neighbour
        ranked = cv2.blur(digit, (3, 3), borderType=cv2.BORDER_CONSTANT)
        strong = cv2.dilate(digit, np.ones((3, 3), np.uint8)) >= conf
    side = 2 * radius + 1
    is_peak = (ranked >= cv2.dilate(ranked, np.ones((side, side), np.uint8))) & strong
    rows, cols = np.nonzero(is_peak)
    if rows.size == 0:
        return Detections.empty()
    probs = scores
    if pool > 0:
        size = (2 * pool + 1, 2 * pool + 1)
        probs = cv2.blur(scores, size, borderType=cv2.BORDER_CONSTANT).reshape(scores.shape)
    digits = np.delete(probs[rows, cols], background, axis=1)
    class_id = digits.argmax(axis=1)
    share = digits[np.arange(rows.size), class_id] / np.maximum(digits.sum(axis=1), 1e-12)
    score = digit[rows, cols] * share
    class_id = class_id + (class_id >= background)
    if refine:
        centroid_side = 2 * refine + 1
        rows, cols = _centroids(np.where(digit >= conf, digit, 0), rows, cols, centroid_side)
    return Detections(geometry.cell_boxes(rows, cols), class_id, score)


def _centroids(
    weight: np.ndarray, rows: np.ndarray, cols: np.ndarray, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, col) of the `weight`-weighted centroid of the side x side cells around
    each (rows[k], cols[k]): sub-cell positions from the spread of the response."""
    grid_rows, grid_cols = np.indices(weight.shape, dtype=np.float32)
    mass, row_moment, col_moment = (
        cv2.blur(image, (side, side), borderType=cv2.BORDER_CONSTANT)[rows, cols]
        for image in (weight, weight * grid_rows, weight * grid_cols)
    )
    return row_moment / mass, col_moment / mass


def find_components(
    scores: np.ndarray, geometry: GridGeometry, background: int, conf: float
) -> Detections:
    """One detection per 8-connected group of non-background cells: the union of their windows,
    the class with the highest summed probability, the mean of that class's probability."""
    cell_class, _ = decode_cells(scores, background, conf)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (cell_class != background).astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return Detections.empty()
    inside = labels > 0
    sums = np.zeros((count, scores.shape[-1]), np.float64)
    np.add.at(sums, labels[inside], scores[inside])
    sums = np.delete(sums[1:], background, axis=1)
    class_id = sums.argmax(axis=1)
    score = sums[np.arange(count - 1), class_id] / stats[1:, cv2.CC_STAT_AREA]
    class_id = class_id + (class_id >= background)
    left, top = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    right = left + stats[1:, cv2.CC_STAT_WIDTH] - 1
    bottom = top + stats[1:, cv2.CC_STAT_HEIGHT] - 1
    first, last = geometry.cell_boxes(top, left), geometry.cell_boxes(bottom, right)
    boxes = np.concatenate([first[:, :2], last[:, 2:]], axis=1)
    return Detections(boxes, class_id, score)


def nms(detections: Detections, iou: float = 0.3, containment: float = 0.7) -> Detections:
    """Class-agnostic greedy non-maximum suppression, best score first: drop a box whose IoU with
    a kept box exceeds `iou` or whose intersection covers more than `containment` of the smaller
    box. Returns the kept detections sorted by score."""
    ranked = detections.sorted_by_score()
    if len(ranked) <= 1:
        return ranked
    boxes, area = ranked.xyxy, ranked.area
    top_left = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        union_ratio = overlap / (area[:, None] + area[None, :] - overlap)
        smaller_ratio = overlap / np.minimum(area[:, None], area[None, :])
    suppresses = (union_ratio > iou) | (smaller_ratio > containment)
    keep = np.ones(len(ranked), bool)
    for index in range(len(ranked)):
        if keep[index]:
            keep[index + 1 :] &= ~suppresses[index, index + 1 :]
    return ranked[keep]


def clip_boxes(detections: Detections, frame_shape: tuple[int, int]) -> Detections:
    """The detections with boxes clipped to a frame of (height, width)."""
    height, width = frame_shape
    xyxy = detections.xyxy.copy()
    np.clip(xyxy[:, 0::2], 0, width, out=xyxy[:, 0::2])
    np.clip(xyxy[:, 1::2], 0, height, out=xyxy[:, 1::2])
    return Detections(xyxy, detections.class_id, detections.score)
