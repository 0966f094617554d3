"""Synthetic multi-digit scenes with ground truth, for measuring detection quality.

numpy + OpenCV only, so a scene set can be generated and evaluated on a runtime-only install.
A scene is reproducible from its parameters (digits, style, count, seed, size, max_digits, gap).

Styles:
- "mnist": light digits on a black canvas, each in its 28x28 MNIST frame (PNG, grayscale).
- "paper": dark ink on lit paper (BGR): an illumination gradient across the sheet, a warm tint,
  slight Gaussian blur, sensor noise, JPEG compression at quality 60..90 (JPEG file).
- "multiscale": like "mnist", with each 28x28 frame scaled to a side of 20..56 px (log-uniform).
- camera styles "notebook", "strings", "large", "clutter", "empty": handwriting photographed on
  real-looking pages (`convdet.data.camera`), JPEG files.

Ground truth of the three classic styles: each object's `box` is the placed MNIST frame,
[x1, y1, x2, y2] in pixels with x2 = x1 + side (continuous coordinates: pixel p spans
[p, p+1)). It is the window the classifier was trained to see, not the tight ink box: MNIST
centres each digit's mass in its frame, so the frame's centre is the digit's centre, and a "1"
gets the same box size as an "8". Frames of one scene never overlap and are at least `gap`
pixels apart. Camera styles give tight ink boxes instead (`box_kind` "ink"; neighbours in a
string may touch or overlap) and the written strings (`lines`). `index` is the digit's row in
its split.

On disk a scene set is a folder: the images, `truth.jsonl` (one record per image: file, width,
height, style, objects [{class_id, box, index}], and for camera styles box_kind and lines) and
`manifest.json` (the generation parameters).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from convdet.data import camera
from convdet.data.digits import DIGIT_SIZE
from convdet.runtime.defaults import CLASSIC_STYLES, STYLES  # noqa: F401 (CLASSIC_STYLES: this API)
from convdet.runtime.errors import DataError, OptionError

BOX_KINDS = ("frame", "ink")
CAMERA_MIN_SIZE = 64
MULTISCALE_SIDES = (20, 56)
TRUTH_FILE = "truth.jsonl"
MANIFEST_FILE = "manifest.json"
PLACEMENT_ATTEMPTS = 200


@dataclass(frozen=True)
class Truth:
    """Ground truth of one scene image: placed frames (N, 4) xyxy, classes (N,), split rows (N,)."""

    file: str
    width: int
    height: int
    style: str
    boxes: np.ndarray
    classes: np.ndarray
    indices: np.ndarray
    # Written strings: each line's object indices in reading order (empty: no string truth).
    lines: tuple[tuple[int, ...], ...] = ()
    # "frame": boxes are placed 28x28 MNIST frames (scaled); "ink": tight boxes of the ink.
    box_kind: str = "frame"

    def digit_heights(self) -> np.ndarray:
        """Each digit's ink height in pixels (an MNIST frame's ink is 20 of its 28 px)."""
        heights = self.boxes[:, 3] - self.boxes[:, 1]
        return heights if self.box_kind == "ink" else heights * (20 / DIGIT_SIZE)

    def line_texts(self) -> list[str]:
        """The text of each written line (its digits read left to right)."""
        return ["".join(str(int(self.classes[i])) for i in line) for line in self.lines]

    def to_record(self) -> dict[str, Any]:
        """The truth.jsonl record of this image."""
        objects = [
            {"class_id": int(c), "box": [round(float(v), 1) for v in box], "index": int(i)}
            for box, c, i in zip(self.boxes, self.classes, self.indices, strict=True)
        ]
        record: dict[str, Any] = {
            "file": self.file,
            "width": self.width,
            "height": self.height,
            "style": self.style,
            "objects": objects,
        }
        if self.lines:
            record["lines"] = [list(line) for line in self.lines]
        if self.box_kind != "frame":
            record["box_kind"] = self.box_kind
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Truth:
        """Parse a truth.jsonl record; KeyError/TypeError/ValueError when it is malformed."""
        objects = record["objects"]
        boxes = np.array([o["box"] for o in objects], dtype=np.float64).reshape(-1, 4)
        return cls(
            file=str(record["file"]),
            width=int(record["width"]),
            height=int(record["height"]),
            style=str(record["style"]),
            boxes=boxes,
            classes=_parse_classes(objects),
            indices=np.array([int(o.get("index", -1)) for o in objects], dtype=np.int64),
            lines=_parse_lines(record.get("lines", []), len(objects)),
            box_kind=_parse_box_kind(record.get("box_kind", "frame")),
        )


def _parse_classes(objects: list[dict[str, Any]]) -> np.ndarray:
    """A record's `class_id`s; DataError for one that is not a digit 0..9."""
    classes = np.array([int(o["class_id"]) for o in objects], dtype=np.int64)
    if classes.size and (classes.min() < 0 or classes.max() > 9):
        raise DataError(f"class_id: expected digits 0..9, got {classes.tolist()}")
    return classes


