"""The second look (`Recheck`): crops normalized as MNIST digits, detections the crop calls
background dropped, classes the crop is sure of taken; the same on ONNX Runtime and LiteRT."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from convdet.runtime.detections import Detections
from convdet.runtime.detector import Detector
from convdet.runtime.grid import GridGeometry
from convdet.runtime.grouping import ScaleGrid
from convdet.runtime.recheck import INK_SIDE, SIDE, Recheck, normalized_crop
from convdet.runtime.shipped import DEFAULT_ARCH

BACKGROUND = 10
GEOMETRY = GridGeometry(stride=8, cell_offset=6.0, window=28)


def test_a_crop_is_20_px_on_its_longer_side_with_its_mass_at_the_centre() -> None:
    strokes = np.zeros((100, 100), np.float32)
    cv2.ellipse(strokes, (40, 30), (10, 20), 0, 0, 360, 0.8, 3)  # a "0", 40 x 20 px of ink
    cv2.line(strokes, (38, 40), (42, 50), 1.0, 3)  # with a brighter stroke low down
    rows, cols = np.nonzero(strokes)
    box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32)
    crop = normalized_crop(strokes, box)
    assert crop is not None and crop.shape == (SIDE, SIDE)
    rows, cols = np.nonzero(crop > 0.05)
    assert rows.max() - rows.min() + 1 == INK_SIDE
    assert cols.max() - cols.min() + 1 < INK_SIDE  # aspect kept: narrower than tall
    moments = cv2.moments(crop)
    centre = (moments["m10"] / moments["m00"], moments["m01"] / moments["m00"])
    np.testing.assert_allclose(centre, (SIDE / 2, SIDE / 2), atol=1.0)
    assert crop.max() == pytest.approx(1.0) and crop.min() == 0.0


def test_a_box_without_ink_gives_no_crop() -> None:
    assert normalized_crop(np.zeros((50, 50), np.float32), np.array([5.0, 5.0, 30.0, 30.0])) is None
    assert (
        normalized_crop(np.ones((50, 50), np.float32), np.array([60.0, 60.0, 70.0, 70.0])) is None
    )


def test_recheck_drops_background_crops_and_takes_sure_classes() -> None:
    strokes = np.zeros((64, 200), np.float32)
    boxes = np.array([[10, 10, 30, 40], [60, 10, 80, 40], [110, 10, 130, 40], [160, 10, 180, 40]])
    for x0, y0, x1, y1 in boxes:
        strokes[y0 + 2 : y1 - 2, x0 + 8 : x1 - 8] = 1.0
    detections = Detections(boxes.astype(np.float32), np.array([1, 2, 3, 4]), np.full(4, 0.6))
    answers = np.full((4, 11), 0.01, np.float32)
    answers[0, BACKGROUND] = 0.9  # background: dropped
    answers[1, 7] = 0.995  # sure of a 7: relabelled
    answers[2, 5] = 0.95  # not sure enough to overrule the grid: kept as it was
    answers[3, 4] = 0.9  # agrees
    seen: list[np.ndarray] = []

    def classify(crops: np.ndarray) -> np.ndarray:
        seen.append(crops)
        return answers[: len(crops)]

    grids = [ScaleGrid(np.zeros((8, 25, 11), np.float32), GEOMETRY, strokes)]
    checked = Recheck()(detections, grids, classify, BACKGROUND)
    assert len(seen) == 1 and seen[0].shape == (4, SIDE, SIDE)  # one batch per frame
    assert checked.class_id.tolist() == [7, 3, 4]
    np.testing.assert_array_equal(checked.xyxy, boxes[1:])


def test_without_scale_images_detections_stay() -> None:
    detections = Detections(np.array([[0, 0, 28, 28]], np.float32), np.array([3]), np.array([0.5]))
    grids = [ScaleGrid(np.zeros((4, 4, 11), np.float32), GEOMETRY, None)]
    assert Recheck()(detections, grids, lambda crops: 1 / 0, BACKGROUND) is detections


@pytest.mark.litert
def test_the_second_look_agrees_across_backends_and_keeps_clean_digits(models_dir) -> None:
    frame = cv2.imread(str(models_dir.parent / "samples" / "digits.png"))
    onnx = Detector(models_dir / f"{DEFAULT_ARCH}.onnx")
    litert = Detector(models_dir / f"{DEFAULT_ARCH}_fp32.tflite")
    plain = Detector(models_dir / f"{DEFAULT_ARCH}.onnx", recheck=False)
    assert onnx.recheck is not None and plain.recheck is None
    first, second, without = onnx(frame), litert(frame), plain(frame)
    assert first.detections.class_id.tolist() == second.detections.class_id.tolist()
    np.testing.assert_allclose(first.detections.xyxy, second.detections.xyxy, atol=0.5)
    # MNIST digits on black are what the classifier learnt: the second look keeps every one
    assert len(first.detections) == len(without.detections) >= 8
    crops = np.zeros((3, SIDE, SIDE), np.float32)
    probabilities = onnx._classify(crops)
    assert probabilities.shape == (3, 11)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
