"""Cells -> detections: group the cells of one or more score grids into boxes in frame pixels.

Default ("peaks"): a digit is a local maximum of the per-cell digit score (1 - P(background))
at or above `conf` among the cells whose most likely digit is the same (so a narrow "1" beside
a stronger "4" keeps its own peak); its class is the argmax of the digit probabilities
(optionally averaged over the neighbouring cells), its score that class's probability, and its
window the cell's (optionally re-centred on the centroid of the digit score around the peak).
"components" (connected non-background cells, one window each) is kept for comparison.

Boxes fit the ink (`ink_boxes`): given the scale's image, each window becomes the bounding box
of its digit's strokes there, so a digit has about the same box at every scale that sees it;
touching digits split their ink halfway between neighbouring windows of a row (a peak just
under `conf` counts as a neighbour there, `Grouping.neighbour_conf`). A cell with ink
around it but none at its centre saw only its neighbours and is dropped, and so is a digit
under `min_height` px tall at a scale coarser than the finest run: the finer scale sees it at
twice the size, inside its range. Detections of all scales are then merged (`nms`): a confident
box drops the much smaller boxes inside it whose ink runs beyond their search (the strokes of a
large digit that a finer scale read as digits), a box holding two or more whole small ones goes
(a coarse scale reading a cluster of digits as one), then class-agnostic NMS drops boxes
overlapping or mostly inside a better-scored one (the same digit at two scales).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
from convdet.runtime.defaults import GROUPING_METHODS
from convdet.runtime.detections import Detections
from convdet.runtime.errors import OptionError
from convdet.runtime.grid import GridGeometry, decode_cells, digit_score

# Ink boxes: a pixel is ink when brighter than this fraction of the brightest pixel searched.
INK_LEVEL = 0.5
# The search reaches this fraction of the window's side beyond each edge: a digit at the top of
# a scale's size range overflows its window.
INK_MARGIN = 0.25
# Ink belongs to the digit if its connected component reaches the window's central area (the
# window less this fraction of its side at each edge) or spans the window's centre (a "0").
INK_CORE = 0.25
# Two windows of one class closer than this fraction of a window's side are taken for one digit
# read twice (a model with a broad response peaks twice on it), not two touching digits: their
# ink is not split. Splitting them too cost the basic model's classic dev F1 0.862 -> 0.787.
SAME_CLASS_APART = 0.8
# Architectures whose peaks of one class two cells apart (16 px at stride 8, 0.57 of a 28-px
# window) are two digits, as the zeros of "15000" are; peaks in neighbouring cells (ties on a
# saturated plateau) stay one. wide at 0.5: ORAND-CAR-A dev box F1 0.842 -> 0.845 and exact
# amounts 39.6% -> 42.2%, camera dev 0.717 -> 0.722 (exact strings 33.3% -> 35.2%), classic dev
# unchanged. The others peak twice on one digit too often: classic dev basic 0.899 -> 0.891,
# deep 0.979 -> 0.978 and ORAND-CAR-A dev exact 19.3% -> 18.2%, separable 0.976 -> 0.975.
SAME_CLASS_APART_BY_ARCH = {"wide": 0.5}


def same_class_apart(arch: str) -> float:
    """SAME_CLASS_APART for a model of architecture `arch` (SAME_CLASS_APART_BY_ARCH)."""
    return SAME_CLASS_APART_BY_ARCH.get(arch, SAME_CLASS_APART)


@dataclass(frozen=True)
class ScaleGrid:
    """One scale's output for a frame: the (gh, gw, C) score grid, where its cells sit, and the
    image it was computed from (the frame at that scale, light strokes on dark in 0..1,
    unpadded) for ink boxes; without an image, boxes stay the cells' windows."""

    scores: np.ndarray
    geometry: GridGeometry
    image: np.ndarray | None = None


class Ink(NamedTuple):
    """What `ink_boxes` found for N windows: `boxes` (N, 4) xyxy, `cut` (N,) whether the ink ran
    to the edge of the search, `stray` (N,) whether there was ink but none at the centre."""

    boxes: np.ndarray
    cut: np.ndarray
    stray: np.ndarray


