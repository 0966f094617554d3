"""Digit augmentation with numpy and OpenCV: affine jitter, elastic warp, photometric changes.

Images are float32 (N, 28, 28) in MNIST polarity (light ink on dark, 0..1). The ranges default
to what a cell of the detector must accept: a digit up to ±20% off its window centre, at
0.7-1.4x its MNIST size, slightly rotated and slanted, in a thinner or thicker stroke, on an
uneven, noisy background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random changes applied to each training digit."""

    shift: float = 0.2  # fraction of the window, each axis
    scale: tuple[float, float] = (0.7, 1.4)
    rotation: float = 12.0  # degrees, either way
    shear: float = 0.3  # horizontal slant (x shift per unit of height), either way
    stroke: float = 0.3  # probability of a thicker (2/3) or thinner (1/3) stroke
    elastic: float = 0.5  # probability of an elastic warp
    contrast: tuple[float, float] = (0.55, 1.0)
    background: float = 0.25  # highest background level (plain or gradient)
    noise: float = 0.08  # highest Gaussian noise sigma
    blur: float = 0.3  # probability of a slight blur


def affine(
    image: np.ndarray,
    shift: tuple[float, float],
    scale: float,
    rotation: float,
    shear: float = 0.0,
) -> np.ndarray:
    """Slant (`shear`), scale and rotate `image` about its centre, then shift it by (dx, dy)."""
    size = image.shape[0]
    centre = ((size - 1) / 2, (size - 1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, rotation, scale)
    if shear:
        slant = np.array([[1.0, -shear, shear * centre[1]], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        matrix = matrix @ slant
    matrix[:, 2] += shift
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


def elastic(image: np.ndarray, rng: np.random.Generator, alpha: float = 4.0) -> np.ndarray:
    """A smooth random displacement field (Simard et al.), as in handwriting variation."""
    size = image.shape[0]
    field = rng.uniform(-1, 1, (2, size, size)).astype(np.float32)
    dx, dy = (cv2.GaussianBlur(f, (0, 0), 4.0) * alpha * 8 for f in field)
    grid_x, grid_y = np.meshgrid(
        np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32)
    )
    return cv2.remap(image, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderValue=0)


def backdrop(size: int, rng: np.random.Generator, level: float) -> np.ndarray:
    """A plain or linear-gradient background with values in 0..level."""
    low, high = sorted(rng.uniform(0, level, 2))
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * np.arange(size)[None, :] + np.sin(angle) * np.arange(size)[:, None]
    span = ramp.max() - ramp.min()
    return (low + (high - low) * (ramp - ramp.min()) / span).astype(np.float32)


def photometric(image: np.ndarray, rng: np.random.Generator, config: Augmentation) -> np.ndarray:
    """Lower the contrast, lay the digit over an uneven background, add blur and noise."""
    size = image.shape[0]
    ink = image * rng.uniform(*config.contrast)
    base = backdrop(size, rng, config.background)
    out = np.maximum(base, ink)
    if rng.random() < config.blur:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.3, 0.8))
    out = out + rng.normal(0, rng.uniform(0, config.noise), out.shape).astype(np.float32)
    return np.clip(out, 0, 1)


def augment_digit(image: np.ndarray, rng: np.random.Generator, config: Augmentation) -> np.ndarray:
    """One random variant of a float32 28x28 digit, still centred within ±shift of the window."""
    size = image.shape[0]
    shift = rng.uniform(-config.shift, config.shift, 2) * size
    out = affine(
        image,
        (shift[0], shift[1]),
        rng.uniform(*config.scale),
        rng.uniform(-config.rotation, config.rotation),
        rng.uniform(-config.shear, config.shear),
    )
    if rng.random() < config.elastic:
        out = elastic(out, rng)
    if rng.random() < config.stroke:
        out = restroke(out, thicker=rng.random() < 2 / 3)
    return photometric(out, rng, config)


def restroke(image: np.ndarray, thicker: bool) -> np.ndarray:
    """The digit in a marker's thicker stroke (grey dilation) or a fine pen's thinner one
    (grey erosion, mild so that no stroke vanishes)."""
    if thicker:
        return cv2.dilate(image, np.ones((2, 2), np.uint8))
    return np.maximum(cv2.erode(image, np.ones((2, 2), np.uint8)), image * 0.5)


def augment_digits(
    images: np.ndarray, rng: np.random.Generator, config: Augmentation
) -> np.ndarray:
    """Augment a batch (N, 28, 28) float32 of digits, one independent draw per image."""
    return np.stack([augment_digit(image, rng, config) for image in images])