def _parse_box_kind(kind: Any) -> str:
    """A record's `box_kind`; DataError when it is not one of BOX_KINDS."""
    if kind not in BOX_KINDS:
        raise DataError(f"box_kind: expected one of {', '.join(BOX_KINDS)}, got {kind!r}")
    return str(kind)


def _parse_lines(lines: Any, count: int) -> tuple[tuple[int, ...], ...]:
    """A record's `lines` as index tuples; DataError when an index names no object."""
    parsed = tuple(tuple(int(i) for i in line) for line in lines)
    if any(not 0 <= i < count for line in parsed for i in line):
        raise DataError(f"lines: object indices must be in 0..{count - 1}, got {lines}")
    return parsed


@dataclass(frozen=True)
class Scene:
    """A generated image: its encoded file bytes, the decoded pixels (identical), its truth."""

    truth: Truth
    encoded: bytes
    image: np.ndarray


@dataclass(frozen=True)
class SceneParams:
    """Everything a scene sequence is reproducible from, besides the digits themselves."""

    style: str
    count: int
    seed: int = 0
    size: tuple[int, int] = (640, 480)
    max_digits: int = 24
    gap: int = 4

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise OptionError(f"style: expected one of {', '.join(STYLES)}, got {self.style!r}")
        if self.count < 0 or self.max_digits < 1 or self.gap < 0:
            raise OptionError(
                f"count >= 0, max_digits >= 1 and gap >= 0 expected, got "
                f"{self.count}, {self.max_digits}, {self.gap}"
            )
        if self.style in camera.CAMERA_STYLES:
            largest = CAMERA_MIN_SIZE
        elif self.style == "multiscale":
            largest = MULTISCALE_SIDES[1]
        else:
            largest = DIGIT_SIZE
        width, height = self.size
        if width < largest or height < largest:
            raise OptionError(
                f"size: a {self.style} canvas must be at least {largest}x{largest}, "
                f"got {width}x{height}"
            )


def _frame_side(style: str, rng: np.random.Generator) -> int:
    """Side in pixels of the next digit's frame: 28, or log-uniform 20..56 for multiscale."""
    if style != "multiscale":
        return DIGIT_SIZE
    low, high = MULTISCALE_SIDES
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def _place(
    boxes: list[tuple[int, int, int, int]],
    side: int,
    size: tuple[int, int],
    gap: int,
    rng: np.random.Generator,
) -> tuple[int, int, int, int] | None:
    """A random frame of `side` px inside the canvas, `gap` px clear of `boxes`; None if full."""
    width, height = size
    placed = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    for _ in range(PLACEMENT_ATTEMPTS):
        x = int(rng.integers(0, width - side + 1))
        y = int(rng.integers(0, height - side + 1))
        clear = (
            (placed[:, 0] >= x + side + gap)
            | (placed[:, 2] + gap <= x)
            | (placed[:, 1] >= y + side + gap)
            | (placed[:, 3] + gap <= y)
        )
        if clear.all():
            return x, y, x + side, y + side
    return None