@dataclass(frozen=True)
class Grouping:
    """How cells become detections (see `find_peaks` for `radius`, `smooth`, `pool`, `refine`).
    `iou` and `containment` are the NMS thresholds: a box is dropped if it overlaps a better
    one by IoU > `iou`, or if more than `containment` of the smaller box lies inside it;
    `whole` and `part` settle boxes inside much larger ones first (see `nms`). With images,
    a detection at a scale coarser than the finest needs `min_height` px of ink there."""

    method: str = "peaks"
    iou: float = 0.3
    containment: float = 0.7
    whole: float = 0.5
    part: float = 0.7
    # A cell answers for 13-42 px of ink at its scale, so below about 21 px at a coarser scale the
    # finer one sees the digit inside its range; 18 keeps some overlap. Measured on camera dev
    # scenes with the wide model: F1 0.481 at 14 -> 0.494 (print and strings read at half scale
    # as small digits), classic multi-scale 0.990 -> 0.985, ORAND-CAR-A dev unchanged.
    min_height: float = 18.0
    # Digits written tightly sit 2-3 cells apart: a peak must only beat its 8 neighbours, and the
    # box stays on the peak's cell (a centroid over 7x7 cells drifts into the next digit). On
    # camera dev scenes (wide model) F1 0.494 (radius 2, refine 3) -> 0.592, ORAND-CAR-A dev box
    # F1 0.608 -> 0.705 and exact strings 4% -> 12%; classic dev 0.981 -> 0.982.
    radius: int = 1
    # A peak competes only with neighbours reading the same digit: a narrow digit (a "1") in a
    # tight string kept no peak beside a stronger neighbour. Camera dev F1 0.649 -> 0.659, exact
    # strings 32.8% -> 34.1%, ORAND-CAR-A dev box F1 0.755 -> 0.757, classic dev unchanged.
    by_class: bool = True
    # Peaks under `conf` but at least this score are not detections, but a touching neighbour's
    # ink search stops halfway to them as to a detected digit's (peaks only; None: detected
    # digits only): a "1" joined to a digit the model doubted took that digit's ink into its
    # box, whose centre then left the thin "1". Camera dev F1 0.703 -> 0.705, ORAND-CAR-A dev
    # box F1 0.840 -> 0.845 and exact strings 38.0% -> 39.1%, classic dev 0.987 -> 0.986 (0.05:
    # camera 0.702, ORAND 0.843; 0.15: 0.704, 0.841).
    neighbour_conf: float | None = 0.1
    # Windows of one class closer than this fraction of a window's side are one digit read
    # twice, whose ink is not split (None: SAME_CLASS_APART; `Detector` sets its model's,
    # `same_class_apart`).
    same_class_apart: float | None = None
    smooth: bool = False
    pool: int = 1
    refine: int = 0

    def __post_init__(self) -> None:
        if self.method not in GROUPING_METHODS:
            methods = ", ".join(GROUPING_METHODS)
            raise OptionError(f"method: expected one of {methods}, got {self.method!r}")

    def __call__(
        self,
        grids: Sequence[ScaleGrid],
        background: int,
        conf: float,
        frame_shape: tuple[int, int],
    ) -> Detections:
        """Detections in frame pixels from one frame's grids, one per scale, merged."""
        group = find_peaks if self.method == "peaks" else find_components
        options = (
            {
                "radius": self.radius,
                "by_class": self.by_class,
                "smooth": self.smooth,
                "pool": self.pool,
                "refine": self.refine,
            }
            if self.method == "peaks"
            else {}
        )
        finest = max((grid.geometry.scale for grid in grids), default=1.0)
        faint_too = self.method == "peaks" and self.neighbour_conf is not None
        # Without smoothing or re-centring, a peak and its box do not depend on the threshold,
        # so the peaks at `conf` are those found at the lower `neighbour_conf` scoring `conf`.
        at_once = faint_too and self.neighbour_conf <= conf and not (self.smooth or self.refine)
        parts, cuts = [], []
        for grid in grids:
            lowest = self.neighbour_conf if at_once else conf
            found = group(grid.scores, grid.geometry, background, lowest, **options)
            faint = None
            if at_once:
                found, faint = found[found.score >= conf], found[found.score < conf]
            elif faint_too and grid.image is not None:
                faint = group(
                    grid.scores, grid.geometry, background, self.neighbour_conf, **options
                )
                faint = faint[faint.score < conf]
            if grid.image is not None:
                scale = grid.geometry.scale
                if faint is not None:
                    faint = Detections(faint.xyxy * scale, faint.class_id, faint.score)
                ink = ink_boxes(
                    grid.image, found.xyxy * scale, found.class_id, faint, self.same_class_apart
                )
                keep = ~ink.stray
                if scale < finest:
                    keep &= ink.boxes[:, 3] - ink.boxes[:, 1] >= self.min_height
                found = Detections(ink.boxes / scale, found.class_id, found.score)[keep]
                cuts.append(ink.cut[keep])
            parts.append(found)
        merged = nms(
            Detections.concatenate(parts),
            self.iou,
            self.containment,
            self.whole,
            self.part,
            np.concatenate(cuts) if len(cuts) == len(parts) else None,
        )
        return clip_boxes(merged, frame_shape)


