"""Int8 parity is judged on the detections and on digit cells pooled over every parity scene,
float parity per scene."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from convdet.data.scenes import SceneParams, generate_scenes
from convdet.export.parity import (
    INT8_AGREEMENT,
    INT8_DETECTION_AGREEMENT,
    PARITY_MAX_DIGITS,
    PARITY_SIZES,
    DetectionAgreement,
    check_parity,
    detection_agreement,
    opencv_engines,
    parity_scenes,
)

BACKGROUND = 10
STRIDE = 8


def scores_with_digits(cells: int, shape: tuple[int, int] = (10, 10)) -> np.ndarray:
    """A (1, H, W, 11) grid whose first `cells` cells say 3, the rest background."""
    grid = np.zeros((1, *shape, 11), np.float32)
    grid[..., BACKGROUND] = 1.0
    flat = grid.reshape(-1, 11)
    flat[:cells] = 0.0
    flat[:cells, 3] = 1.0
    return grid


def flip_first(grid: np.ndarray, count: int) -> np.ndarray:
    """The grid with its first `count` digit cells read as 4 instead."""
    flipped = grid.copy().reshape(-1, 11)
    flipped[:count, 3], flipped[:count, 4] = 0.0, 1.0
    return flipped.reshape(grid.shape)


def test_one_borderline_cell_in_a_small_scene_does_not_fail_int8_when_pooled() -> None:
    scenes = [np.full((10, 10), float(cells), np.float32) for cells in (20, 60, 60)]

    def reference(batch: np.ndarray) -> np.ndarray:
        return scores_with_digits(int(batch[0, 0, 0, 0]))

    def int8(batch: np.ndarray) -> np.ndarray:  # 3 cells of the small scene disagree (85%)
        cells = int(batch[0, 0, 0, 0])
        return flip_first(scores_with_digits(cells), 3 if cells == 20 else 0)

    rows = check_parity(reference, {"litert m_int8.tflite": int8}, scenes, BACKGROUND, STRIDE)
    assert rows[0].digit_cell_agreement == 0.85 < INT8_AGREEMENT
    assert all(row.passed for row in rows)  # 137 of 140 cells agree: 97.9%


def test_int8_fails_everywhere_when_the_pooled_agreement_is_low() -> None:
    scenes = [np.zeros((10, 10), np.float32)] * 3

    def reference(batch: np.ndarray) -> np.ndarray:
        return scores_with_digits(50)

    def int8(batch: np.ndarray) -> np.ndarray:
        return flip_first(scores_with_digits(50), 6)  # 88% in every scene

    rows = check_parity(reference, {"litert m_int8.tflite": int8}, scenes, BACKGROUND, STRIDE)
    assert not any(row.passed for row in rows)


def test_int8_fails_a_scene_below_its_floor_even_when_the_pool_is_fine() -> None:
    scenes = [np.full((10, 10), float(cells), np.float32) for cells in (10, 100, 100, 100)]

    def reference(batch: np.ndarray) -> np.ndarray:
        return scores_with_digits(int(batch[0, 0, 0, 0]))

    def int8(batch: np.ndarray) -> np.ndarray:  # the small scene: 7 of 10 (70%); pool 99.0%
        cells = int(batch[0, 0, 0, 0])
        return flip_first(scores_with_digits(cells), 3 if cells == 10 else 0)

    rows = check_parity(reference, {"litert m_int8.tflite": int8}, scenes, BACKGROUND, STRIDE)
    assert [row.passed for row in rows] == [False, True, True, True]


def test_float_rows_stay_judged_scene_by_scene() -> None:
    scenes = [np.zeros((10, 10), np.float32), np.ones((10, 10), np.float32)]

    def reference(batch: np.ndarray) -> np.ndarray:
        return scores_with_digits(30)

    def onnx(batch: np.ndarray) -> np.ndarray:
        return scores_with_digits(30) + (1e-3 if batch.max() > 0 else 0.0)

    rows = check_parity(reference, {"onnxruntime m.onnx": onnx}, scenes, BACKGROUND, STRIDE)
    assert [row.passed for row in rows] == [True, False]


def test_scenes_run_padded_to_the_stride_as_the_runtime_pads_frames() -> None:
    seen: list[tuple[int, ...]] = []

    def reference(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape)
        assert batch[0, 10:].max() == 0 and batch[0, :, 13:].max() == 0  # padded with background
        return scores_with_digits(5)

    scene = np.ones((10, 13), np.float32)
    (row,) = check_parity(reference, {"onnxruntime m.onnx": reference}, [scene], BACKGROUND, STRIDE)
    assert seen == [(1, 16, 16, 1)] * 2 and row.size == (10, 13) and row.passed


def test_large_parity_scenes_hold_enough_digits_to_judge_int8(mnist) -> None:
    # About 45 digits each on the two large sizes (12 a scene before): with the smaller sizes
    # some 230 digit cells pooled, so one disagreeing int8 cell is under half a point.
    images, labels = mnist["x_test"], mnist["y_test"]
    placed = 0
    for height, width in PARITY_SIZES[-2:]:
        params = SceneParams(
            "mnist", count=1, seed=0, size=(width, height), max_digits=PARITY_MAX_DIGITS
        )
        (scene,) = generate_scenes(images, labels, params)
        placed += len(scene.truth.classes)
    assert placed >= 80


def test_detection_agreement_is_the_dice_of_the_two_sets_against_its_bar() -> None:
    assert DetectionAgreement("litert m_int8.tflite", 0, 0, 0).f1 == 1.0
    close = DetectionAgreement("litert m_int8.tflite", 100, 99, 98)  # 196 / 199
    assert close.f1 > INT8_DETECTION_AGREEMENT and close.passed
    extra = DetectionAgreement("litert m_int8.tflite", 100, 105, 100)  # 5 false ones: 97.6%
    assert extra.f1 < INT8_DETECTION_AGREEMENT and not extra.passed
    assert "FAILED" in DetectionAgreement("litert m_int8.tflite", 100, 90, 90).describe()


def test_detection_agreement_tells_a_file_from_a_different_model(mnist, models_dir) -> None:
    scenes = parity_scenes(mnist["x_test"], mnist["y_test"])[1:4]
    same = detection_agreement(models_dir / "deep.onnx", models_dir / "deep_fp32.tflite", scenes)
    assert same.reference > 40 and same.matched == same.reference == same.candidate
    other = detection_agreement(models_dir / "deep.onnx", models_dir / "basic.onnx", scenes)
    assert other.reference == same.reference and not other.passed


def test_opencv_engines_follow_what_the_installed_opencv_offers(monkeypatch: pytest.MonkeyPatch):
    """OpenCV 4 and 5.1: one default engine, for every graph. OpenCV 5.0: the classic engine
    always, its new default one only where the graph has explicit pads."""
    monkeypatch.delattr(cv2.dnn, "ENGINE_CLASSIC", raising=False)
    assert opencv_engines(explicit_pads=False) == {"opencv-dnn": None}
    assert opencv_engines(explicit_pads=True) == {"opencv-dnn": None}
    monkeypatch.setattr(cv2.dnn, "ENGINE_CLASSIC", 1, raising=False)
    assert opencv_engines(explicit_pads=False) == {"opencv-dnn-classic": 1}
    assert opencv_engines(explicit_pads=True) == {"opencv-dnn-classic": 1, "opencv-dnn": None}