def _render_paper(ink: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """Dark ink on lit paper: gradient, tint, blur, noise; returned as JPEG bytes."""
    height, width = ink.shape
    angle = rng.uniform(0.0, 2.0 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xs * math.cos(angle) + ys * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    light = 1.0 - rng.uniform(0.10, 0.35) * ramp
    ink_reflectance = rng.uniform(0.10, 0.30)
    reflect = light * (1.0 - ink * (1.0 - ink_reflectance))
    tint = np.array([rng.uniform(0.88, 0.97), rng.uniform(0.95, 1.0), 1.0], dtype=np.float32)
    image = rng.uniform(175.0, 235.0) * reflect[..., None] * tint
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.0))
    image += rng.normal(0.0, rng.uniform(2.0, 5.0), image.shape).astype(np.float32)
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return _encode_jpeg(pixels, rng, (60, 90)), ".jpg"


def _render(ink: np.ndarray, style: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """Encode the ink map (0..1 float) in the style's appearance: (file bytes, extension)."""
    if style == "paper":
        return _render_paper(ink, rng)
    ok, encoded = cv2.imencode(".png", np.rint(ink * 255.0).astype(np.uint8))
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes(), ".png"


def _encode_jpeg(pixels: np.ndarray, rng: np.random.Generator, quality: tuple[int, int]) -> bytes:
    """JPEG bytes of `pixels` at a random quality in `quality` (inclusive)."""
    level = int(rng.integers(quality[0], quality[1] + 1))
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, level])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return encoded.tobytes()


def _mnist_scene(
    params: SceneParams, rng: np.random.Generator, next_digit: camera.DigitSource
) -> tuple[bytes, str, list[tuple[int, int, int, int]], list[int], list[int]]:
    """One scene of the MNIST-frame styles: (file bytes, extension, frames, classes, rows)."""
    width, height = params.size
    wanted = int(rng.integers(max(1, params.max_digits // 2), params.max_digits + 1))
    ink = np.zeros((height, width), dtype=np.float32)
    boxes: list[tuple[int, int, int, int]] = []
    classes: list[int] = []
    rows: list[int] = []
    while len(boxes) < wanted:
        side = _frame_side(params.style, rng)
        box = _place(boxes, side, params.size, params.gap, rng)
        if box is None:
            break
        row, digit, label = next_digit()
        if side != DIGIT_SIZE:
            shrink = side < DIGIT_SIZE
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            digit = cv2.resize(digit, (side, side), interpolation=interpolation)
        x1, y1, x2, y2 = box
        ink[y1:y2, x1:x2] = digit.astype(np.float32) / 255.0
        boxes.append(box)
        classes.append(label)
        rows.append(row)
    encoded, ext = _render(ink, params.style, rng)
    return encoded, ext, boxes, classes, rows


def generate_scenes(images: np.ndarray, labels: np.ndarray, params: SceneParams) -> Iterator[Scene]:
    """Yield `params.count` scenes placing `images` (N, 28, 28 uint8) in a seeded order.

    Digits are taken in one permutation of the split (seeded by `params.seed` alone, so every
    style sees the same digits in the same order), each used once before any repeats. Camera
    styles (`convdet.data.camera`) write them by hand on photographed pages, with tight ink boxes
    and the written strings as truth lines.
    """
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE) or not len(images):
        raise ValueError(f"images: expected (N>0, 28, 28), got {images.shape}")
    order = np.random.default_rng(params.seed).permutation(len(images))
    rng = np.random.default_rng([params.seed, STYLES.index(params.style)])
    width, height = params.size
    taken = 0

    def next_digit() -> tuple[int, np.ndarray, int]:
        nonlocal taken
        row = int(order[taken % len(order)])
        taken += 1
        return row, images[row], int(labels[row])

    for number in range(params.count):
        lines: tuple[tuple[int, ...], ...] = ()
        if params.style in camera.CAMERA_STYLES:
            page = camera.write_page(params.style, params.size, next_digit, rng, params.max_digits)
            pixels = camera.photograph(page, rng)
            encoded, ext = _encode_jpeg(pixels, rng, (40, 95)), ".jpg"
            boxes, classes, rows = page.boxes, page.classes, page.rows
            lines, box_kind = tuple(page.lines), "ink"
        else:
            encoded, ext, boxes, classes, rows = _mnist_scene(params, rng, next_digit)
            box_kind = "frame"
        truth = Truth(
            file=f"{params.style}_{number:05d}{ext}",
            width=width,
            height=height,
            style=params.style,
            boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4),
            classes=np.array(classes, dtype=np.int64),
            indices=np.array(rows, dtype=np.int64),
            lines=lines,
            box_kind=box_kind,
        )
        image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_UNCHANGED)
        yield Scene(truth=truth, encoded=encoded, image=image)


