"""Preprocessing: any OpenCV frame -> gray 0..1 in the model's polarity, padded to the stride."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from convdet.runtime.modelinfo import ModelInfo
from convdet.runtime.preprocess import (
    Preprocessor,
    ink_is_dark,
    normalize_lighting,
    normalize_lighting_codes,
    stride_padded,
    to_gray,
)

CLASSES = tuple([*(str(k) for k in range(10)), "background"])
INFO = ModelInfo(classes=CLASSES, background=10, stride=8, window=28, cell_offset=6.0)


def mnist_scene(digits: np.ndarray, size: tuple[int, int] = (120, 200)) -> np.ndarray:
    """Light digits on black, uint8, digits side by side along the middle row."""
    canvas = np.zeros(size, np.uint8)
    for index, digit in enumerate(digits):
        canvas[40:68, 10 + 36 * index : 38 + 36 * index] = digit
    return canvas


def paper_scene(digits: np.ndarray, seed: int = 0) -> np.ndarray:
    """Dark ink on lit paper as a BGR camera frame: gradient, noise, blur, JPEG."""
    rng = np.random.default_rng(seed)
    ink = mnist_scene(digits).astype(np.float32) / 255
    height, width = ink.shape
    light = np.linspace(0.55, 0.95, width, dtype=np.float32)[None, :].repeat(height, 0)
    image = light * (1 - 0.8 * ink) + rng.normal(0, 0.02, ink.shape).astype(np.float32)
    image = cv2.GaussianBlur(np.clip(image, 0, 1), (3, 3), 0)
    bgr = cv2.cvtColor((image * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], 1)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (np.full((4, 5), 255, np.uint8), 1.0),
        (np.full((4, 5, 1), 51, np.uint8), 0.2),
        (np.full((4, 5, 3), 65535, np.uint16), 1.0),
        (np.full((4, 5, 4), 128, np.uint8), 128 / 255),
        (np.full((4, 5, 3), 0.5, np.float32), 0.5),
        (np.full((4, 5), 0.25, np.float64), 0.25),
        (np.full((4, 5), 255.0, np.float32), 1.0),  # float frames over 1 are taken as 0..255
    ],
)
def test_to_gray_accepts_opencv_frames(frame, expected) -> None:
    gray = to_gray(frame)
    assert gray.shape == (4, 5)
    assert gray.dtype == np.float32
    np.testing.assert_allclose(gray, expected, atol=1e-2)


def test_to_gray_weighs_bgr_channels_like_opencv() -> None:
    frame = np.zeros((2, 2, 3), np.uint8)
    frame[..., 2] = 255  # pure red
    np.testing.assert_allclose(to_gray(frame), 0.299, atol=0.01)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ([[0, 1]], "expected a numpy array, got list"),
        (np.zeros((0, 5), np.uint8), r"expected a non-empty image, got shape \(0, 5\)"),
        (np.zeros((4, 5, 2), np.uint8), r"expected shape .*, got \(4, 5, 2\)"),
        (np.zeros((2, 4, 5, 3), np.uint8), r"got \(2, 4, 5, 3\)"),
        (np.zeros((4, 5), np.int32), "expected dtype uint8, uint16 or float, got int32"),
    ],
)
def test_to_gray_rejects_bad_frames(frame, message) -> None:
    with pytest.raises(ValueError, match=message):
        to_gray(frame)


def test_polarity_auto_detects_both_styles(mnist) -> None:
    digits = mnist["x_test"][:5]
    assert not ink_is_dark(to_gray(mnist_scene(digits)))
    assert ink_is_dark(to_gray(paper_scene(digits)))
    assert ink_is_dark(to_gray(255 - mnist_scene(digits)))
    # Blank frames fall back to the background level.
    assert ink_is_dark(np.full((60, 80), 0.8, np.float32))
    assert not ink_is_dark(np.full((60, 80), 0.1, np.float32))


@pytest.mark.parametrize(
    ("invert", "paper", "inverted"),
    [("auto", False, False), ("auto", True, True), ("on", False, True), ("off", True, False)],
)
def test_preprocessor_invert_modes(mnist, invert, paper, inverted) -> None:
    digits = mnist["x_test"][:5]
    frame = paper_scene(digits) if paper else mnist_scene(digits)
    image, was_inverted = Preprocessor(INFO, invert=invert).prepare(frame)
    assert was_inverted == inverted
    if not inverted:
        assert image.mean() == pytest.approx(to_gray(frame).mean(), abs=1e-6)
    else:
        assert image.mean() == pytest.approx(1 - to_gray(frame).mean(), abs=1e-6)


def test_auto_inversion_puts_paper_digits_in_mnist_polarity(mnist) -> None:
    digits = mnist["x_test"][:5]
    image, _ = Preprocessor(INFO, normalize=True).prepare(paper_scene(digits))
    strokes = mnist_scene(digits) > 128
    assert image[strokes].mean() > 0.5
    assert image[~strokes].mean() < 0.15


def test_normalize_lighting_flattens_a_gradient(mnist) -> None:
    digits = mnist["x_test"][:5]
    ink = mnist_scene(digits).astype(np.float32) / 255
    lit = ink * 0.4 + np.linspace(0.0, 0.5, ink.shape[1], dtype=np.float32)[None, :]
    flat = normalize_lighting(lit, 28)
    assert flat[ink == 0].max() < 0.1  # background gradient gone
    assert flat[ink > 0.5].mean() > 0.6  # strokes stretched from 0.4 towards 1


def test_normalize_does_not_amplify_noise_on_a_blank_frame() -> None:
    noise = np.random.default_rng(0).normal(0.3, 0.02, (60, 80)).astype(np.float32)
    assert normalize_lighting(noise, 28).max() < 0.4


@pytest.mark.parametrize("gain", [0.3, 0.9])  # the stroke level below and above _MIN_INK
def test_uint8_normalization_equals_the_float_one(mnist, gain) -> None:
    ink = mnist_scene(mnist["x_test"][:5]).astype(np.float32) * gain
    lit = ink + np.linspace(0.0, 100.0, ink.shape[1], dtype=np.float32)[None, :]
    codes = np.clip(np.round(lit), 0, 255).astype(np.uint8)
    expected = normalize_lighting(codes.astype(np.float32) / 255, 28)
    np.testing.assert_allclose(normalize_lighting_codes(codes, 28), expected, atol=1e-5)


@pytest.mark.parametrize("scene", [mnist_scene, paper_scene])
def test_uint8_and_float_frames_prepare_alike(mnist, scene) -> None:
    frame = scene(mnist["x_test"][:5])
    preprocessor = Preprocessor(INFO, normalize=True)
    from_uint8, inverted = preprocessor.prepare(frame)
    from_float, inverted_float = preprocessor.prepare(frame.astype(np.float32) / 255)
    assert inverted == inverted_float
    np.testing.assert_allclose(from_uint8, from_float, atol=1e-5)


def test_invert_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="invert: expected one of auto, on, off, got 'yes'"):
        Preprocessor(INFO, invert="yes")


def test_model_input_pads_to_stride_and_reuses_its_buffer() -> None:
    preprocessor = Preprocessor(INFO)
    first = preprocessor.model_input(np.ones((21, 30), np.float32))
    assert first.shape == (1, 24, 32, 1)
    assert first[0, :21, :30].min() == 1.0
    assert first[0, 21:].max() == 0.0 and first[0, :, 30:].max() == 0.0
    second = preprocessor.model_input(np.full((17, 25), 0.5, np.float32))
    assert second is first  # same padded size: same buffer, old content cleared
    assert second[0, :17, :25].min() == 0.5
    assert second[0, 17:].max() == 0.0 and second[0, :, 25:].max() == 0.0


def test_stride_padding_keeps_the_window_at_the_top_left() -> None:
    windows = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    padded = stride_padded(windows, 8, fill=0.25)
    assert padded.shape == (3, 32, 32, 1) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:, :28, :28, 0], windows)
    assert (padded[:, 28:] == 0.25).all() and (padded[:, :, 28:] == 0.25).all()
    assert stride_padded(windows[:, :24, :16], 8).shape == (3, 24, 16, 1)  # multiples stay


@pytest.mark.parametrize("padded, side", [(False, 28), (True, 32)])
def test_classifier_windows_are_read_as_the_model_was_trained(padded, side) -> None:
    dark_ink = replace(INFO, polarity="dark-on-light", classifier_padded=padded)
    windows = np.zeros((2, 28, 28), np.float32)
    batch = Preprocessor(dark_ink).windows(windows)
    assert batch.shape == (2, side, side, 1)
    assert (batch[:, 28:] == 1.0).all()  # padding is the model's background: white paper


def test_model_input_scales_and_fits_fixed_sizes() -> None:
    preprocessor = Preprocessor(INFO)
    assert preprocessor.model_input(np.ones((40, 64), np.float32), 0.5).shape == (1, 24, 32, 1)
    assert preprocessor.model_input(np.ones((40, 64), np.float32), 2.0).shape == (1, 80, 128, 1)
    fixed = preprocessor.model_input(np.ones((40, 64), np.float32), size=(48, 64))
    assert fixed.shape == (1, 48, 64, 1)
    with pytest.raises(ValueError, match=r"expected at most 32x32 pixels .* got 40x64"):
        preprocessor.model_input(np.ones((40, 64), np.float32), size=(32, 32))


def test_scaled_returns_the_image_itself_at_scale_one() -> None:
    image = np.ones((40, 64), np.float32)
    assert Preprocessor.scaled(image, 1.0) is image
    assert Preprocessor.scaled(image, 0.5).shape == (20, 32)


def test_strokes_are_light_on_dark_in_unit_range() -> None:
    image = np.array([[0.0, 0.25, 1.0]], np.float32)
    assert Preprocessor(INFO).strokes(image) is image  # the shipped models' form: no copy
    dark = Preprocessor(replace(INFO, polarity="dark-on-light", input_range=(-1.0, 1.0)))
    strokes = dark.strokes(np.array([[1.0, 0.0, -1.0]], np.float32))  # paper, grey, ink
    np.testing.assert_allclose(strokes, [[0.0, 0.5, 1.0]])


def test_a_tiny_frame_at_a_small_scale_keeps_one_pixel() -> None:
    from convdet.runtime.preprocess import Preprocessor

    assert Preprocessor.scaled(np.ones((1, 1), np.float32), 0.25).shape == (1, 1)
    assert Preprocessor.scaled(np.ones((3, 200), np.float32), 0.1).shape == (1, 20)


def test_padded_windows_are_in_the_metadata_only_when_true() -> None:
    assert "classifier_padded" not in INFO.to_metadata()  # files exported before keep their bytes
    padded = replace(INFO, classifier_padded=True)
    assert padded.to_metadata()["classifier_padded"] == "true"
    assert ModelInfo.from_metadata(padded.to_metadata()).classifier_padded is True
    assert ModelInfo.from_metadata(INFO.to_metadata()).classifier_padded is False