def find_peaks(
    scores: np.ndarray,
    geometry: GridGeometry,
    background: int,
    conf: float,
    radius: int = 2,
    by_class: bool = False,
    smooth: bool = False,
    pool: int = 1,
    refine: int = 3,
) -> Detections:
    """One detection per local maximum of the digit score within `radius` cells (with
    `by_class`, among the cells whose most likely digit is the same; taken on the score's 3x3
    mean if `smooth`, so a saturated plateau gives one peak, near its middle) whose score
    reaches `conf`. Class: argmax of the digit probabilities summed over the cells within
    `pool` of the peak; score: the peak's digit score times that class's share of the summed
    digit probabilities (with pool 0: the class probability at the peak). Box: the cell window,
    centred on the centroid of the digit score (where >= `conf`) within `refine` cells of the
    peak (0: on the peak cell)."""
    digit = digit_score(scores, background).astype(np.float32)
    ranked, strong = digit, digit >= conf
    if smooth:  # the blurred maximum may sit beside the strong cell: accept a strong neighbour
        ranked = cv2.blur(digit, (3, 3), borderType=cv2.BORDER_CONSTANT)
        strong = cv2.dilate(digit, np.ones((3, 3), np.uint8)) >= conf
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    if by_class:
        likeliest = np.delete(scores, background, axis=-1).argmax(axis=-1)
        is_peak = np.zeros(strong.shape, bool)
        for digit_class in np.unique(likeliest[strong]):
            mine = likeliest == digit_class
            rivals = np.where(mine, ranked, 0).astype(np.float32)
            is_peak |= mine & (rivals >= cv2.dilate(rivals, kernel))
        is_peak &= strong
    else:
        is_peak = (ranked >= cv2.dilate(ranked, kernel)) & strong
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
    keep = score >= conf  # `conf` bounds what a user filters on: the detection's score
    rows, cols, score = rows[keep], cols[keep], score[keep]
    class_id = class_id[keep] + (class_id[keep] >= background)
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