@dataclass(frozen=True)
class SceneSet:
    """A scene set on disk: its folder, manifest and one Truth per image."""

    root: Path
    manifest: dict[str, Any]
    truths: tuple[Truth, ...]

    def image(self, truth: Truth) -> np.ndarray:
        """The pixels of one scene image as stored (grayscale or BGR uint8)."""
        path = self.root / truth.file
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError(f"{path}: cannot read image listed in {TRUTH_FILE}")
        return image


def write_scene_set(out: str | Path, scenes: Iterator[Scene], manifest: dict[str, Any]) -> int:
    """Write scenes, truth.jsonl and manifest.json into `out` (created); return the image count."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    written = objects = 0
    with open(root / TRUTH_FILE, "w", encoding="utf-8") as truth_file:
        for scene in scenes:
            (root / scene.truth.file).write_bytes(scene.encoded)
            truth_file.write(json.dumps(scene.truth.to_record()) + "\n")
            written += 1
            objects += len(scene.truth.classes)
    summary = {**manifest, "images": written, "objects": objects}
    (root / MANIFEST_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return written


def load_scene_set(path: str | Path) -> SceneSet:
    """Read a scene set folder; DataError naming the file and line when something is wrong."""
    root = Path(path)
    truth_path = root / TRUTH_FILE
    if not truth_path.is_file():
        raise DataError(f"{root}: not a scene set (no {TRUTH_FILE}; make one with convdet scenes)")
    manifest_path = root / MANIFEST_FILE
    try:
        text = manifest_path.read_text(encoding="utf-8") if manifest_path.is_file() else "{}"
        manifest = json.loads(text)
    except ValueError as error:  # not UTF-8, or not JSON
        raise DataError(f"{manifest_path}: not a JSON manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{manifest_path}: not a JSON manifest (not an object)")
    try:
        lines = truth_path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"{truth_path}: not UTF-8 text ({error})") from None
    truths = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            truths.append(Truth.from_record(json.loads(line)))
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{truth_path}:{number}: bad truth record ({error!r})") from error
    return SceneSet(root=root, manifest=manifest, truths=tuple(truths))


def isolated_crops(image: np.ndarray, boxes: Sequence[Sequence[float]]) -> list[np.ndarray]:
    """Each truth frame cut from `image` and brought back to the native 28x28 digit size:
    the digits "in isolation", with the scene's look (lighting, noise, JPEG) kept."""
    crops = []
    for box in boxes:
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        crop = image[y1:y2, x1:x2]
        if crop.shape[:2] != (DIGIT_SIZE, DIGIT_SIZE):
            shrink = crop.shape[0] > DIGIT_SIZE
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            crop = cv2.resize(crop, (DIGIT_SIZE, DIGIT_SIZE), interpolation=interpolation)
        crops.append(crop)
    return crops
