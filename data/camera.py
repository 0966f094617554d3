"""Camera-realistic scenes of handwritten digits: pages as a phone or webcam sees them.

A page (paper, often on a desk; ruled, squared or plain; print, rulers, tables, scribbles,
security print around the writing) gets MNIST digits written on it in pen: stroke widths from
a thin ballpoint to a marker, slant, each string's hand writing narrower or wider than MNIST,
ink colours, digit strings written tightly (dates, amounts, phone numbers; gaps of -3 to 6 px
at 24 px height, so neighbours may touch, with hand-drawn separators). The photograph then
tilts the page (perspective), lights it unevenly, casts a shadow, blurs (defocus or motion),
adds sensor noise; `convdet.data.scenes` stores it as JPEG.

Styles (all share this page and camera model):
- "notebook": ruled or squared paper, digits and short numbers written on the lines;
- "strings": tight digit strings on forms, cheque-like security print or plain paper;
- "large": a few digits 64-150 px high, held close to the camera;
- "clutter": digits among printed words, rulers, tables, desk textures and scribbles;
- "empty": any of those pages with no digit at all (every detection on it is false).

Ground truth boxes are the tight ink boxes of each digit as it appears in the photograph
(corners of its written ink box through the perspective), and `lines` lists each written
string's digits left to right.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from convdet.data import surfaces
from convdet.runtime.defaults import CAMERA_STYLES

DIGIT_HEIGHTS = (16.0, 40.0)  # px of ink, the writing sizes of every style but "large"
LARGE_HEIGHTS = (64.0, 150.0)
MNIST_STROKE = 0.13  # stroke width of an MNIST digit, as a fraction of its ink height
GAP_RANGE = (-3.0, 6.0)  # px between neighbouring digits of a string, at 24 px height
SEPARATORS = ("/", "-", ".", ",", ":", " ")
# How much wider (or narrower) than its MNIST source a string's hand writes its digits, and how
# much one digit varies around that. On the real cheque amounts of ORAND-CAR-A, width over
# height runs over a wider range than in MNIST (zeros: 0.80-1.50 from the 10th to the 90th
# percentile against MNIST's 0.70-1.11; fours 0.46-0.92 against 0.60-1.00).
HAND_WIDTH = (0.8, 1.35)  # log-uniform, per string
DIGIT_WIDTH = (0.92, 1.08)  # uniform, per digit
# A "/" as tall as the digits beside it and leaning as a 1 may (MNIST's ones lean up to 0.59
# px per px of height at the 90th percentile, before pen_stroke's slant) is a 1 to anyone:
# slashes here run longer, reaching above and below the digits, and lean further. Height as a
# fraction of the digits' height; lean as horizontal run per unit of the slash's height.
SLASH_HEIGHT = (1.2, 1.6)
SLASH_LEAN = (0.5, 0.9)
TILT = 0.05  # the camera moves page corners by up to this fraction of the frame
PAGE_MARGIN = 0.06  # writing stays this fraction of the frame's width (height) inside its edges

# A source of digits: the next (split row, 28x28 uint8 image, label).
DigitSource = Callable[[], tuple[int, np.ndarray, int]]


@dataclass
class Page:
    """A page being written: its image (float BGR reflectance) and what has been written."""

    image: np.ndarray
    writable: np.ndarray  # (H, W) float: 1 where the sheet is (writing stays on it)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    lines: list[tuple[int, ...]] = field(default_factory=list)
    taken: list[tuple[float, float, float, float]] = field(default_factory=list)

    def free(self, box: tuple[float, float, float, float], margin: float) -> bool:
        """Whether `box` lies inside the page, clear of its edges by more than the camera's
        tilt moves them (PAGE_MARGIN of each side), and `margin` px clear of everything written."""
        height, width = self.image.shape[:2]
        x1, y1, x2, y2 = box
        edge_x, edge_y = PAGE_MARGIN * width, PAGE_MARGIN * height
        if x1 < edge_x or y1 < edge_y or x2 > width - edge_x or y2 > height - edge_y:
            return False
        corners = self.writable[
            [round(y1), round(y1), round(y2) - 1, round(y2) - 1],
            [round(x1), round(x2) - 1, round(x1), round(x2) - 1],
        ]
        if corners.min() < 1.0:
            return False
        return all(
            x2 + margin <= a1 or a2 + margin <= x1 or y2 + margin <= b1 or b2 + margin <= y1
            for a1, b1, a2, b2 in self.taken
        )


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _ink_extent(mask: np.ndarray) -> int:
    """Height plus width of the box around a mask's ink (0 when it has none)."""
    ys, xs = np.nonzero(mask)
    return int(np.ptp(ys) + np.ptp(xs) + 2) if ys.size else 0


