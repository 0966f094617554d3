"""Grouping cells into detections: peaks + NMS (default), components, multi-scale merging."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.detections import Detections
from runtime.grid import GridGeometry
from runtime.grouping import Grouping, clip_boxes, find_components, find_peaks, nms

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
    """A digit as the detector sees it: a strong cell and weaker neighbours of mixed classes."""
    for dr, dc in np.ndindex(3, 3):
        put(scores, row + dr - 1, col + dc - 1, (class_id + dr + dc) % 10, 0.6)
    put(scores, row, col, class_id, 0.97)


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


def test_blank_grid_and_threshold_give_nothing() -> None:
    assert len(find_peaks(grid(), GEOMETRY, BACKGROUND, conf=0.5)) == 0
    scores = grid()
    put(scores, 2, 2, 3, 0.45)
    assert len(find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.5)) == 0
    assert len(find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.4)) == 1


def test_two_digits_two_detections() -> None:
    scores = grid()
    blob(scores, 2, 2, class_id=1)
    blob(scores, 5, 7, class_id=4)
    found = Grouping()([(scores, GEOMETRY)], BACKGROUND, 0.5, (64, 80))
    assert sorted(found.class_id.tolist()) == [1, 4]


def test_plateau_is_one_detection_after_nms() -> None:
    scores = grid()
    put(scores, 3, 3, 2, 0.9)
    put(scores, 3, 4, 2, 0.9)
    assert len(find_peaks(scores, GEOMETRY, BACKGROUND, conf=0.5)) == 2
    assert len(Grouping()([(scores, GEOMETRY)], BACKGROUND, 0.5, (64, 80))) == 1


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


def test_multi_scale_merge_keeps_one_box_per_digit() -> None:
    full, half = grid(8, 10), grid(4, 5)
    blob(full, 3, 4, class_id=9)
    put(half, 1, 2, 9, 0.9)  # the same digit seen at scale 0.5 (cell centre 40, 24 in frame px)
    geometry_half = GridGeometry(8, 4.0, 28, scale=0.5)
    both = Grouping()([(full, GEOMETRY), (half, geometry_half)], BACKGROUND, 0.5, (64, 80))
    assert both.class_id.tolist() == [9]


def test_clip_boxes_to_frame() -> None:
    detections = Detections(np.array([[-5, -3, 30, 90]]), np.array([1]), np.array([0.9]))
    np.testing.assert_allclose(clip_boxes(detections, (64, 20)).xyxy, [[0, 0, 20, 64]])


def test_unknown_method_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="method: expected one of peaks, components, got 'x'"):
        Grouping(method="x")