def ink_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray | None = None,
    neighbours: Detections | None = None,
    apart: float | None = None,
) -> Ink:
    """The ink extent of the digit in each window of `boxes` (N, 4) xyxy in `image` pixels, on
    `image` (light strokes on dark, 0..1).

    Searched within the window grown by INK_MARGIN of its side, up to halfway to the next
    window's centre on either side in its row (`_neighbour_stops`, given each window's class in
    `classes` and `apart`; windows of `neighbours`, in `image` pixels, only stop searches): the
    bounding box of the ink components (INK_LEVEL of the brightest pixel searched) that reach
    the window's central area or span its centre. A window with ink but none of it there is
    `stray` (the cell saw only the digits around it), one without ink stays as it is. The
    search's edge clips a touching neighbour; ink reaching that edge (where it lies inside the
    image) is `cut`: a stroke of something larger, as a finer scale sees the loop of a large
    digit. All N crops are cut with one gather and labelled in one connected-components pass."""
    count = len(boxes)
    boxes = np.asarray(boxes, np.float32).reshape(count, 4)
    if count == 0:
        return Ink(boxes, np.zeros(0, bool), np.zeros(0, bool))
    size = boxes[:, 2:] - boxes[:, :2]
    low = np.floor(boxes[:, :2] - INK_MARGIN * size).astype(np.int64)  # (N, 2): x, y
    high = np.ceil(boxes[:, 2:] + INK_MARGIN * size).astype(np.int64)
    # Touching digits: a search stops halfway to the next window's centre in its row, so each
    # digit of a connected string gets its own share of the ink; ink at such a stop is not cut.
    # On camera dev scenes F1 0.592 -> 0.627, ORAND-CAR-A dev box F1 0.705 -> 0.735 and exact
    # strings 12% -> 23% (a joined "604" was one box over three digits, dropping the other two).
    if neighbours is None or len(neighbours) == 0:
        stops = _neighbour_stops(boxes, classes, apart)
    else:  # windows that only stop searches, in `image` pixels too
        beside = np.concatenate([boxes, neighbours.xyxy.astype(np.float32)])
        if classes is not None:
            classes = np.concatenate([classes, neighbours.class_id])
        stops = _neighbour_stops(beside, classes, apart)[:count]
    split = np.zeros((count, 4), bool)
    split[:, 0], split[:, 2] = stops[:, 0] > low[:, 0], stops[:, 1] < high[:, 0]
    low[split[:, 0], 0] = np.floor(stops[split[:, 0], 0])
    high[split[:, 2], 0] = np.ceil(stops[split[:, 2], 1])
    side = int((high - low).max())
    limits = np.array(image.shape[::-1])
    if (limits < side).any():  # a frame smaller than one search: room for a whole crop
        image = np.pad(image, ((0, max(side - limits[1], 0)), (0, max(side - limits[0], 0))))
    # Crops of side x side px at `origin`, inside the image; the search is the part of each
    # within [low, high) and the image (clipped searches near the image's edges slide inwards).
    origin = np.clip(low, 0, np.array(image.shape[::-1]) - side)
    first, last = np.maximum(low, 0) - origin, np.minimum(high, limits) - origin
    offsets = np.arange(side)
    searched = (offsets >= first[:, :, None]) & (offsets < last[:, :, None])  # (N, 2, side)
    windows = np.lib.stride_tricks.sliding_window_view(image, (side, side))
    crops = windows[origin[:, 1], origin[:, 0]] * (
        searched[:, 1, :, None] & searched[:, 0, None, :]
    )
    # Each crop sits at (1, 1) of a slot with blank rows and columns around it; the ink is
    # dilated by one pixel before labelling, so strokes a pixel or two apart (the bar of a "5")
    # join while crops stay apart, and a component's box is its dilated box less one pixel.
    slot = (side + 3, side + 2)
    mosaic = np.zeros((count, *slot), np.uint8)
    ink = crops > INK_LEVEL * crops.max(axis=(1, 2), keepdims=True)
    mosaic[:, 1 : side + 1, 1 : side + 1] = ink
    grown = cv2.dilate(mosaic.reshape(-1, slot[1]), np.ones((3, 3), np.uint8))
    labelled, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    stats = stats[1:]
    crop = stats[:, cv2.CC_STAT_TOP] // slot[0]
    start = np.stack([stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP] % slot[0]], 1)
    stop = start + stats[:, [cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]] - 2
    core_first = boxes[:, :2] + INK_CORE * size - origin
    core_last = boxes[:, 2:] - INK_CORE * size - origin
    in_core = (offsets + 0.5 >= core_first[:, :, None]) & (offsets + 0.5 <= core_last[:, :, None])
    core_labels = labels.reshape(count, *slot)[:, 1 : side + 1, 1 : side + 1][
        in_core[:, 1, :, None] & in_core[:, 0, None, :]
    ]
    centre = ((boxes[:, :2] + boxes[:, 2:]) / 2 - origin)[crop]
    spans_centre = ((start <= centre) & (centre <= stop)).all(axis=1)
    keep = (np.bincount(core_labels, minlength=labelled)[1:] > 0) | spans_centre
    extent = np.concatenate([np.full((count, 2), side), np.zeros((count, 2))], axis=1)
    np.minimum.at(extent[:, :2], crop[keep], start[keep])
    np.maximum.at(extent[:, 2:], crop[keep], stop[keep])
    found = extent[:, 2] > 0
    fitted = boxes.copy()
    fitted[found] = extent[found] + np.tile(origin[found], 2)
    inner = np.concatenate([low > 0, high < limits], axis=1) & ~split  # edges inside the image
    edges = np.concatenate([first, last], axis=1)
    cut = found & ((extent == edges) & inner).any(axis=1)
    stray = ~found & (np.bincount(crop, minlength=count) > 0)
    return Ink(fitted, cut, stray)


