"""Grouping cells into detections: peaks + NMS (default), components, ink boxes, multi-scale
merging (the same digit at two scales, a large digit over its parts, a cluster of small ones)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from convdet.runtime.detections import Detections
from convdet.runtime.grid import GridGeometry
from convdet.runtime.grouping import (
    SAME_CLASS_APART,
    SAME_CLASS_APART_BY_ARCH,
    Grouping,
    ScaleGrid,
    clip_boxes,
    find_components,
    find_peaks,
    ink_boxes,
    nms,
    same_class_apart,
)

BACKGROUND = 10
GEOMETRY = GridGeometry(stride=8, cell_offset=4.0, window=28)


def grid(rows: int = 8, cols: int = 10) -> np.ndarray:
    """A softmax grid that is background everywhere."""
    scores = np.full((rows, cols, 11), 0.002, np.float32)
    scores[..., BACKGROUND] = 0.98
    return scores


def put(scores: np.ndarray, row: int, col: int, class_id: int, digit: float) -> None:
    """Make cell (row, col) a digit of `class_id` with P(not background) = `digit`, 90% of it
    on `class_id` and the rest spread over the other digits."""
    scores[row, col] = digit * 0.1 / 9
    scores[row, col, class_id] = digit * 0.9
    scores[row, col, BACKGROUND] = 1 - digit


def blob(scores: np.ndarray, row: int, col: int, class_id: int) -> None:
    """A digit as the detector sees it: a strong cell, weaker neighbours of its class beside it
    and of other classes at its corners."""
    for dr, dc in np.ndindex(3, 3):
        corner = dr != 1 and dc != 1
        neighbour_class = (class_id + dr + dc) % 10 if corner else class_id
        put(scores, row + dr - 1, col + dc - 1, neighbour_class, 0.4 if corner else 0.6)
    put(scores, row, col, class_id, 0.97)


def test_a_detection_scores_at_least_conf_though_its_cell_passes() -> None:
    scores = grid()
    put(scores, 3, 4, 7, 0.9)  # 0.9 digit probability, 0.81 of it on the 7
    scores[3, 6] = 0.0125
    scores[3, 6, [3, 8]] = 0.4  # 0.9 digit probability split between a 3 and an 8: 0.4 each
    scores[3, 6, BACKGROUND] = 0.1
    found = find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.5, pool=0)
    assert found.class_id.tolist() == [7]  # the 3-or-8 cell passes conf, its best class does not
    assert find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.3, pool=0).class_id.tolist() == [7, 3]


def test_one_digit_gives_one_detection_at_its_cell() -> None:
    scores = grid()
    blob(scores, 3, 4, class_id=7)
    found = find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.5, pool=0)
    assert found.class_id.tolist() == [7]
    assert found.score[0] == pytest.approx(0.97 * 0.9)  # the class probability at the peak
    pooled = find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.5, pool=1)
    assert pooled.class_id.tolist() == [7]
    assert 0 < pooled.score[0] < found.score[0]  # neighbours of other classes lower the score
    np.testing.assert_allclose(found.centre, [[8 * 4 + 4, 8 * 3 + 4]], atol=1e-4)
    np.testing.assert_allclose(found.xyxy[0, 2:] - found.xyxy[0, :2], [28, 28])


@pytest.mark.parametrize(("by_class", "found"), [(True, [1, 4]), (False, [4])])
def test_a_weaker_digit_beside_another_keeps_its_peak_by_class(by_class, found) -> None:
    scores = grid()
    put(scores, 3, 4, 1, 0.6)  # a narrow "1" one cell from a stronger "4"
    put(scores, 3, 5, 4, 0.95)
    detections = find_peaks(scores, GEOMETRY, BACKGROUND, 0.3, 1, by_class, pool=0)
    assert sorted(detections.class_id.tolist()) == found


def test_blank_grid_and_threshold_give_nothing() -> None:
    assert len(find_peaks(grid(), GEOMETRY, BACKGROUND, conf=0.5)) == 0
    scores = grid()
    put(scores, 2, 2, 3, 0.45)
    assert len(find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.5)) == 0
    assert len(find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.3)) == 1  # scores 0.31 pooled


def test_two_digits_two_detections() -> None:
    scores = grid()
    blob(scores, 2, 2, class_id=1)
    blob(scores, 5, 7, class_id=4)
    found = Grouping()([ScaleGrid(scores, GEOMETRY)], BACKGROUND, 0.5, (64, 80))
    assert sorted(found.class_id.tolist()) == [1, 4]


def test_plateau_is_one_detection_after_nms() -> None:
    scores = grid()
    put(scores, 3, 3, 2, 0.9)
    put(scores, 3, 4, 2, 0.9)
    assert len(find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.5)) == 2
    assert len(Grouping()([ScaleGrid(scores, GEOMETRY)], BACKGROUND, 0.5, (64, 80))) == 1


def test_refine_moves_the_box_towards_the_stronger_neighbour() -> None:
    scores = grid()
    put(scores, 3, 3, 2, 0.95)
    put(scores, 3, 4, 2, 0.8)
    put(scores, 3, 2, 2, 0.3)
    refined = find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.5, refine=1)
    plain = find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.5, refine=0)
    shift = refined.centre[0] - plain.centre[0]
    assert 0 < shift[0] <= 4  # at most half a cell, towards column 4
    assert shift[1] == pytest.approx(0.0)


def test_pooling_votes_the_class_over_neighbours() -> None:
    scores = grid()
    for dr, dc in np.ndindex(3, 3):
        put(scores, 2 + dr, 2 + dc, 5, 0.8)
    put(scores, 3, 3, 6, 0.9)  # the peak alone says 6, its neighbours say 5
    assert find_peaks(scores, GEOMETRY, BACKGROUND, 0.5, pool=0).class_id.tolist() == [6]
    assert find_peaks(scores, GEOMETRY, BACKGROUND, 0.5, pool=1).class_id.tolist() == [5]


def test_components_union_the_windows_of_connected_cells() -> None:
    scores = grid()
    put(scores, 2, 2, 3, 0.9)
    put(scores, 2, 3, 3, 0.8)
    put(scores, 3, 3, 8, 0.7)
    put(scores, 6, 8, 1, 0.9)
    found = find_components(scores, GEOMETRY, BACKGROUND, conf=0.5).sorted_by_score()
    assert found.class_id.tolist() == [1, 3]
    np.testing.assert_allclose(found.xyxy[1], [20 - 14, 20 - 14, 28 + 14, 28 + 14])


@pytest.mark.parametrize(
    ("second", "kept"),
    [
        ([2, 0, 30, 28], 1),  # IoU 0.75 > 0.3: suppressed
        ([20, 0, 48, 28], 2),  # IoU 0.17: kept
        ([-14, -14, 42, 42], 1),  # contains the first box entirely: suppressed
        ([100, 100, 128, 128], 2),  # disjoint
    ],
)
def test_nms_iou_and_containment(second, kept) -> None:
    detections = Detections(np.array([[0, 0, 28, 28], second]), np.array([1, 2]), [0.9, 0.8])
    result = nms(detections, iou=0.3, containment=0.7)
    assert len(result) == kept
    assert result.class_id[0] == 1


def strokes(height: int, width: int, rectangles: list[tuple[int, int, int, int]]) -> np.ndarray:
    """A light-on-dark image with filled rectangles (x1, y1, x2, y2, ends exclusive) of ink."""
    image = np.zeros((height, width), np.float32)
    for x1, y1, x2, y2 in rectangles:
        image[y1:y2, x1:x2] = 1.0
    return image


def at_scale(image: np.ndarray, scale: float) -> np.ndarray:
    """The image as the detector resizes it for one scale."""
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


WINDOW = np.array([[26.0, 26.0, 54.0, 54.0]])  # a 28 px window centred at (40, 40)
RING = cv2.circle(np.zeros((80, 80), np.float32), (40, 40), 12, 1.0, 2)  # hole wider than core


@pytest.mark.parametrize(
    ("image", "box", "cut", "stray"),
    [
        (strokes(80, 80, [(35, 30, 45, 51)]), [35, 30, 45, 51], False, False),  # the stroke
        (np.zeros((80, 80), np.float32), [26, 26, 54, 54], False, False),  # no ink: the window
        (strokes(80, 80, [(20, 20, 26, 26)]), [26, 26, 54, 54], False, True),  # ink off centre
        (RING, [27, 27, 54, 54], False, False),  # a "0" whose hole covers the central area
        # a bar a pixel above the stroke, outside the central area (the top of a "5"): joined
        (strokes(80, 80, [(35, 28, 50, 31), (35, 32, 45, 50)]), [35, 28, 50, 50], False, False),
        # a stroke running into its neighbour: clipped where the search ends (window + 7 px)
        (strokes(80, 80, [(36, 32, 44, 50), (44, 38, 80, 42)]), [36, 32, 61, 50], True, False),
    ],
    ids=["stroke", "blank", "off-centre", "ring", "bar", "touching"],
)
def test_ink_boxes_fit_the_digit_in_the_window(image, box, cut, stray) -> None:
    ink = ink_boxes(image, WINDOW)
    np.testing.assert_allclose(ink.boxes, [box])
    assert ink.cut.tolist() == [cut] and ink.stray.tolist() == [stray]


def test_touching_digits_share_their_ink_between_neighbouring_windows() -> None:
    # "10" written joined: a bar (x 30-34) and a ring (x 44-64) linked by a stroke at mid-height
    image = strokes(80, 100, [(30, 28, 34, 52), (34, 38, 46, 41)])
    image = np.maximum(image, cv2.circle(np.zeros_like(image), (54, 40), 10, 1.0, 2))
    windows = np.array([[18.0, 26.0, 46.0, 54.0], [40.0, 26.0, 68.0, 54.0]])  # centres 32, 54
    alone = ink_boxes(image, windows[:1])
    assert alone.boxes[0, 2] > 46 and alone.cut[0]  # on its own the bar's box runs into the 0
    ink = ink_boxes(image, windows)
    np.testing.assert_allclose(ink.boxes[:, [0, 2]], [[30, 43], [43, 66]])  # split at x = 43
    assert not ink.cut.any()  # stopping at a neighbour is not ink running out of the search
    other_row = windows + np.array([[0, 0, 0, 0], [0, 30, 0, 30]])  # a window a row lower: no stop
    assert ink_boxes(image, other_row).boxes[0, 2] == alone.boxes[0, 2]
    read = ink_boxes(image, windows, np.array([1, 0]))
    np.testing.assert_allclose(read.boxes, ink.boxes)  # a 1 and a 0: two digits
    twice = ink_boxes(image, windows, np.array([1, 1]))  # one class 22 px apart: one digit
    assert twice.boxes[0, 2] == alone.boxes[0, 2]
    pair = ink_boxes(image, windows, np.array([1, 1]), apart=0.5)  # unless they may be that close
    np.testing.assert_allclose(pair.boxes, ink.boxes)


def test_grouping_without_ink_at_the_centre_drops_the_cell() -> None:
    scores = grid()
    put(scores, 4, 4, 3, 0.9)  # cell centre (36, 36): ink only at the window's corner
    image = strokes(64, 80, [(20, 20, 25, 25)])
    assert len(Grouping()([ScaleGrid(scores, GEOMETRY)], BACKGROUND, 0.5, (64, 80))) == 1
    assert len(Grouping()([ScaleGrid(scores, GEOMETRY, image)], BACKGROUND, 0.5, (64, 80))) == 0


HALF = GridGeometry(8, 4.0, 28, scale=0.5)
QUARTER = GridGeometry(8, 4.0, 28, scale=0.25)


@pytest.mark.parametrize("inked", [False, True], ids=["windows", "ink"])
@pytest.mark.parametrize(("full_score", "half_score"), [(0.97, 0.9), (0.8, 0.95)])
def test_multi_scale_merge_keeps_one_box_per_digit(inked, full_score, half_score) -> None:
    full, half = grid(8, 10), grid(4, 5)
    blob(full, 3, 4, class_id=9)  # the digit at scale 1 (cell centre 36, 28 in frame px)
    put(full, 3, 4, 9, full_score)
    put(half, 1, 2, 9, half_score)  # the same digit seen at scale 0.5 (cell centre 40, 24)
    image = strokes(64, 80, [(30, 12, 44, 52)])  # 40 px tall: 20 at scale 0.5, in its range
    grids = [
        ScaleGrid(full, GEOMETRY, image if inked else None),
        ScaleGrid(half, HALF, at_scale(image, 0.5) if inked else None),
    ]
    both = Grouping()(grids, BACKGROUND, 0.5, (64, 80))
    assert both.class_id.tolist() == [9]
    best = max(find_peaks(g.scores, g.geometry, BACKGROUND, 0.5).score.max() for g in grids)
    assert both.score[0] == best  # the better-scored scale's reading
    if inked:
        np.testing.assert_allclose(both.xyxy[0], [30, 12, 44, 52], atol=1)


def test_a_coarse_scale_leaves_short_digits_to_the_finer_one() -> None:
    """An 18 px digit is 9 px tall at scale 0.5, under `min_height`: scale 1 reads it, even
    with the lower score; with no finer scale run, 0.5 keeps it."""
    full, half = grid(8, 10), grid(4, 5)
    put(full, 3, 4, 9, 0.8)
    put(half, 1, 2, 4, 0.95)
    image = strokes(64, 80, [(31, 18, 43, 36)])
    coarse = ScaleGrid(half, HALF, at_scale(image, 0.5))
    found = Grouping()([ScaleGrid(full, GEOMETRY, image), coarse], BACKGROUND, 0.5, (64, 80))
    assert found.class_id.tolist() == [9]
    assert Grouping()([coarse], BACKGROUND, 0.5, (64, 80)).class_id.tolist() == [4]


@pytest.mark.parametrize(("whole_score", "expected"), [(0.7, [8]), (0.4, [0, 0])])
def test_a_confident_whole_digit_drops_its_parts(whole_score, expected) -> None:
    """A ring 88 px wide: scale 1 reads two arcs of it as "0"s (their ink runs out of the
    search, so they are cut), scale 0.25 the whole of it as an "8"."""
    image = cv2.circle(np.zeros((160, 160), np.float32), (80, 80), 44, 1.0, 6)
    full, quarter = grid(20, 20), grid(5, 5)
    put(full, 9, 4, 0, 0.95)  # cell centre (36, 76), on the ring's left arc
    put(full, 9, 15, 0, 0.95)  # (124, 76), the right arc
    put(quarter, 2, 2, 8, whole_score)  # (80, 80): the ring's centre
    grids = [
        ScaleGrid(full, GEOMETRY, image),
        ScaleGrid(quarter, QUARTER, at_scale(image, 0.25)),
    ]
    found = Grouping()(grids, BACKGROUND, 0.5, (160, 160))
    assert sorted(found.class_id.tolist()) == expected
    if expected == [8]:
        np.testing.assert_allclose(found.xyxy[0], [33, 33, 127, 127], atol=4)


def test_a_coarse_box_over_two_whole_small_digits_is_dropped() -> None:
    """Scale 0.5 reads two small digits side by side as one "0"; each is whole (uncut) at 1."""
    image = strokes(80, 80, [(24, 30, 34, 60), (50, 30, 60, 60)])  # 15 px tall at 0.5
    full, half = grid(10, 10), grid(5, 5)
    put(full, 5, 3, 1, 0.9)  # cell centre (28, 44)
    put(full, 5, 7, 7, 0.85)  # (60, 44)
    put(half, 2, 2, 0, 0.95)  # (40, 40), between them: its ink box holds both
    grids = [ScaleGrid(full, GEOMETRY, image), ScaleGrid(half, HALF, at_scale(image, 0.5))]
    found = Grouping()(grids, BACKGROUND, 0.5, (80, 80))
    assert sorted(found.class_id.tolist()) == [1, 7]


def test_clip_boxes_to_frame() -> None:
    detections = Detections(np.array([[-5, -3, 30, 90]]), np.array([1]), np.array([0.9]))
    np.testing.assert_allclose(clip_boxes(detections, (64, 20)).xyxy, [[0, 0, 20, 64]])


def test_unknown_method_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="method: expected one of peaks, components, got 'x'"):
        Grouping(method="x")


def test_a_doubted_neighbour_stops_the_ink_search_but_is_no_detection() -> None:
    # a "1" (x 30-34) joined by a stroke to a ring the model doubts (score under conf)
    image = strokes(80, 100, [(30, 28, 34, 52), (34, 38, 46, 41)])
    image = np.maximum(image, cv2.circle(np.zeros_like(image), (54, 40), 10, 1.0, 2))
    one = np.array([[18.0, 26.0, 46.0, 54.0]])  # centre x 32
    doubted = Detections(np.array([[40.0, 26.0, 68.0, 54.0]]), np.array([0]), np.array([0.15]))
    assert ink_boxes(image, one).boxes[0, 2] > 46  # alone the 1's box runs into the ring
    stopped = ink_boxes(image, one, np.array([1]), doubted)
    np.testing.assert_allclose(stopped.boxes[0, [0, 2]], [30, 43])  # halfway to x 54
    scores = grid()
    put(scores, 2, 2, 1, 0.9)  # the 1's cell: centre (20, 20) at GEOMETRY
    put(scores, 2, 5, 0, 0.3)  # a doubted 0 three cells right, under conf 0.5
    image = strokes(64, 80, [(18, 8, 22, 32), (22, 18, 36, 21)])
    image = np.maximum(image, cv2.circle(np.zeros_like(image), (44, 20), 8, 1.0, 2))
    grids = [ScaleGrid(scores, GEOMETRY, image)]
    found = Grouping()(grids, BACKGROUND, 0.5, (64, 80))
    unstopped = Grouping(neighbour_conf=None)(grids, BACKGROUND, 0.5, (64, 80))
    assert found.class_id.tolist() == [1] and unstopped.class_id.tolist() == [1]
    assert found.xyxy[0, 2] == 32 and unstopped.xyxy[0, 2] == 41  # halfway to x 44; the search edge


def test_two_touching_digits_of_one_class_two_cells_apart_get_a_box_each() -> None:
    """The zeros of "00" written tightly peak two cells apart: two digits, their ink split
    halfway, where a model's windows of one class may be that close (`same_class_apart` 0.5);
    at the default 0.8 they are one digit read twice."""
    image = np.zeros((48, 80), np.float32)
    for x in (36, 52):  # rings touching at x 44, centred on cells 4 and 6 of row 2
        cv2.circle(image, (x, 20), 8, 1.0, 2)
    scores = grid()
    put(scores, 2, 4, 0, 0.9)
    put(scores, 2, 5, 0, 0.6)
    put(scores, 2, 6, 0, 0.8)
    grids = [ScaleGrid(scores, GEOMETRY, image)]
    found = Grouping(same_class_apart=0.5)(grids, BACKGROUND, 0.5, (48, 80))
    assert found.class_id.tolist() == [0, 0]
    left, right = sorted(found.xyxy.tolist())
    assert left[2] == pytest.approx(44, abs=1) and right[0] == pytest.approx(44, abs=1)
    assert Grouping()(grids, BACKGROUND, 0.5, (48, 80)).class_id.tolist() == [0]


def test_each_architecture_gets_its_own_same_class_spacing() -> None:
    assert same_class_apart("wide") == SAME_CLASS_APART_BY_ARCH["wide"] < SAME_CLASS_APART
    assert same_class_apart("basic") == same_class_apart("deep") == SAME_CLASS_APART


@pytest.mark.parametrize("seed", range(5))
def test_peaks_at_a_lower_threshold_hold_the_peaks_at_a_higher_one(seed) -> None:
    """What lets Grouping find a scale's detections and its doubted neighbours in one call:
    without smoothing or re-centring, the peaks at `conf` are those found at 0.1 scoring `conf`."""
    rng = np.random.default_rng(seed)
    scores = rng.dirichlet(np.full(11, 0.1), size=(12, 16)).astype(np.float32)
    for conf in (0.2, 0.3):
        high = find_peaks(scores, GEOMETRY, BACKGROUND, conf, radius=1, by_class=True, refine=0)
        low = find_peaks(scores, GEOMETRY, BACKGROUND, 0.1, radius=1, by_class=True, refine=0)
        kept = low[low.score >= conf]
        assert len(high) > 0
        np.testing.assert_array_equal(kept.xyxy, high.xyxy)
        np.testing.assert_array_equal(kept.class_id, high.class_id)
        np.testing.assert_array_equal(kept.score, high.score)
