"""Detections: construction checks, subsets, concatenation, JSON records and the supervision
adapter (round trip, its annotators drawing them, the message when it is missing)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from convdet.runtime.detections import Detections


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


LABELS = (*(str(k) for k in range(10)), "background")


def test_supervision_round_trip_keeps_boxes_scores_classes_and_names() -> None:
    sv = pytest.importorskip("supervision")
    ours = Detections([[10.5, 4, 38.5, 32], [40, 8, 68, 36]], [3, 7], [0.95, 0.61])
    theirs = ours.to_supervision(LABELS)
    assert isinstance(theirs, sv.Detections) and len(theirs) == 2
    np.testing.assert_array_equal(theirs.xyxy, ours.xyxy)
    np.testing.assert_array_equal(theirs.confidence, ours.score)
    assert theirs.class_id.tolist() == [3, 7]
    assert theirs.data["class_name"].tolist() == ["3", "7"]
    assert theirs[theirs.confidence > 0.9].data["class_name"].tolist() == ["3"]  # data follows
    back = Detections.from_supervision(theirs)
    for name in ("xyxy", "class_id", "score"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ours, name))
        assert getattr(back, name).dtype == getattr(ours, name).dtype
    named = Detections([[0, 0, 8, 8]], [1], [0.5]).to_supervision(("cat", "dog"))
    assert named.data["class_name"].tolist() == ["dog"]
    assert len(Detections.empty().to_supervision()) == 0


def test_from_supervision_takes_ground_truth_and_refuses_what_it_cannot_read() -> None:
    sv = pytest.importorskip("supervision")
    truth = sv.Detections(xyxy=np.array([[0.0, 0, 8, 8]]), class_id=np.array([4]))
    assert Detections.from_supervision(truth).score.tolist() == [1.0]
    with pytest.raises(ValueError, match="no class_id"):
        Detections.from_supervision(sv.Detections(xyxy=np.array([[0.0, 0, 8, 8]])))
    with pytest.raises(TypeError, match=r"expected supervision\.Detections, got Detections$"):
        Detections.from_supervision(make(1))


def test_supervision_annotators_draw_the_converted_detections() -> None:
    sv = pytest.importorskip("supervision")
    ours = Detections([[20, 30, 48, 58], [100, 30, 128, 58]], [3, 8], [0.97, 0.88])
    theirs = ours.to_supervision([f"digit {k}" for k in range(10)])
    scene = np.full((100, 160, 3), 60, np.uint8)
    boxed = sv.BoxAnnotator(thickness=1).annotate(scene.copy(), theirs)
    changed = (boxed != 60).any(axis=2)
    assert changed[30, 20:49].all() and changed[58, 100:129].all()  # top and bottom edges
    assert not changed[32:57, 22:47].any() and not changed[:, 50:98].any()
    # The label annotator writes the class names it finds in data (not the class ids).
    labelled = sv.LabelAnnotator().annotate(scene.copy(), theirs)
    given = sv.LabelAnnotator().annotate(scene.copy(), theirs, labels=["digit 3", "digit 8"])
    np.testing.assert_array_equal(labelled, given)
    ids = sv.LabelAnnotator().annotate(scene.copy(), theirs, labels=["3", "8"])
    assert (labelled != ids).any()


def test_a_missing_supervision_is_one_line_naming_the_pip_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "supervision", None)  # `import supervision` now fails
    with pytest.raises(ModuleNotFoundError) as error:
        make(1).to_supervision()
    assert str(error.value) == (
        "Detections.to_supervision needs supervision, which is not installed: "
        "pip install supervision"
    )
    assert error.value.name == "supervision"
