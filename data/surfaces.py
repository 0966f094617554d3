"""What a camera sees around handwriting: paper, desks, ruling, lines, print, scribbles, security
print. Everything here is drawn without a digit in it, so all of it is background to a detector.

Images are float32 BGR reflectance in 0..1 (1 is white paper). Marks are drawn as a coverage
layer (0..1, anti-aliased by OpenCV) and laid on the image as ink of a colour: reflectance is
multiplied by 1 - coverage * (1 - colour), as pigment absorbs light. numpy + OpenCV only, so
the scene generator runs on a runtime-only install.

Printed text uses OpenCV's own fonts only: the Hershey vector fonts, including the script
ones, and OpenCV 5's built-in "sans", "italic" and "uni" faces at several weights (OpenCV 4
has only the Hershey ones). System fonts are left out on purpose: which ones a machine has
would change the scenes a seed makes. Words are letters only: a printed numeral is neither a
handwritten digit nor clearly background, so it is never drawn.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

Colour = tuple[float, float, float]
HERSHEY_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
)
BUILTIN_FACES = ("sans", "italic", "uni")
WORDS = (  # noqa: SIM905 (a word list reads better as text)
    "Name Date Amount Total Signature Page Notes Pay to the order of dollars pesos cents Bank "
    "Account Address Phone Invoice Receipt Subject Class Teacher Student Exercise Homework "
    "Meter reading Customer Order Quantity Price Balance Remarks January March October "
    "Monday Friday Register Parish Baptism Entry Serial Reference Office use only Approved "
    "Paid Due Form Section Line Item Description Weight Height Room Floor Block Street City"
).split()

# Paper colours (BGR reflectance): white, cream, legal-pad yellow, light blue, pink, recycled grey.
PAPERS: tuple[Colour, ...] = (
    (0.95, 0.95, 0.95),
    (0.84, 0.92, 0.96),
    (0.62, 0.92, 0.97),
    (0.96, 0.89, 0.82),
    (0.86, 0.84, 0.97),
    (0.80, 0.82, 0.83),
)
# Inks of print (black, grey, dark blue), of ruling (light blue, grey, pale teal) and of
# margin lines (reds).
PRINT_INKS: tuple[Colour, ...] = ((0.08, 0.08, 0.08), (0.35, 0.35, 0.35), (0.45, 0.2, 0.1))
RULING_INKS: tuple[Colour, ...] = ((0.85, 0.65, 0.45), (0.7, 0.7, 0.7), (0.8, 0.75, 0.55))
MARGIN_INKS: tuple[Colour, ...] = ((0.45, 0.45, 0.9), (0.55, 0.4, 0.85))


def lay_ink(image: np.ndarray, coverage: np.ndarray, colour: Colour, opacity: float = 1.0) -> None:
    """Lay ink of `colour` over `image` (H, W, 3) in place where `coverage` (H, W) is > 0."""
    absorb = (1.0 - np.asarray(colour, np.float32)) * np.float32(opacity)
    image *= 1.0 - coverage[..., None] * absorb


def _layer(shape: tuple[int, int]) -> np.ndarray:
    """An empty uint8 coverage layer for OpenCV's anti-aliased drawing."""
    return np.zeros(shape, np.uint8)


def _coverage(layer: np.ndarray) -> np.ndarray:
    return layer.astype(np.float32) * np.float32(1 / 255)


def _choice(rng: np.random.Generator, options: tuple[Colour, ...]) -> Colour:
    return options[int(rng.integers(len(options)))]


