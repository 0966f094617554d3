"""Sparse inference changes no result: scores within 1e-6 of dense inference at every pyramid
scale and the same detections, on scenes of every style, blank and full frames and odd sizes,
with ONNX Runtime and LiteRT; crops take bucketed shapes, and "auto" runs dense where crops
would not pay."""

from __future__ import annotations

import numpy as np
import pytest
from convdet.data.scenes import STYLES, SceneParams, generate_scenes
from convdet.measure.frames import full_of_digits
from convdet.runtime.crops import BUCKET_CELLS, plan_crops
from convdet.runtime.detector import Detector
from convdet.runtime.field import model_field
from convdet.runtime.shipped import sample_path
from convdet.runtime.sparse import SparseInference

MODELS = ("wide.onnx", "wide_int8.tflite", "wide_fp32.tflite")
ODD_SIZES = ((127, 333), (1, 1), (28, 28))


@pytest.fixture(scope="module", params=MODELS)
def pair(request, models_dir) -> tuple[Detector, Detector]:
    """The same model with sparse inference always on, and off."""
    if request.param.endswith(".tflite"):
        pytest.importorskip("ai_edge_litert")
    path = models_dir / request.param
    return Detector(path, sparse="on"), Detector(path, sparse="off")


@pytest.fixture(scope="module")
def frames(mnist) -> dict[str, np.ndarray]:
    """One scene of every style (320x240), the samples, a blank and a full frame, odd sizes."""
    import cv2

    images, labels = mnist["x_test"], mnist["y_test"]
    scenes = {
        style: next(generate_scenes(images, labels, SceneParams(style, 1, 3, (320, 240)))).image
        for style in STYLES
    }
    scenes["digits.png"] = cv2.imread(str(sample_path("digits.png")))
    scenes["blank"] = np.zeros((480, 640), np.uint8)
    corners = np.zeros((480, 640), np.uint8)  # digits against every edge, one in the middle
    for k, (top, left) in enumerate(((0, 0), (0, 612), (452, 0), (452, 612), (230, 300))):
        corners[top : top + 28, left : left + 28] = images[k]
    scenes["corners"] = corners
    scenes["full"] = full_of_digits(images, (320, 240))
    rng = np.random.default_rng(0)
    for height, width in ODD_SIZES:
        frame = np.zeros((height, width), np.uint8)
        frame[rng.random((height, width)) < 0.05] = 255
        scenes[f"{width}x{height}"] = frame
    return scenes


def same_detections(first, second) -> bool:
    """Equal detections, in any order: classes, boxes and scores."""
    if len(first) != len(second):
        return False
    a = np.lexsort((first.xyxy[:, 1], first.xyxy[:, 0], first.class_id))
    b = np.lexsort((second.xyxy[:, 1], second.xyxy[:, 0], second.class_id))
    return (
        np.array_equal(first.class_id[a], second.class_id[b])
        and np.allclose(first.xyxy[a], second.xyxy[b], atol=1e-4)
        and np.allclose(first.score[a], second.score[b], atol=1e-6)
    )


def test_sparse_equals_dense_on_every_frame(pair, frames) -> None:
    sparse, dense = pair
    for name, frame in frames.items():
        expected, found = dense(frame), sparse(frame)
        assert np.abs(expected.scores - found.scores).max() <= 1e-6, name
        assert same_detections(expected.detections, found.detections), name


def test_sparse_equals_dense_at_every_scale(pair, frames) -> None:
    _, dense = pair
    inference = SparseInference(dense.backend.run, model_field(dense.backend), 8, 0.0, mode="on")
    cropped = 0
    for name, frame in frames.items():
        prepared, _ = dense.preprocessor.prepare(frame)
        for scale in dense.scales_for(*prepared.shape):
            image = dense.preprocessor.model_input(prepared, scale)[0, :, :, 0].copy()
            expected = dense.backend.run(image[None, :, :, None])[0]
            found = inference(image)
            assert found.shape == expected.shape
            assert np.abs(expected - found).max() <= 1e-6, (name, scale)
            cropped += 0.0 < inference.last_coverage < 1.0
    assert cropped >= 3  # crops, not whole frames, made some of these grids


def test_a_blank_frame_runs_no_crop_and_scores_as_the_model_does(pair) -> None:
    _, dense = pair
    for height, width in ((480, 640), (40, 24), (8, 8)):
        image = np.zeros((height, width), np.float32)
        expected = dense.backend.run(image[None, :, :, None])[0]
        inference = SparseInference(dense.backend.run, model_field(dense.backend), 8, 0.0)
        found = inference(image)
        assert inference.last_coverage == 0.0
        assert np.abs(expected - found).max() <= 1e-6


def test_a_blank_grid_is_not_one_score_repeated(models_dir) -> None:
    detector = Detector(models_dir / "wide.onnx", sparse="off")
    expected = detector.backend.run(np.zeros((1, 480, 640, 1), np.float32))[0]
    corner, middle = expected[0, 0], expected[30, 40]  # the corner cell sees the padding
    assert not np.allclose(corner, middle, rtol=0.01, atol=0.0)
    assert np.array_equal(expected[30, 40], expected[20, 50])


def test_crops_take_bucketed_shapes_and_cover_every_wanted_cell() -> None:
    rng = np.random.default_rng(1)
    sides = {cells * 8 for cells in BUCKET_CELLS}
    for _ in range(50):
        wanted = rng.random((60, 80)) < 0.004
        crops = plan_crops(wanted, (-30, 44), 8)
        covered = np.zeros_like(wanted)
        for crop in crops:
            height, width = crop.shape
            assert height in sides | {480} and width in sides | {640}
            top, bottom, left, right = crop.cells
            assert crop.rows[0] <= max(0, 8 * top - 30) and crop.rows[1] >= min(
                480, 8 * bottom + 44 - 7
            )
            covered[top:bottom, left:right] = True
        assert covered[wanted].all()
        assert [crop.shape for crop in crops] == sorted(crop.shape for crop in crops)


def test_auto_runs_a_frame_full_of_digits_whole(models_dir, mnist) -> None:
    detector = Detector(models_dir / "wide.onnx")
    inference = SparseInference(detector.backend.run, model_field(detector.backend), 8, 0.0)
    prepared, _ = detector.preprocessor.prepare(full_of_digits(mnist["x_test"], (640, 480)))
    inference(detector.preprocessor.model_input(prepared)[0, :, :, 0])
    assert inference.last_coverage == 1.0


def test_bad_sparse_mode_is_a_value_error(models_dir) -> None:
    with pytest.raises(ValueError, match="sparse: expected one of auto, on, off, got 'yes'"):
        Detector(models_dir / "basic.onnx", sparse="yes")


def test_many_groups_make_one_crop_over_them_all() -> None:
    wanted = np.zeros((60, 80), bool)
    wanted[::2, ::2] = True  # 1200 cells, no two touching
    (crop,) = plan_crops(wanted, (-30, 44), 8)
    assert crop.cells == (0, 59, 0, 79) and crop.shape == (480, 640)
