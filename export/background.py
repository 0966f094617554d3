"""The background class (label 10): patches a grid cell must call 'no digit here'.

Plain and noisy patches at several intensities, gradients and paper-like textures teach the
model what empty surfaces look like. Off-centre and partial digits, and the seam between two
neighbouring digits, teach it *where*: a digit fires the cell at its centre, not the cells
beside it. Windows of digit-free camera pages (ruled paper, print, rulers, tables, desks,
scribbles, security print; `convdet.data.camera`), passed through the runtime's own preprocessing,
teach it what a camera sees around handwriting; windows inside a digit drawn several times too
large teach it that a loop or a stroke of a large digit is not a digit at this scale (the
image pyramid finds that digit at a smaller scale). All patches are float32 28x28 in MNIST
polarity (light on dark, 0..1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import cv2
import numpy as np
from convdet.data import camera
from convdet.export.augment import Augmentation, affine, backdrop, photometric
from convdet.export.specs import BACKGROUND, CLASS_NAMES, WINDOW
from convdet.runtime.errors import OptionError
from convdet.runtime.modelinfo import ModelInfo
from convdet.runtime.preprocess import Preprocessor

SIZE = WINDOW
CAMERA_PAGE = 96  # side of the digit-free pages camera windows are cut from
WINDOWS_PER_PAGE = 8


@dataclass(frozen=True)
class BackgroundMix:
    """Relative weights of each kind of background patch, and the off-centre distances."""

    blank: float = 1.0
    noise: float = 1.0
    gradient: float = 1.0
    texture: float = 1.0
    offcentre: float = 4.0
    seam: float = 2.0
    camera: float = 4.0
    zoomed: float = 1.5
    offcentre_min_shift: float = 10.0  # pixels; positives stay within Augmentation.shift
    offcentre_max_shift: float = 22.0

    @classmethod
    def parse(cls, text: str) -> BackgroundMix:
        """Read 'offcentre=4,seam=2,...' (unnamed fields keep their defaults)."""
        names = {field.name for field in fields(cls)}
        values: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            if name not in names:
                raise OptionError(f"background mix: unknown kind {name!r}; known: {sorted(names)}")
            try:
                values[name] = float(value)
            except ValueError:
                raise OptionError(f"background mix: {name} needs a number, got {value!r}") from None
        return cls(**values)

    def weights(self) -> dict[str, float]:
        """Normalized probability of each kind."""
        raw = {kind: getattr(self, kind) for kind in ALL_KINDS}
        total = sum(raw.values())
        if total <= 0:
            raise OptionError("background mix: all weights are zero")
        return {kind: weight / total for kind, weight in raw.items()}


def blank(rng: np.random.Generator, digits: np.ndarray, mix: BackgroundMix) -> np.ndarray:
    """A flat patch at a random level, dark to mid-grey."""
    return np.full((SIZE, SIZE), rng.uniform(0, 0.35) ** 2 * 3, np.float32).clip(0, 1)


def noise(rng: np.random.Generator, digits: np.ndarray, mix: BackgroundMix) -> np.ndarray:
    """Sensor-like Gaussian or salt-and-pepper noise over a low level."""
    level = rng.uniform(0, 0.3)
    patch = level + rng.normal(0, rng.uniform(0.02, 0.2), (SIZE, SIZE))
    if rng.random() < 0.3:
        patch[rng.random((SIZE, SIZE)) < rng.uniform(0.005, 0.05)] = 1.0
    return patch.astype(np.float32).clip(0, 1)


def gradient(rng: np.random.Generator, digits: np.ndarray, mix: BackgroundMix) -> np.ndarray:
    """Uneven lighting: a linear ramp, as across a lit sheet of paper after inversion."""
    return backdrop(SIZE, rng, rng.uniform(0.1, 0.6))


def texture(rng: np.random.Generator, digits: np.ndarray, mix: BackgroundMix) -> np.ndarray:
    """Paper-like texture: smooth blotches and fibres of low contrast, plus fine grain."""
    coarse = rng.uniform(0, 1, (rng.integers(3, 8),) * 2).astype(np.float32)
    blotches = cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    fibres = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)).astype(np.float32), (0, 0), 0.7)
    patch = rng.uniform(0, 0.2) + rng.uniform(0.05, 0.25) * blotches + 0.04 * fibres
    return patch.clip(0, 1)


def _shifted_digit(
    digit: np.ndarray, rng: np.random.Generator, distance: float, angle: float
) -> np.ndarray:
    shift = (distance * np.cos(angle), distance * np.sin(angle))
    return affine(digit, shift, rng.uniform(0.8, 1.25), rng.uniform(-10, 10))


def offcentre(rng: np.random.Generator, digits: np.ndarray, mix: BackgroundMix) -> np.ndarray:
    """A digit whose centre is far from the window's centre: partly or mostly out of view."""
    digit = digits[rng.integers(len(digits))]
    distance = rng.uniform(mix.offcentre_min_shift, mix.offcentre_max_shift)
    patch = _shifted_digit(digit, rng, distance, rng.uniform(0, 2 * np.pi))
    return photometric(patch, rng, Augmentation())


