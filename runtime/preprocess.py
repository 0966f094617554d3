"""Frames as OpenCV gives them -> the model's input: gray float32 in the model's polarity and range.

Steps: gray 0..1 (any of BGR/BGRA/gray, uint8/uint16/float; uint16 by the depth its data uses)
-> polarity (the model's, from its metadata; `invert` "auto" decides per frame) -> optional
lighting normalization -> resize by a scale -> pad bottom/right to a multiple of the model's
stride with the background value 0.
"""

from __future__ import annotations

import cv2
import numpy as np
from convdet.runtime.defaults import INVERT_MODES
from convdet.runtime.errors import ConvdetError, OptionError
from convdet.runtime.grid import round_up
from convdet.runtime.modelinfo import ModelInfo


def stride_padded(images: np.ndarray, stride: int, fill: float = 0.0) -> np.ndarray:
    """(N, H, W) images padded bottom/right with `fill` to sides that are multiples of
    `stride`, as (N, H', W', 1) float32, as the runtime pads frames. On such inputs every
    layer's map has sides divisible by its stride, where a graph with explicit padding and
    TensorFlow's 'same' padding agree (a lone 28x28 window's 7x7 map is padded on both sides)."""
    count, height, width = images.shape
    shape = (count, round_up(height, stride), round_up(width, stride), 1)
    batch = np.full(shape, fill, np.float32)
    batch[:, :height, :width, 0] = images
    return batch


class FrameError(ConvdetError, ValueError):
    """A frame the detector cannot take (its type, shape or dtype, or a size a fixed-size model
    does not fit), said in one line: that frame's failure, not the run's."""


# Sampling step for the per-frame polarity statistics: a fraction of the pixels is plenty.
_STATS_STEP = 2
# |skewness| of the high-passed frame below which the ink side is undecided (blank-ish frames).
_SKEW_MARGIN = 0.5
# Normalization never amplifies by more than 1 / _MIN_INK (so noise on a blank frame stays low).
_MIN_INK = 0.4

# uint8 gray k -> k / 255 in float32, computed as `_unit_range` computes it.
_UNIT = np.arange(256, dtype=np.float32) * np.float32(1 / 255)
# Bits of the samples a 16-bit image may hold: cameras and scanners store 10, 12 or 14-bit data
# (some tools 8-bit data) in the low bits of 16, so 65535 is white only for data that uses 16.
DATA_DEPTHS = (8, 10, 12, 14, 16)


def white_level(image: np.ndarray) -> int:
    """The white of a uint16 image: 2**bits - 1 for the fewest DATA_DEPTHS bits that hold its
    brightest sample, so 12-bit data (0..4095) reads as its 8-bit version does, not 16 times
    darker (the file says 16 bits either way)."""
    peak = int(image.max())
    return next((1 << bits) - 1 for bits in DATA_DEPTHS if peak < 1 << bits)


