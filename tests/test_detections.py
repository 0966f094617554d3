"""Detections: construction checks, subsets, concatenation and JSON records."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.detections import Detections


def make(count: int) -> Detections:
    boxes = np.array([[10 * k, 0, 10 * k + 8, 8] for k in range(count)], np.float64).reshape(-1, 4)
    return Detections(boxes, np.arange(count), np.linspace(0.9, 0.5, count))


@pytest.mark.parametrize(
    ("xyxy", "class_id", "score", "message"),
    [
        (np.zeros((2, 4)), np.zeros(2), np.zeros(2), None),
        (
            np.zeros((2, 3)),
            np.zeros(2),
            np.zeros(2),
            r"xyxy: expected shape \(N, 4\), got \(2, 3\)",
        ),
        (np.zeros(4), np.zeros(1), np.zeros(1), r"xyxy: expected shape \(N, 4\), got \(4,\)"),
        (
            np.zeros((2, 4)),
            np.zeros(3),
            np.zeros(2),
            r"class_id: expected shape \(2,\), got \(3,\)",
        ),
        (np.zeros((2, 4)), np.zeros(2), np.zeros((2, 1)), r"score: expected shape \(2,\)"),
    ],
)
def test_construction_checks_shapes(xyxy, class_id, score, message) -> None:
    if message is None:
        detections = Detections(xyxy, class_id, score)
        assert detections.xyxy.dtype == np.float32
        assert detections.class_id.dtype == np.int64
        assert detections.score.dtype == np.float32
    else:
        with pytest.raises(ValueError, match=message):
            Detections(xyxy, class_id, score)


def test_empty_and_len() -> None:
    assert len(Detections.empty()) == 0
    assert Detections.empty().xyxy.shape == (0, 4)
    assert len(make(3)) == 3


def test_subsets_and_sorting() -> None:
    detections = make(4)
    assert detections[detections.score > 0.7].class_id.tolist() == [0, 1]
    assert detections[2].class_id.tolist() == [2]
    assert detections[1:3].class_id.tolist() == [1, 2]
    shuffled = detections[np.array([2, 0, 3, 1])]
    assert shuffled.sorted_by_score().class_id.tolist() == [0, 1, 2, 3]


def test_concatenate_keeps_order() -> None:
    merged = Detections.concatenate([make(2), Detections.empty(), make(1)])
    assert merged.class_id.tolist() == [0, 1, 0]
    assert len(Detections.concatenate([])) == 0


def test_area_centre_and_records() -> None:
    detections = Detections(np.array([[10, 20, 30, 60]]), np.array([7]), np.array([0.976]))
    assert detections.area.tolist() == [800.0]
    assert detections.centre.tolist() == [[20.0, 40.0]]
    labels = tuple(str(k) for k in range(10))
    record = detections.to_records(labels)
    assert record == [
        {"class_id": 7, "label": "7", "score": 0.976, "box": [10.0, 20.0, 30.0, 60.0]}
    ]