def seam(rng: np.random.Generator, digits: np.ndarray, mix: BackgroundMix) -> np.ndarray:
    """The gap between two neighbouring digits, each about half a window from the centre."""
    first, second = digits[rng.integers(len(digits), size=2)]
    angle = rng.choice([0.0, np.pi / 2]) + rng.uniform(-0.3, 0.3)
    half_gap = rng.uniform(12, 18)
    patch = np.maximum(
        _shifted_digit(first, rng, half_gap, angle),
        _shifted_digit(second, rng, half_gap, angle + np.pi),
    )
    return photometric(patch, rng, Augmentation())


def zoomed(rng: np.random.Generator, digits: np.ndarray, mix: BackgroundMix) -> np.ndarray:
    """A window inside a digit drawn 2.8-6x its size (ink 56-120 px): a loop, a bar, a curve."""
    digit = digits[rng.integers(len(digits))]
    factor = rng.uniform(2.8, 6.0)
    shift = rng.uniform(-0.35, 0.35, 2) * SIZE * factor
    patch = affine(digit, (float(shift[0]), float(shift[1])), factor, rng.uniform(-10, 10))
    return photometric(patch, rng, Augmentation())


def _camera_preprocessor() -> Preprocessor:
    """The runtime's preprocessing for a light-on-dark 28x28-window model, as detectors use."""
    info = ModelInfo(
        classes=CLASS_NAMES, background=BACKGROUND, stride=8, window=SIZE, cell_offset=0.0
    )
    return Preprocessor(info, invert="auto", normalize=True)


def _no_digits() -> tuple[int, np.ndarray, int]:
    raise AssertionError("an empty page asked for a digit")


def camera_windows(count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` windows of digit-free camera pages, preprocessed as the runtime preprocesses a
    frame; a third of the pages drawn at twice the size and halved, as the pyramid does."""
    preprocessor = _camera_preprocessor()
    windows = []
    while len(windows) < count:
        zoom = 2 if rng.random() < 1 / 3 else 1
        side = CAMERA_PAGE * zoom
        page = camera.write_page("empty", (side, side), _no_digits, rng)
        prepared, _ = preprocessor.prepare(camera.photograph(page, rng))
        prepared = Preprocessor.scaled(prepared, 1 / zoom)
        for y, x in rng.integers(0, CAMERA_PAGE - SIZE + 1, (WINDOWS_PER_PAGE, 2)):
            windows.append(prepared[y : y + SIZE, x : x + SIZE])
    return np.stack(windows[:count]).astype(np.float32)


KINDS: dict[str, Callable[[np.random.Generator, np.ndarray, BackgroundMix], np.ndarray]] = {
    "blank": blank,
    "noise": noise,
    "gradient": gradient,
    "texture": texture,
    "offcentre": offcentre,
    "seam": seam,
    "zoomed": zoomed,
}
# Kinds made many at a time (one page gives several windows).
BATCH_KINDS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "camera": camera_windows,
}


ALL_KINDS = (*KINDS, *BATCH_KINDS)


def make_background(
    count: int, rng: np.random.Generator, digits: np.ndarray, mix: BackgroundMix
) -> tuple[np.ndarray, np.ndarray]:
    """`count` background patches (N, 28, 28) float32 and the kind index of each (into
    ALL_KINDS).

    `digits` (M, 28, 28) float32 supplies the off-centre and seam cases; pass digits from the
    same split as the training digits, and from the test split for held-out backgrounds.
    """
    weights = mix.weights()
    kinds = rng.choice(len(weights), size=count, p=list(weights.values()))
    patches = np.zeros((count, SIZE, SIZE), np.float32)
    for index, name in enumerate(weights):
        chosen = np.flatnonzero(kinds == index)
        if not chosen.size:
            continue
        if name in BATCH_KINDS:
            patches[chosen] = BATCH_KINDS[name](chosen.size, rng)
        else:
            patches[chosen] = np.stack([KINDS[name](rng, digits, mix) for _ in chosen])
    return patches, kinds