def pen_stroke(
    digit: np.ndarray, height: float, rng: np.random.Generator, width: float = 1.0
) -> np.ndarray:
    """A 28x28 uint8 MNIST digit rewritten in pen: ink coverage (0..1 float32) whose ink is
    `height` px tall and `width` times as wide as the source's proportions make it, slanted
    and rotated a little, with a stroke width drawn from a thin ballpoint (5% of the height, at
    least 1.2 px) to a marker (20%). Cropped to the ink."""
    source = digit.astype(np.float32) * np.float32(1 / 255)
    rows = np.flatnonzero(source.max(axis=1) > 0.3)
    ink_height = float(rows[-1] - rows[0] + 1) if rows.size else 20.0
    scale = height / ink_height
    shear = float(np.clip(rng.normal(0, 0.15), -0.4, 0.4))
    rotation = math.radians(rng.uniform(-6, 6))
    side = math.ceil(28 * scale * 1.6 * max(1.0, width)) + 8
    cos, sin = math.cos(rotation) * scale, math.sin(rotation) * scale
    linear = (
        np.array([[cos, -sin], [sin, cos]])
        @ np.array([[1.0, -shear], [0.0, 1.0]])
        @ np.diag([width, 1.0])
    )
    offset = side / 2 - linear @ np.array([13.5, 13.5])
    matrix = np.hstack([linear, offset[:, None]]).astype(np.float32)
    warped = cv2.warpAffine(source, matrix, (side, side), flags=cv2.INTER_LINEAR)
    mask = (warped > rng.uniform(0.3, 0.5)).astype(np.uint8)
    stroke = max(1.2, height * rng.uniform(0.05, 0.2))
    change = round((stroke - MNIST_STROKE * height) / 2)
    if change > 0:
        mask = cv2.dilate(mask, _disc(change))
    for radius in range(-change, 0, -1):  # thin the stroke as far as the digit stays whole
        thinned = cv2.erode(mask, _disc(radius))
        if _ink_extent(thinned) >= 0.9 * _ink_extent(mask):
            mask = thinned
            break
    coverage = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.6)
    ys, xs = np.nonzero(coverage > 0.5)
    if ys.size == 0:
        return np.zeros((1, 1), np.float32)
    return coverage[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _placed(coverage: np.ndarray, x: float, y: float) -> tuple[float, float, float, float]:
    """The box a coverage patch covers when laid with its top-left at (x, y): whole pixels."""
    left, top = round(x), round(y)
    return float(left), float(top), float(left + coverage.shape[1]), float(top + coverage.shape[0])


def _write(
    page: Page, coverage: np.ndarray, x: float, y: float, ink: surfaces.Colour, opacity: float
) -> None:
    """Lay a coverage patch with its top-left at (x, y), clipped to the page."""
    height, width = page.image.shape[:2]
    left, top = round(x), round(y)
    h, w = coverage.shape
    x1, y1, x2, y2 = max(left, 0), max(top, 0), min(left + w, width), min(top + h, height)
    if x2 > x1 and y2 > y1:
        patch = coverage[y1 - top : y2 - top, x1 - left : x2 - left]
        surfaces.lay_ink(page.image[y1:y2, x1:x2], patch, ink, opacity)


def _separator(kind: str, height: float, stroke: float, rng: np.random.Generator) -> np.ndarray:
    """A handwritten separator ("/", "-", ".", ",", ":") as coverage, a digit high (a "/"
    taller, SLASH_HEIGHT and SLASH_LEAN)."""
    size, width = max(4, round(height)), max(3, round(height * 0.5))
    if kind == "/":
        size = max(4, round(height * rng.uniform(*SLASH_HEIGHT)))
        width = max(3, round(size * rng.uniform(*SLASH_LEAN)))
    layer = np.zeros((size, width), np.uint8)
    w, h = layer.shape[1] - 1, size - 1
    thickness = max(1, round(stroke))
    dot = max(1, round(stroke * 0.8))
    if kind == "/":
        cv2.line(layer, (w, 0), (0, h), 255, thickness, cv2.LINE_AA)
    elif kind == "-":
        cv2.line(layer, (0, h // 2), (w, h // 2), 255, thickness, cv2.LINE_AA)
    elif kind == ".":
        cv2.circle(layer, (w // 2, h - dot), dot, 255, -1, cv2.LINE_AA)
    elif kind == ",":
        cv2.line(layer, (w // 2, h - dot * 2), (w // 3, h), 255, thickness, cv2.LINE_AA)
    elif kind == ":":
        for row in (h // 3, h - dot):
            cv2.circle(layer, (w // 2, row), dot, 255, -1, cv2.LINE_AA)
    return layer.astype(np.float32) * np.float32(1 / 255)


def _groups(rng: np.random.Generator) -> list[int]:
    """Digit-group lengths of a string: a date, an amount, a phone number or a plain number."""
    kind = rng.choice(["date", "amount", "phone", "number"])
    if kind == "number":
        return [int(rng.integers(2, 9))]
    if kind == "date":
        return [2, 2, int(rng.choice([2, 4]))]
    if kind == "phone":
        return [3, 3, 4] if rng.random() < 0.5 else [2, 2, 2, 2]
    return [int(rng.integers(1, 4)), 3] + ([2] if rng.random() < 0.5 else [])


def _string_length(groups: list[int], height: float) -> float:
    """About how wide a string of these digit groups is written at `height` px by the widest
    hand (HAND_WIDTH), with its separators and gaps: where it can start and still fit."""
    return sum(groups) * height * 0.75 * HAND_WIDTH[1] + len(groups) * height * 0.9


def _fit(groups: list[int], remaining: int) -> list[int]:
    """The leading groups trimmed so that they hold at most `remaining` digits."""
    fitted = []
    for count in groups:
        count = min(count, remaining - sum(fitted))
        if count <= 0:
            break
        fitted.append(count)
    return fitted


def write_string(
    page: Page,
    digits: DigitSource,
    rng: np.random.Generator,
    height: float,
    origin: tuple[float, float],
    groups: list[int],
    margin: float = 4.0,
) -> bool:
    """Write one string of digit groups (with a separator between groups) whose first digit's
    ink starts at `origin` (x, baseline y). Nothing is written if it would not fit clear of
    the page's other writing; True if it was written."""
    ink, opacity = surfaces.pen_colour(rng), rng.uniform(0.75, 1.0)
    separator = str(rng.choice(SEPARATORS))
    hand = math.exp(rng.uniform(*np.log(HAND_WIDTH)))
    unit = height / 24.0
    pieces: list[tuple[np.ndarray, float, float, int | None, int]] = []
    x, baseline = origin
    for number, count in enumerate(groups):
        if number:
            mark = _separator(separator, height, max(1.2, height * 0.08), rng)
            if separator != " ":  # centred on the digits' height, reaching below the baseline
                top = baseline - (height + mark.shape[0]) / 2
                pieces.append((mark, x + unit * 2, top, None, 0))
            x += mark.shape[1] + unit * 4
        for _ in range(count):
            row, image, label = digits()
            width = hand * rng.uniform(*DIGIT_WIDTH)
            stroke = pen_stroke(image, height * rng.uniform(0.9, 1.1), rng, width)
            top = baseline - stroke.shape[0] + rng.normal(0, 0.04) * height
            pieces.append((stroke, x, top, label, row))
            x += stroke.shape[1] + rng.uniform(*GAP_RANGE) * unit
    if not pieces:
        return False
    boxes = [_placed(s, px, py) for s, px, py, _, _ in pieces]
    union = (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
    if not page.free(union, margin):
        return False
    line = []
    for (stroke, px, py, label, row), box in zip(pieces, boxes, strict=True):
        _write(page, stroke, px, py, ink, opacity)
        if label is not None:
            line.append(len(page.classes))
            page.boxes.append(box)
            page.classes.append(label)
            page.rows.append(row)
    page.lines.append(tuple(line))
    page.taken.append(union)
    return True


def _scatter_strings(
    page: Page,
    digits: DigitSource,
    rng: np.random.Generator,
    wanted: int,
    heights: tuple[float, float],
    single: float,
) -> None:
    """Write about `wanted` digits as strings (a fraction `single` of them alone) anywhere on
    the page that is free."""
    height, width = page.image.shape[:2]
    written = attempts = 0
    while written < wanted and attempts < 60:
        attempts += 1
        size = _log_uniform(rng, *heights)
        groups = _fit([1] if rng.random() < single else _groups(rng), wanted - written)
        origin = (
            rng.uniform(0, max(1.0, width - _string_length(groups, size))),
            rng.uniform(size, height),
        )
        if write_string(page, digits, rng, size, origin, groups):
            written += sum(groups)


def _keep_out(page: Page, shape: tuple[int, int], grow: float) -> np.ndarray:
    """1 inside the written strings' boxes grown by `grow` times their height, else 0."""
    mask = np.zeros(shape, np.float32)
    for x1, y1, x2, y2 in page.taken:
        pad = (y2 - y1) * grow
        cv2.rectangle(
            mask, (round(x1 - pad), round(y1 - pad)), (round(x2 + pad), round(y2 + pad)), 1.0, -1
        )
    return cv2.GaussianBlur(mask, (0, 0), 2.0)


def _clutter(image: np.ndarray, rng: np.random.Generator, amount: float) -> None:
    """Print, rulers, tables, lines and scribbles, about `amount` times a typical page's."""
    area = image.shape[0] * image.shape[1] / (640 * 480)
    count = max(1, round(area * amount * 4))

    def some(n: float) -> int:
        return int(rng.poisson(n * count / 4))

    surfaces.printed_text(image, rng, some(4), (8.0, 40.0))
    surfaces.straight_lines(image, rng, some(1.5))
    surfaces.boxes_and_tables(image, rng, some(0.6))
    surfaces.scribbles(image, rng, some(1.0), (10.0, 60.0))
    if rng.random() < 0.25 * amount:
        surfaces.ruler(image, rng)


def write_page(
    style: str,
    size: tuple[int, int],
    digits: DigitSource,
    rng: np.random.Generator,
    max_digits: int = 24,
) -> Page:
    """Compose a page of `style` (see the module doc) of `size` (width, height), before the
    camera: digits come from `digits`, at most `max_digits` of them."""
    width, height = size
    shape = (height, width)
    wanted = int(rng.integers(max(1, max_digits // 3), max_digits + 1))
    if style == "empty":
        style = str(rng.choice(["notebook", "strings", "large", "clutter"]))
        wanted = 0
    on_desk = rng.random() < {"clutter": 0.7, "large": 0.3}.get(style, 0.25)
    outline = surfaces.sheet_outline(shape, rng) if on_desk else np.ones(shape, np.float32)
    page = Page(surfaces.paper(shape, rng), outline)
    if style == "notebook":
        size_px = _log_uniform(rng, *DIGIT_HEIGHTS)
        rows = surfaces.ruling(page.image, rng, size_px * rng.uniform(1.2, 1.9))
        rng.shuffle(rows)
        for baseline in rows:
            if len(page.classes) >= wanted:
                break
            groups = _fit(_groups(rng), wanted - len(page.classes))
            start = rng.uniform(0, max(1.0, width - _string_length(groups, size_px)))
            write_string(page, digits, rng, size_px, (start, baseline - rng.uniform(0, 3)), groups)
    elif style == "strings":
        decor = rng.choice(["plain", "guilloche", "ruled", "boxes"])
        if decor == "guilloche":
            surfaces.guilloche(page.image, rng)
        elif decor == "ruled":
            surfaces.ruling(page.image, rng, rng.uniform(25, 45))
        _scatter_strings(page, digits, rng, wanted, DIGIT_HEIGHTS, single=0.0)
        if decor == "boxes":
            for x1, y1, x2, y2 in page.taken:
                pad = rng.uniform(2, 10)
                layer = np.zeros(shape, np.uint8)
                cv2.rectangle(
                    layer,
                    (round(x1 - pad), round(y1 - pad)),
                    (round(x2 + pad), round(y2 + pad)),
                    255,
                    int(rng.integers(1, 3)),
                )
                surfaces.lay_ink(page.image, layer / np.float32(255), surfaces.PRINT_INKS[0])
    elif style == "large":
        top = min(LARGE_HEIGHTS[1], height * 0.8)
        heights = (min(LARGE_HEIGHTS[0], top), top)
        _scatter_strings(page, digits, rng, min(wanted, 6), heights, single=0.5)
    elif style == "clutter":
        if rng.random() < 0.3:
            surfaces.guilloche(page.image, rng)
        _scatter_strings(page, digits, rng, wanted, DIGIT_HEIGHTS, single=0.4)
    else:
        raise ValueError(f"style: expected one of {', '.join(CAMERA_STYLES)}, got {style!r}")
    # Print and scribbles go around the writing, never over it (whose digit would it be?).
    marked = page.image.copy()
    _clutter(marked, rng, 1.5 if style == "clutter" else 0.5)
    keep = _keep_out(page, shape, 0.25)[..., None]
    page.image = marked * (1 - keep) + page.image * keep
    if on_desk:
        page.image = surfaces.lay_on_desk(page.image, outline, rng)
    return page


def photograph(page: Page, rng: np.random.Generator) -> np.ndarray:
    """The page as a camera sees it (uint8 BGR): perspective tilt, uneven light and a shadow,
    defocus or motion blur, sensor noise. Truth boxes in `page` move with the perspective."""
    image = page.image
    height, width = image.shape[:2]
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    jitter = (rng.uniform(-TILT, TILT, (4, 2)) * [width, height]).astype(np.float32)
    homography = cv2.getPerspectiveTransform(corners, corners + jitter)
    image = cv2.warpPerspective(image, homography, (width, height), borderMode=cv2.BORDER_REFLECT)
    if page.boxes:
        boxes = np.array(page.boxes, np.float32)
        points = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 1, 2)
        moved = cv2.perspectiveTransform(points, homography).reshape(-1, 4, 2)
        page.boxes = [
            (float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))
            for p in moved
        ]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = xs * math.cos(angle) + ys * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    light = 1.0 - rng.uniform(0.0, 0.4) * ramp
    radius = ((xs - width / 2) ** 2 + (ys - height / 2) ** 2) / (width**2 + height**2)
    light *= 1.0 - rng.uniform(0.0, 0.6) * radius
    if rng.random() < 0.35:  # a soft shadow of a hand or a phone
        shadow = np.zeros((height, width), np.float32)
        centre = rng.uniform(0, 1, 2) * [width, height]
        axes = rng.uniform(0.2, 0.6, 2) * [width, height]
        cv2.ellipse(
            shadow,
            (round(centre[0]), round(centre[1])),
            (round(axes[0]), round(axes[1])),
            rng.uniform(0, 180),
            0,
            360,
            1.0,
            -1,
        )
        shadow = cv2.GaussianBlur(shadow, (0, 0), max(width, height) * rng.uniform(0.02, 0.08))
        light *= 1.0 - rng.uniform(0.2, 0.5) * shadow
    exposure = rng.uniform(150, 255)
    image = image * (light * exposure)[..., None]
    if rng.random() < 0.2:
        length = int(rng.integers(3, 8))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0 / length
        kernel = cv2.warpAffine(
            kernel,
            cv2.getRotationMatrix2D(((length - 1) / 2,) * 2, rng.uniform(0, 180), 1),
            (length, length),
        )
        image = cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))
    else:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.3))
    image += rng.normal(0, rng.uniform(1.0, 6.0), image.shape).astype(np.float32)
    if rng.random() < 0.25:  # a grey scan or a monochrome camera
        image[:] = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[..., None]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
