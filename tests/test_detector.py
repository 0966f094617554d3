"""Detector end to end on the shipped default-architecture model: known places, blank frames,
both polarities, multi-scale, batching, errors, and a run without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from runtime import Detector, Result, default_model_path
from runtime.models import DEFAULT_ARCH

DIGITS_PER_CLASS = 1


@pytest.fixture(scope="module")
def detector(models_dir) -> Detector:
    return Detector(models_dir / f"{DEFAULT_ARCH}.onnx")


@pytest.fixture(scope="module")
def samples(mnist) -> list[tuple[np.ndarray, int]]:
    """The first test digit of each class."""
    labels = mnist["y_test"]
    return [(mnist["x_test"][np.flatnonzero(labels == k)[0]], k) for k in range(10)]


def place(canvas: np.ndarray, digit: np.ndarray, centre: tuple[float, float], size: int = 28):
    """Paste `digit` resized to `size` px with its centre at (x, y) (rounded to whole pixels)."""
    if size != digit.shape[0]:
        import cv2

        digit = cv2.resize(digit, (size, size), interpolation=cv2.INTER_LINEAR)
    left, top = round(centre[0] - size / 2), round(centre[1] - size / 2)
    canvas[top : top + size, left : left + size] = np.maximum(
        canvas[top : top + size, left : left + size], digit
    )


def hits(result: Result, centres: list[tuple[float, float]], classes: list[int], size=28):
    """How many digits have a detection of their class centred inside their box grown by 30%
    (the evaluation's matching rule)."""
    found = result.detections
    reach = 0.65 * size
    count = 0
    for (x, y), label in zip(centres, classes, strict=True):
        near = np.abs(found.centre - [x, y]).max(axis=1) <= reach
        count += bool((near & (found.class_id == label)).any())
    return count


def test_digit_at_a_known_cell_fires_that_cell(detector, samples) -> None:
    info = detector.info
    row, col = 4, 5
    centre = info.cell_centre(col), info.cell_centre(row)
    correct_cells = correct_detections = 0
    for digit, label in samples:
        frame = np.zeros((96, 112), np.uint8)
        place(frame, digit, centre)
        result = detector(frame)
        correct_cells += result.cell_class[row, col] == label
        correct_detections += hits(result, [centre], [label])
        assert len(result.detections) <= 2, f"digit {label}: {result.detections}"
    assert correct_cells >= 8, f"{correct_cells}/10 digits classified at their cell"
    assert correct_detections >= 8, f"{correct_detections}/10 digits detected where placed"


def test_scene_of_digits(detector, mnist) -> None:
    frame = np.zeros((160, 320), np.uint8)
    centres = [(40 + 60 * (k % 5), 45 + 70 * (k // 5)) for k in range(10)]
    for k, centre in enumerate(centres):
        place(frame, mnist["x_test"][k], centre)
    classes = mnist["y_test"][:10].tolist()
    result = detector(frame)
    assert hits(result, centres, classes) >= 8
    assert len(result.detections) <= 12
    assert result.scores.shape == (20, 40, len(detector.labels))
    assert result.cell_class.shape == (20, 40)
    assert result.frame_shape == (160, 320)
    assert set(result.timings) == {"preprocess", "infer", "decode"}
    assert all(ms >= 0 for ms in result.timings.values())


@pytest.mark.parametrize("value", [0, 255, 128])
def test_blank_frames_give_no_detections(detector, value) -> None:
    for frame in (np.full((120, 160), value, np.uint8), np.full((120, 160, 3), value, np.uint8)):
        assert len(detector(frame).detections) == 0


def test_both_polarities(detector, mnist) -> None:
    frame = np.zeros((100, 200), np.uint8)
    centres = [(40, 50), (100, 50), (160, 50)]
    for k, centre in enumerate(centres):
        place(frame, mnist["x_test"][k], centre)
    classes = mnist["y_test"][:3].tolist()
    light = detector(frame)
    # Dark ink on unevenly lit paper, as a BGR camera frame.
    lighting = np.linspace(140, 240, 200)[None, :]
    paper = np.clip(lighting * (1 - 0.8 * frame / 255.0), 0, 255).astype(np.uint8)
    dark = detector(np.dstack([paper] * 3))
    assert not light.inverted and dark.inverted
    assert hits(light, centres, classes) == 3
    assert hits(dark, centres, classes) >= 2


def test_multi_scale_finds_large_digits(models_dir, mnist) -> None:
    frame = np.zeros((160, 240), np.uint8)
    centres = [(60, 80), (180, 80)]
    for k, centre in enumerate(centres):
        place(frame, mnist["x_test"][k], centre, size=56)
    classes = mnist["y_test"][:2].tolist()
    multi = Detector(models_dir / f"{DEFAULT_ARCH}.onnx", scales=(0.5, 1.0))(frame)
    assert hits(multi, centres, classes, size=56) == 2
    large = multi.detections.xyxy[:, 2] - multi.detections.xyxy[:, 0]
    assert (large >= 50).any()  # boxes from the 0.5 scale map back to input pixels


def test_batch_matches_single_frames(detector, mnist) -> None:
    frames = [np.zeros((64, 96), np.uint8) for _ in range(3)] + [np.zeros((40, 40), np.uint8)]
    for k, frame in enumerate(frames):
        place(frame, mnist["x_test"][k], (20 + 2 * k, 20))
    batched = detector.detect_batch(frames)
    for frame, result in zip(frames, batched, strict=True):
        single = detector(frame)
        np.testing.assert_allclose(result.scores, single.scores, atol=1e-5)
        assert result.detections.class_id.tolist() == single.detections.class_id.tolist()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (None, "frame: expected a numpy array, got NoneType"),
        (np.zeros((0, 0, 3), np.uint8), r"expected a non-empty image, got shape \(0, 0, 3\)"),
        (np.zeros((10, 10, 2), np.uint8), r"got \(10, 10, 2\)"),
        (np.zeros(10, np.uint8), r"got \(10,\)"),
        (np.zeros((10, 10), np.int64), "got int64"),
    ],
)
def test_bad_frames_are_value_errors(detector, frame, message) -> None:
    with pytest.raises(ValueError, match=message):
        detector(frame)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scales": ()}, "scales: expected one or more positive numbers"),
        ({"scales": (1.0, 0)}, "scales: expected one or more positive numbers"),
        ({"conf": 1.5}, r"conf: expected a probability in 0..1, got 1.5"),
        ({"invert": "maybe"}, "invert: expected one of auto, on, off"),
    ],
)
def test_bad_options_are_value_errors(models_dir, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        Detector(models_dir / f"{DEFAULT_ARCH}.onnx", **options)


def test_default_model_is_shipped() -> None:
    path = default_model_path()
    assert path.is_file(), f"default model {path} is missing"
    assert Detector().model_path == path


def test_runtime_runs_without_tensorflow(models_dir) -> None:
    """`import runtime` and a full detection load neither TensorFlow, Keras nor tf2onnx."""
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        import runtime
        frame = np.zeros((64, 64, 3), np.uint8)
        frame[18:46, 18:46] = 255
        for model in ({str(models_dir / f"{DEFAULT_ARCH}.onnx")!r},
                      {str(models_dir / f"{DEFAULT_ARCH}_int8.tflite")!r}):
            result = runtime.Detector(model)(frame)
            runtime.GridAnnotator().annotate(frame.copy(), result)
        heavy = sorted({{name.split(".")[0] for name in sys.modules}}
                       & {{"tensorflow", "keras", "tf2onnx", "tf_keras"}})
        print(json.dumps(heavy))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