def _neighbour_stops(
    boxes: np.ndarray, classes: np.ndarray | None = None, apart: float | None = None
) -> np.ndarray:
    """(N, 2) x limits (left, right) for each box's ink search: halfway to the centre of the
    nearest box on each side whose centre lies within half a box height of its row (-inf / inf
    without one); with `classes` (N,), a box of the same class counts only if `apart`
    (default SAME_CLASS_APART) of a box height or more away."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    height = boxes[:, 3] - boxes[:, 1]
    dx = centre[None, :, 0] - centre[:, None, 0]  # [i, j]: from box i's centre to box j's
    in_row = np.abs(centre[None, :, 1] - centre[:, None, 1]) < height[:, None] / 2
    if classes is not None:
        far = np.abs(dx) >= (SAME_CLASS_APART if apart is None else apart) * height[:, None]
        in_row &= (classes[None, :] != classes[:, None]) | far
    right = np.where(in_row & (dx > 0), dx, np.inf).min(axis=1, initial=np.inf)
    left = np.where(in_row & (dx < 0), -dx, np.inf).min(axis=1, initial=np.inf)
    return np.stack([centre[:, 0] - left / 2, centre[:, 0] + right / 2], axis=1)


def nms(
    detections: Detections,
    iou: float = 0.3,
    containment: float = 0.7,
    whole: float = 0.5,
    part: float = 0.7,
    cut: np.ndarray | None = None,
) -> Detections:
    """Class-agnostic greedy non-maximum suppression, best score first: drop a box whose IoU with
    a kept box exceeds `iou` or whose intersection covers more than `containment` of the smaller
    box. Returns the kept detections sorted by score.

    With `cut` (N,), whether each box's ink was cut off (`ink_boxes`), boxes lying mostly
    (`containment`) inside one more than 1 / `part` times their area are settled first, whatever
    the scores: a container scoring at least `whole` drops the cut ones (the strokes of a large
    digit that a finer scale read as digits), and a container holding two or more uncut ones is
    dropped (a coarse scale reading a cluster of small digits as one)."""
    order = np.argsort(-detections.score, kind="stable")
    ranked = detections[order]
    if len(ranked) <= 1:
        return ranked
    boxes, area = ranked.xyxy, ranked.area
    top_left = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        union_ratio = overlap / (area[:, None] + area[None, :] - overlap)
        smaller_ratio = overlap / np.minimum(area[:, None], area[None, :])
        holds = (overlap / area[None, :] > containment) & (area[None, :] < part * area[:, None])
    keep = np.ones(len(ranked), bool)
    if cut is not None:  # holds[i, j]: box j is a small box mostly inside box i
        cut = np.asarray(cut, bool)[order]
        keep &= (holds & ~cut[None, :]).sum(axis=1) < 2
        wins = keep & (ranked.score >= whole)
        keep &= ~(holds[wins] & cut[None, :]).any(axis=0)
    suppresses = (union_ratio > iou) | (smaller_ratio > containment)
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