def _single_channel(frame: np.ndarray) -> np.ndarray:
    """Check a frame OpenCV gives and return its gray (H, W) image: uint8 as it is, uint16 as
    float32 in 0..1 of its `white_level` (judged on its colour channels), any other float
    (float16, float64) as float32, which OpenCV converts; FrameError naming what is wrong."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame: expected a numpy array, got {type(frame).__name__}")
    channels = 1 if frame.ndim == 2 else frame.shape[2] if frame.ndim == 3 else None
    if channels not in (1, 3, 4):
        raise FrameError(
            f"frame: expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {frame.shape}"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"frame: expected a non-empty image, got shape {frame.shape}")
    if frame.dtype not in (np.uint8, np.uint16) and not np.issubdtype(frame.dtype, np.floating):
        raise FrameError(f"frame: expected dtype uint8, uint16 or float, got {frame.dtype}")
    if frame.dtype == np.uint16:
        colour = frame[..., :3] if channels == 4 else frame  # an opaque alpha is 65535
        image = frame.astype(np.float32) * np.float32(1 / white_level(colour))
    else:
        image = frame if frame.dtype == np.uint8 else frame.astype(np.float32, copy=False)
    if channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif channels == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return image.reshape(image.shape[:2])


def _unit_range(image: np.ndarray) -> np.ndarray:
    """A single-channel uint8 or float32 image (as `_single_channel` gives) as float32 in 0..1."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1 / 255)
    gray = np.nan_to_num(image.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
    if gray.max() > 1.0:
        gray *= np.float32(1 / 255)
    return np.clip(gray, 0.0, 1.0, out=gray)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Any frame OpenCV gives (HxW, HxWx1, HxWx3 BGR, HxWx4 BGRA; uint8, uint16 or float) as a
    float32 HxW image in 0..1. uint16 frames are scaled by their `white_level`; float frames are
    taken as 0..1, or 0..255 if their max exceeds 1."""
    return _unit_range(_single_channel(frame))


def ink_is_dark(gray: np.ndarray) -> bool:
    """True if the frame shows dark strokes on a lighter background (ink on paper).

    Sparse strokes make the high-passed frame (pixel minus its local mean) skewed towards the
    ink side, whatever the illumination gradient; a frame without a clear skew (blank, noise
    only) is judged by its median brightness instead.
    """
    sample = gray[::_STATS_STEP, ::_STATS_STEP]
    detail = sample - cv2.blur(sample, (15, 15))
    squared = detail * detail
    spread = float(np.mean(squared))
    if spread > 1e-8:
        skew = float(np.mean(squared * detail)) / spread**1.5
        if abs(skew) > _SKEW_MARGIN:
            return skew < 0
    return float(np.median(sample)) > 0.5


def _opening(image: np.ndarray, size: int) -> np.ndarray:
    """Morphological opening with a `size` x `size` square: the background light under strokes
    narrower than `size`."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    return cv2.morphologyEx(image, cv2.MORPH_OPEN, kernel)


def _stroke_gain(ink: float) -> float:
    """Factor that takes the robust stroke level `ink` to 1, never above 1 / _MIN_INK."""
    return 1.0 / max(ink, _MIN_INK)


def normalize_lighting(image: np.ndarray, size: int) -> np.ndarray:
    """Remove uneven background light from a light-strokes-on-dark float image and stretch the
    strokes towards 1: subtract a morphological opening (`size` px, wider than any stroke), then
    divide by a robust stroke level (the 99.5th percentile, never amplifying more than
    1/_MIN_INK, so noise on a blank frame stays low)."""
    flat = image - _opening(image, size)
    flat *= np.float32(_stroke_gain(float(np.percentile(flat[::_STATS_STEP, ::_STATS_STEP], 99.5))))
    return np.clip(flat, 0.0, 1.0, out=flat)


def normalize_lighting_codes(codes: np.ndarray, size: int) -> np.ndarray:
    """`normalize_lighting` of the float image codes / 255, computed on the uint8 codes: the
    opening, the subtraction (exact: an opening never exceeds its image) and the percentile
    (from a histogram) stay in uint8, and one table lookup gives the scaled, clipped float32
    result. Equal to the float version up to rounding, in a third of the time at 640x480."""
    flat = cv2.subtract(codes, _opening(codes, size))
    counts = np.cumsum(np.bincount(flat[::_STATS_STEP, ::_STATS_STEP].ravel(), minlength=256))
    position = 0.995 * (counts[-1] - 1)  # numpy's default (linear) percentile, from the counts
    below, above = np.searchsorted(counts, [np.floor(position), np.ceil(position)], side="right")
    ink = (below + (above - below) * (position - np.floor(position))) / 255.0
    table = np.minimum(_UNIT * np.float32(_stroke_gain(float(ink))), np.float32(1.0))
    return cv2.LUT(flat, table)


class Preprocessor:
    """Turns frames into model inputs for one model; reuses its padded input buffers."""

    def __init__(self, info: ModelInfo, invert: str = "auto", normalize: bool = False) -> None:
        if invert not in INVERT_MODES:
            raise OptionError(f"invert: expected one of {', '.join(INVERT_MODES)}, got {invert!r}")
        self.info = info
        self.invert = invert
        self.normalize = normalize
        self._buffers: dict[tuple[int, int], np.ndarray] = {}
        low, high = info.input_range
        self.background = np.float32(low if info.polarity == "light-on-dark" else high)

    def windows(self, windows: np.ndarray) -> np.ndarray:
        """(N, window, window) windows in the model's polarity as its classifier cell reads
        them, (N, H, W, 1) float32: alone, or at the top-left of stride-padded inputs for a
        model trained so (`ModelInfo.classifier_padded`)."""
        if self.info.classifier_padded:
            return stride_padded(windows, self.info.stride, self.background)
        return windows[..., None].astype(np.float32)

    def needs_inversion(self, gray: np.ndarray) -> bool:
        """Whether this frame must be inverted to match the model's polarity."""
        if self.invert != "auto":
            return self.invert == "on"
        model_wants_dark_ink = self.info.polarity == "dark-on-light"
        return ink_is_dark(gray) != model_wants_dark_ink

    def prepare(self, frame: np.ndarray) -> tuple[np.ndarray, bool]:
        """The frame as a gray float32 image in the model's polarity and range, and whether it
        was inverted. Normalization (if on) runs with light strokes on dark, then polarity is
        restored to the model's."""
        single = _single_channel(frame)
        gray = _unit_range(single)
        inverted = self.needs_inversion(gray)
        strokes_dark = (self.info.polarity == "dark-on-light") != inverted
        if self.normalize:
            if single.dtype == np.uint8:
                codes = cv2.bitwise_not(single) if strokes_dark else single
                gray = normalize_lighting_codes(codes, self.info.window)
            else:
                gray = normalize_lighting(1.0 - gray if strokes_dark else gray, self.info.window)
            if self.info.polarity == "dark-on-light":
                gray = 1.0 - gray
        elif inverted:
            gray = 1.0 - gray
        low, high = self.info.input_range
        if (low, high) != (0.0, 1.0):
            gray = gray * np.float32(high - low) + np.float32(low)
        return gray, inverted

    def model_input(
        self, image: np.ndarray, scale: float = 1.0, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """`image` resized by `scale` (`scaled`) and padded (`padded`): a (1, H, W, 1) float32
        array, a reused buffer overwritten by the next call with the same size."""
        return self.padded(self.scaled(image, scale), size)

    @staticmethod
    def scaled(image: np.ndarray, scale: float) -> np.ndarray:
        """`image` resized by `scale` (area-averaged down, bilinear up); `image` itself at 1.
        A side that would round to 0 px keeps 1 px (a tiny frame at a small scale)."""
        if scale == 1.0:
            return image
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        height, width = image.shape[:2]
        if min(height, width) * scale < 1.0:  # OpenCV could round a side to 0
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            return cv2.resize(image, size, interpolation=interpolation)
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)

    def strokes(self, image: np.ndarray) -> np.ndarray:
        """A prepared image (the model's polarity and range) as light strokes on dark in 0..1,
        the form ink boxes are measured on; the image itself for light-on-dark 0..1 models."""
        low, high = self.info.input_range
        light_on_dark = self.info.polarity == "light-on-dark"
        if light_on_dark and (low, high) == (0.0, 1.0):
            return image
        unit = (image - np.float32(low)) * np.float32(1 / (high - low))
        return unit if light_on_dark else 1.0 - unit

    def from_strokes(self, strokes: np.ndarray) -> np.ndarray:
        """Light-on-dark 0..1 images back in the model's polarity and range (`strokes`'
        inverse), float32."""
        low, high = self.info.input_range
        unit = strokes if self.info.polarity == "light-on-dark" else 1.0 - strokes
        return (np.float32(low) + unit * np.float32(high - low)).astype(np.float32)

    def padded(self, image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """`image` (already scaled) padded bottom/right with the background value (0 for
        light-on-dark models) to a multiple of the stride, or to `size` (height, width) for
        fixed-size models, as a (1, H, W, 1) float32 array.

        The array is a reused buffer: it is overwritten by the next call with the same size."""
        height, width = image.shape
        stride = self.info.stride
        padded = size or (round_up(height, stride), round_up(width, stride))
        if height > padded[0] or width > padded[1]:
            raise FrameError(
                f"frame: expected at most {padded[0]}x{padded[1]} pixels for this fixed-size "
                f"model, got {height}x{width} (the frame at its scale)"
            )
        buffer = self._buffers.get(padded)
        if buffer is None:
            buffer = self._buffers[padded] = np.full((1, *padded, 1), self.background, np.float32)
        else:
            buffer[0, height:] = self.background
            buffer[0, :height, width:] = self.background
        buffer[0, :height, :width, 0] = image
        return buffer