def _smooth_noise(shape: tuple[int, int], rng: np.random.Generator, cells: int) -> np.ndarray:
    """Smooth noise in -1..1 with about `cells` blobs across the longer side."""
    height, width = shape
    side = max(height, width)
    coarse = rng.uniform(-1, 1, (max(2, cells * height // side), max(2, cells * width // side)))
    return cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def paper(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A sheet of paper filling `shape`: one of PAPERS, blotches and fibre grain."""
    colour = np.array(_choice(rng, PAPERS), np.float32) * rng.uniform(0.85, 1.0)
    sheet = np.empty((*shape, 3), np.float32)
    sheet[:] = colour
    tone = 1.0 + rng.uniform(0.0, 0.05) * _smooth_noise(shape, rng, int(rng.integers(3, 9)))
    grain = rng.normal(0, rng.uniform(0.003, 0.015), shape).astype(np.float32)
    sheet *= (tone + cv2.GaussianBlur(grain, (0, 0), 0.8))[..., None]
    return np.clip(sheet, 0, 1, out=sheet)


def _wood(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    along = xs * math.cos(angle) + ys * math.sin(angle)
    warp = _smooth_noise(shape, rng, 4) * rng.uniform(10, 40)
    rings = np.sin((along + warp) * rng.uniform(0.08, 0.4)) * 0.5 + 0.5
    base = np.array([rng.uniform(0.15, 0.45), rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.8)])
    shade = 0.75 + 0.25 * rings + 0.05 * _smooth_noise(shape, rng, 30)
    return (shade[..., None] * base).astype(np.float32)


def _fabric(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(2.5, 7.0)
    weave = np.sin(xs * 2 * math.pi / period) * np.sin(ys * 2 * math.pi / period)
    base = rng.uniform(0.1, 0.8, 3)
    shade = 0.8 + 0.12 * weave + 0.06 * rng.normal(0, 1, shape)
    return (np.clip(shade, 0, 1.2)[..., None] * base).astype(np.float32)


def _stone(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    base = rng.uniform(0.1, 0.7) * rng.uniform(0.8, 1.0, 3)
    shade = 1.0 + 0.25 * _smooth_noise(shape, rng, 12) + 0.12 * _smooth_noise(shape, rng, 60)
    shade += rng.normal(0, 0.04, shape)
    return (np.clip(shade, 0, 2)[..., None] * base).astype(np.float32)


DESKS: dict[str, Callable[[tuple[int, int], np.random.Generator], np.ndarray]] = {
    "wood": _wood,
    "fabric": _fabric,
    "stone": _stone,
}


def desk(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A desk or cloth surface: wood grain, woven fabric or mottled stone/leather."""
    maker = list(DESKS.values())[int(rng.integers(len(DESKS)))]
    return np.clip(maker(shape, rng), 0, 1)


def sheet_outline(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Where a sheet lying on a desk covers the frame (float 0..1, anti-aliased): a rotated
    quadrilateral covering most of it, sometimes running off one or two sides."""
    height, width = shape
    margin = np.array([width, height], np.float32) * rng.uniform(0.05, 0.3, (4, 2))
    corners = np.array(
        [
            [margin[0, 0], margin[0, 1]],
            [width - margin[1, 0], margin[1, 1]],
            [width - margin[2, 0], height - margin[2, 1]],
            [margin[3, 0], height - margin[3, 1]],
        ],
        np.float32,
    )
    outward = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32) * max(shape)
    for side in rng.choice(4, size=int(rng.integers(0, 3)), replace=False):
        corners[[side, (side + 1) % 4]] += outward[[side, (side + 1) % 4]]
    mask = _layer(shape)
    cv2.fillPoly(mask, [np.rint(corners).astype(np.int32)], 255, cv2.LINE_AA)
    return _coverage(mask)


def lay_on_desk(sheet: np.ndarray, outline: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The finished `sheet` image where `outline` covers the frame, a desk around it, and the
    sheet's edge casting a soft shadow on the desk."""
    height, width = outline.shape
    surface = desk((height, width), rng)
    offset = rng.uniform(-6, 6, 2)
    shift = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
    shadow = cv2.GaussianBlur(
        cv2.warpAffine(outline, shift, (width, height)), (0, 0), rng.uniform(2, 8)
    )
    surface *= (1.0 - rng.uniform(0.2, 0.5) * shadow)[..., None]
    return surface * (1 - outline[..., None]) + sheet * outline[..., None]


def ruling(image: np.ndarray, rng: np.random.Generator, spacing: float) -> list[float]:
    """Rule `image` in place as ruled paper (horizontal lines `spacing` px apart, often a margin
    line), squared paper or a dot grid; return the ruled lines' y positions (writing lines)."""
    height, width = image.shape[:2]
    kind = rng.choice(["ruled", "squared", "dots"], p=[0.6, 0.3, 0.1])
    layer = _layer((height, width))
    thickness = int(rng.choice([1, 1, 2]))
    first = rng.uniform(0, spacing)
    rows = list(np.arange(first, height, spacing))
    if kind == "dots":
        for y in rows:
            for x in np.arange(first, width, spacing):
                cv2.circle(layer, (round(x), round(y)), 1, 255, -1, cv2.LINE_AA)
    else:
        for y in rows:
            cv2.line(layer, (0, round(y)), (width, round(y)), 255, thickness, cv2.LINE_AA)
        if kind == "squared":
            for x in np.arange(first, width, spacing):
                cv2.line(layer, (round(x), 0), (round(x), height), 255, thickness, cv2.LINE_AA)
    lay_ink(image, _coverage(layer), _choice(rng, RULING_INKS), rng.uniform(0.4, 1.0))
    if kind == "ruled" and rng.random() < 0.7:
        margin = _layer((height, width))
        x = round(rng.uniform(0.05, 0.25) * width)
        cv2.line(margin, (x, 0), (x, height), 255, int(rng.integers(1, 3)), cv2.LINE_AA)
        lay_ink(image, _coverage(margin), _choice(rng, MARGIN_INKS), rng.uniform(0.5, 1.0))
    return [float(y) for y in rows]


def straight_lines(image: np.ndarray, rng: np.random.Generator, count: int) -> None:
    """Lines at any angle and thickness across the image: folds, edges, underlines, strokes of
    a table or of a ruler's side."""
    height, width = image.shape[:2]
    for _ in range(count):
        layer = _layer((height, width))
        angle = rng.choice([0.0, math.pi / 2]) if rng.random() < 0.6 else rng.uniform(0, math.pi)
        angle += rng.normal(0, 0.03)
        length = rng.uniform(0.2, 1.5) * max(height, width)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        thickness = int(rng.choice([1, 1, 2, 2, 3, 4, 6]))
        cv2.line(
            layer,
            (round(cx - dx), round(cy - dy)),
            (round(cx + dx), round(cy + dy)),
            255,
            thickness,
            cv2.LINE_AA,
        )
        lay_ink(image, _coverage(layer), _choice(rng, PRINT_INKS), rng.uniform(0.3, 1.0))


def boxes_and_tables(image: np.ndarray, rng: np.random.Generator, count: int) -> None:
    """Printed form boxes and tables: rectangles, some divided into cells."""
    height, width = image.shape[:2]
    for _ in range(count):
        layer = _layer((height, width))
        box_w = rng.uniform(30, max(31.0, 0.8 * width))
        box_h = rng.uniform(20, max(21.0, 0.6 * height))
        x1, y1 = rng.uniform(-0.1 * width, width - box_w / 2), rng.uniform(0, height - box_h / 2)
        x2, y2 = x1 + box_w, y1 + box_h
        thickness = int(rng.choice([1, 1, 2, 3]))
        cv2.rectangle(layer, (round(x1), round(y1)), (round(x2), round(y2)), 255, thickness)
        if rng.random() < 0.5:
            for x in np.arange(x1, x2, rng.uniform(25, 90))[1:]:
                cv2.line(layer, (round(x), round(y1)), (round(x), round(y2)), 255, thickness)
            for y in np.arange(y1, y2, rng.uniform(18, 50))[1:]:
                cv2.line(layer, (round(x1), round(y)), (round(x2), round(y)), 255, thickness)
        lay_ink(image, _coverage(layer), _choice(rng, PRINT_INKS), rng.uniform(0.4, 1.0))


def ruler(image: np.ndarray, rng: np.random.Generator) -> None:
    """A ruler lying on the page: a light band with a dark edge and tick marks (no numbers)."""
    height, width = image.shape[:2]
    length = rng.uniform(0.6, 1.4) * max(height, width)
    band = rng.uniform(18, 45)
    angle = math.degrees(rng.uniform(0, math.pi)) if rng.random() < 0.4 else rng.normal(0, 4)
    centre = (rng.uniform(0, width), rng.uniform(0, height))
    ruler_image = np.ones((round(band), round(length), 3), np.float32)
    ruler_image[:] = rng.uniform(0.5, 0.95, 3)
    ticks = _layer(ruler_image.shape[:2])
    cv2.line(ticks, (0, 0), (ticks.shape[1], 0), 255, 2)
    step = rng.uniform(3.5, 8)
    for number, x in enumerate(np.arange(0, length, step)):
        tick = band * (0.45 if number % 10 == 0 else 0.3 if number % 5 == 0 else 0.18)
        cv2.line(ticks, (round(x), 0), (round(x), round(tick)), 255, 1, cv2.LINE_AA)
    lay_ink(ruler_image, _coverage(ticks), (0.1, 0.1, 0.1))
    matrix = cv2.getRotationMatrix2D((length / 2, band / 2), angle, 1.0)
    matrix[:, 2] += np.array(centre) - (length / 2, band / 2)
    mask = cv2.warpAffine(np.ones(ruler_image.shape[:2], np.float32), matrix, (width, height))
    placed = cv2.warpAffine(ruler_image, matrix, (width, height))
    opacity = rng.uniform(0.6, 1.0)  # clear plastic rulers show the page through
    image[:] = image * (1 - opacity * mask[..., None]) + placed * (opacity * mask[..., None])


@lru_cache(maxsize=32)
def _face(name: str) -> Any:
    """OpenCV 5's built-in font face `name` (loaded once)."""
    return cv2.FontFace(name)


def random_word(rng: np.random.Generator) -> str:
    """A printed word: a form word, or random letters in lower, title or upper case."""
    if rng.random() < 0.5:
        word = WORDS[int(rng.integers(len(WORDS)))]
    else:
        letters = rng.choice(list(string.ascii_lowercase), size=int(rng.integers(2, 10)))
        word = "".join(letters)
    case = rng.random()
    return word.upper() if case < 0.15 else word.title() if case < 0.4 else word


def printed_text(
    image: np.ndarray, rng: np.random.Generator, count: int, heights: tuple[float, float]
) -> None:
    """`count` runs of printed words (labels, headings, paragraph lines) with letter height in
    `heights` px, in a Hershey, built-in or system font, at a small random angle."""
    height, width = image.shape[:2]
    builtin = hasattr(cv2, "FontFace")  # OpenCV 5's TrueType faces
    for _ in range(count):
        layer = _layer((height, width))
        text = " ".join(random_word(rng) for _ in range(int(rng.integers(1, 6))))
        size = math.exp(rng.uniform(math.log(heights[0]), math.log(heights[1])))
        origin = (round(rng.uniform(-0.2, 0.9) * width), round(rng.uniform(0.05, 1.0) * height))
        if not builtin or rng.random() < 0.45:
            font = HERSHEY_FONTS[int(rng.integers(len(HERSHEY_FONTS)))]
            italic = cv2.FONT_ITALIC if rng.random() < 0.2 else 0
            scale = cv2.getFontScaleFromHeight(font, max(1, round(size)), 1)
            thickness = int(rng.choice([1, 1, 2])) if size > 14 else 1
            cv2.putText(layer, text, origin, font | italic, scale, 255, thickness, cv2.LINE_AA)
        else:
            face = _face(BUILTIN_FACES[int(rng.integers(len(BUILTIN_FACES)))])
            weight = int(rng.choice([300, 400, 400, 600, 800]))
            cv2.putText(layer, text, origin, 255, face, max(6, round(size * 1.4)), weight)
        coverage = _coverage(_rotate(layer, rng.normal(0, 3)))
        lay_ink(image, coverage, _choice(rng, PRINT_INKS), rng.uniform(0.6, 1.0))


def _rotate(layer: np.ndarray, degrees: float) -> np.ndarray:
    height, width = layer.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(layer, matrix, (width, height), flags=cv2.INTER_LINEAR)


def scribbles(
    image: np.ndarray, rng: np.random.Generator, count: int, size: tuple[float, float]
) -> None:
    """Handwritten non-digit marks: loops and squiggles, crossings-out (zigzags), ticks and
    underlines, in pen ink, each about `size` px across."""
    height, width = image.shape[:2]
    for _ in range(count):
        layer = _layer((height, width))
        extent = rng.uniform(*size)
        start = np.array([rng.uniform(0, width), rng.uniform(0, height)])
        kind = rng.choice(["squiggle", "zigzag", "tick"], p=[0.5, 0.35, 0.15])
        if kind == "zigzag":
            xs = np.linspace(0, extent * rng.uniform(1, 3), int(rng.integers(4, 12)))
            ys = np.where(np.arange(xs.size) % 2, extent * 0.4, 0) + rng.normal(0, 2, xs.size)
            points = start + np.stack([xs, ys], axis=1)
        elif kind == "tick":
            points = start + np.array([[0, 0], [0.3, 0.4], [1.0, -0.6]]) * extent
        else:
            steps = rng.normal(0, extent / 4, (int(rng.integers(5, 14)), 2)).cumsum(axis=0)
            points = start + steps
            points = cv2.resize(
                points.astype(np.float32), (2, len(points) * 6), interpolation=cv2.INTER_CUBIC
            )
        thickness = max(1, round(extent * rng.uniform(0.03, 0.1)))
        cv2.polylines(layer, [np.rint(points).astype(np.int32)], False, 255, thickness, cv2.LINE_AA)
        lay_ink(image, _coverage(layer), pen_colour(rng), rng.uniform(0.6, 1.0))


def guilloche(image: np.ndarray, rng: np.random.Generator) -> None:
    """Security print as on cheques and certificates: bands of fine interlaced waves."""
    height, width = image.shape[:2]
    layer = _layer((height, width))
    xs = np.arange(0, width + 4, 2, dtype=np.float32)
    period = rng.uniform(20, 120)
    amplitude = rng.uniform(3, 25)
    spacing = rng.uniform(2.5, 8)
    for family in range(int(rng.integers(1, 3))):
        phase_step = rng.uniform(0.1, 0.6)
        for index, y0 in enumerate(np.arange(-amplitude, height + amplitude, spacing)):
            phase = index * phase_step + family * math.pi
            ys = y0 + amplitude * np.sin(2 * math.pi * xs / period + phase)
            points = np.stack([xs, ys], axis=1)
            cv2.polylines(layer, [np.rint(points).astype(np.int32)], False, 255, 1, cv2.LINE_AA)
    colour = tuple(float(v) for v in rng.uniform(0.45, 0.85, 3))
    lay_ink(image, _coverage(layer), colour, rng.uniform(0.3, 0.8))


PEN_INKS: tuple[Colour, ...] = (
    (0.55, 0.22, 0.08),  # blue ballpoint
    (0.35, 0.1, 0.05),  # dark blue
    (0.1, 0.1, 0.1),  # black
    (0.15, 0.15, 0.75),  # red
    (0.42, 0.42, 0.42),  # pencil
    (0.2, 0.45, 0.15),  # green
)
PEN_WEIGHTS = (0.35, 0.15, 0.3, 0.08, 0.08, 0.04)


def pen_colour(rng: np.random.Generator) -> Colour:
    """A handwriting ink: mostly blue or black ballpoint, sometimes red, pencil or green."""
    return PEN_INKS[int(rng.choice(len(PEN_INKS), p=PEN_WEIGHTS))]
