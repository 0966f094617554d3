"""Annotators: small classes, settings in `__init__`, one method `annotate(frame, result) -> frame`.

Those that draw detections (`BoxAnnotator`, `LinesAnnotator`) also take `detections=`: a subset
of `result.detections` to draw instead (e.g. filtered by score), or `Detections` without a Result.

They draw on BGR uint8 frames in place (a gray, BGRA, uint16 or float frame is first converted
to a new BGR uint8 array, which is returned). Drawing is vectorized: colour lookup tables, index
maps and OpenCV calls, never a Python loop over grid cells.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import cv2
import numpy as np
from convdet.runtime.detections import Detections
from convdet.runtime.detector import Result
from convdet.runtime.grid import digit_score
from convdet.runtime.preprocess import white_level
from convdet.runtime.reading import Line, read_lines

FONT = cv2.FONT_HERSHEY_SIMPLEX
# Ten saturated colours for the digits (RGB hex), at least 25 apart in CIE Lab (ΔE76) so no
# two classes look alike: red, orange, yellow, green, cyan, blue, purple, magenta, lime, teal.
PALETTE = (
    "e6194b", "f58231", "ffe119", "3cb44b", "42d4f4",
    "4363d8", "911eb4", "f032e6", "bfef45", "469990",
)  # fmt: skip
BACKGROUND_COLOR = (128, 128, 128)  # BGR: the grey `background_alpha` tints background cells
BLACK, WHITE = (0, 0, 0), (255, 255, 255)


def class_colors(count: int, background: int | None = None) -> np.ndarray:
    """BGR uint8 colours (count, 3) for classes 0..count-1: the palette in class order
    (repeating after ten classes) and grey for the `background` class, if given."""
    rgb = [tuple(int(hex_[i : i + 2], 16) for i in (0, 2, 4)) for hex_ in PALETTE]
    colors = np.array([rgb[k % len(rgb)][::-1] for k in range(count)], np.uint8).reshape(-1, 3)
    if background is not None:
        colors[background] = BACKGROUND_COLOR
    return colors


def relative_luminance(bgr: Sequence[int]) -> float:
    """WCAG 2 relative luminance (0 black .. 1 white) of a BGR uint8 colour."""
    blue, green, red = (
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in np.divide(bgr, 255)
    )
    return float(0.2126 * red + 0.7152 * green + 0.0722 * blue)


def contrast_ratio(first: Sequence[int], second: Sequence[int]) -> float:
    """WCAG 2 contrast ratio (1..21) of two BGR colours; text needs 4.5 to read well."""
    lighter, darker = sorted(map(relative_luminance, (first, second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def label_ink(background: Sequence[int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with `background` (always at least 4.58:1)."""
    black, white = contrast_ratio(BLACK, background), contrast_ratio(WHITE, background)
    return BLACK if black >= white else WHITE


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """`frame` itself if it is BGR uint8, else a BGR uint8 copy (gray, BGRA, uint16, float)."""
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:  # by the depth its data uses, as the detector reads it
            colour = frame[..., :3] if frame.ndim == 3 and frame.shape[2] == 4 else frame
            frame = cv2.convertScaleAbs(frame, alpha=255 / white_level(colour))
        else:
            scale = 255.0 if frame.size and float(frame.max()) <= 1.0 else 1.0
            frame = np.clip(frame * scale, 0, 255).astype(np.uint8)
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def label_size(text: str, scale: float = 0.5) -> tuple[int, int]:
    """Width and height in pixels of the box `put_label` draws for `text`."""
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, 1)
    return width + 4, height + baseline + 4


def put_label(
    frame: np.ndarray,
    text: str,
    origin: tuple[int, int],
    background: tuple[int, ...],
    scale: float = 0.5,
) -> None:
    """Draw `text` on a filled box of colour `background` with its top-left at `origin`, moved
    into the frame where it would stick out, in black or white, whichever contrasts more."""
    width, height = label_size(text, scale)
    x = max(min(origin[0], frame.shape[1] - width), 0)
    y = max(min(origin[1], frame.shape[0] - height), 0)
    cv2.rectangle(frame, (x, y), (x + width - 1, y + height - 1), background, -1)
    ascent = cv2.getTextSize(text, FONT, scale, 1)[0][1]
    cv2.putText(
        frame, text, (x + 2, y + ascent + 2), FONT, scale, label_ink(background), 1, cv2.LINE_AA
    )


class GridAnnotator:
    """The coloured detection grid: each cell's class colour (`class_colors`), drawn as
    a stride-sized tile centred on the cell's window, alpha-blended over the frame; background
    cells get grey at `background_alpha` (0: transparent); coloured cells show their edges.

    One fused lookup per frame: a table maps each class to its colour and a digit flag packed
    in 32 bits, gathered from cells to pixels in one pass; OpenCV blends under that flag.
    """

    def __init__(
        self, alpha: float = 0.5, background_alpha: float = 0.0, edges: bool = True
    ) -> None:
        self.alpha = alpha
        self.background_alpha = background_alpha
        self.edges = edges
        self._layout: tuple[tuple[object, ...], tuple[np.ndarray, ...]] | None = None
        self._table: tuple[tuple[int, int], np.ndarray] | None = None

    def annotate(self, frame: np.ndarray, result: Result) -> np.ndarray:
        """Blend the grid of `result` (first scale) over `frame`."""
        frame = as_bgr(frame)
        height, width = frame.shape[:2]
        rows, cols = result.cell_class.shape
        row_of, col_of, tile_edges = self._pixel_layout(height, width, rows, cols, result)
        # One extra row/column of background stands for pixels outside the grid (index -1).
        classes = np.full((rows + 1, cols + 1), result.background, np.intp)
        classes[:rows, :cols] = result.cell_class
        packed = self._colour_table(len(result.labels), result.background)[classes]
        overlay = packed.take(row_of, axis=0).take(col_of, axis=1).view(np.uint8)
        overlay = overlay.reshape(height, width, 4)  # B, G, R, 255 on digit cells else 0
        colours = cv2.cvtColor(overlay, cv2.COLOR_BGRA2BGR)
        digits = cv2.extractChannel(overlay, 3)
        blended = cv2.addWeighted(frame, 1 - self.alpha, colours, self.alpha, 0.0)
        if self.background_alpha:
            weight = self.background_alpha
            cv2.addWeighted(frame, 1 - weight, colours, weight, 0.0, dst=frame)
        cv2.copyTo(blended, digits, frame)
        if self.edges:
            cv2.copyTo(frame >> 1, cv2.bitwise_and(digits, tile_edges), frame)
        return frame

    def _colour_table(self, count: int, background: int) -> np.ndarray:
        """(count,) uint32: each class's B, G, R and a digit flag (255, 0 for background)."""
        if self._table is None or self._table[0] != (count, background):
            table = np.zeros((count, 4), np.uint8)
            table[:, :3] = class_colors(count, background)
            table[:, 3] = 255
            table[background, 3] = 0
            self._table = ((count, background), table.view(np.uint32)[:, 0])
        return self._table[1]

    def _pixel_layout(
        self, height: int, width: int, rows: int, cols: int, result: Result
    ) -> tuple[np.ndarray, ...]:
        """Per pixel row and column: the cell index (-1 outside), and a uint8 map (255) of the
        first row/column of every tile; kept while frame size and geometry stay the same."""
        key = (height, width, rows, cols, result.geometry)
        if self._layout is None or self._layout[0] != key:
            row_of = result.geometry.pixel_cells(height, rows)
            col_of = result.geometry.pixel_cells(width, cols)
            row_edge = np.r_[False, row_of[1:] != row_of[:-1]]
            col_edge = np.r_[False, col_of[1:] != col_of[:-1]]
            edges = (row_edge[:, None] | col_edge[None, :]).astype(np.uint8) * 255
            self._layout = (key, (row_of, col_of, edges))
        return self._layout[1]


class HeatmapAnnotator(GridAnnotator):
    """The heat map: each cell's most likely digit's colour (`class_colors`) blended
    over its tile, laid out as GridAnnotator's, weighted by the cell's digit score
    (1 - P(background)) times `alpha`, so background stays the frame and the surer a cell is
    of a digit, the stronger its colour shows (at most `alpha`, so the ink stays visible)."""

    def __init__(self, alpha: float = 0.6) -> None:
        super().__init__(alpha=alpha, edges=False)

    def annotate(self, frame: np.ndarray, result: Result) -> np.ndarray:
        """Blend the heat map of `result` (first scale) over `frame`."""
        frame = as_bgr(frame)
        height, width = frame.shape[:2]
        rows, cols = result.cell_class.shape
        row_of, col_of, _ = self._pixel_layout(height, width, rows, cols, result)
        digits = np.delete(np.arange(len(result.labels)), result.background)
        best = digits[result.scores[..., digits].argmax(axis=-1)]
        # One extra row/column of weight 0 stands for pixels outside the grid (index -1).
        colours = np.zeros((rows + 1, cols + 1, 3), np.float32)
        colours[:rows, :cols] = class_colors(len(result.labels))[best]
        weights = np.zeros((rows + 1, cols + 1, 1), np.float32)
        weights[:rows, :cols, 0] = self.alpha * digit_score(result.scores, result.background)
        colour = colours.take(row_of, axis=0).take(col_of, axis=1)
        weight = weights.take(row_of, axis=0).take(col_of, axis=1)
        pixels = frame.astype(np.float32)
        frame[:] = np.rint(pixels + (colour - pixels) * weight).astype(np.uint8)
        return frame


class Drawn(NamedTuple):
    """What a detection annotator draws: `detections`, the class names `labels` (class id ->
    name) and the lines a Result read from them, if any (`read` reads them otherwise)."""

    detections: Detections
    labels: Sequence[str]
    lines: Sequence[Line] | None = None

    def read(self) -> Sequence[Line]:
        """The detections' lines: those given, else read from the detections."""
        return read_lines(self.detections, self.labels) if self.lines is None else self.lines


class DetectionAnnotator:
    """Base of the annotators that draw detections. `annotate(frame, result)` draws those of
    `result`; with `detections=`, those instead: a subset of `result.detections` (e.g. filtered
    by score), or `Detections` without a Result, each class then named by its id (the digit
    itself, for the shipped models)."""

    def annotate(
        self,
        frame: np.ndarray,
        result: Result | None = None,
        *,
        detections: Detections | None = None,
    ) -> np.ndarray:
        """Draw the detections of `result`, or `detections`, on `frame`."""
        if detections is None:
            if result is None:
                raise TypeError("annotate: expected a Result or detections=Detections")
            drawn = Drawn(result.detections, result.labels, result.lines)
        elif result is not None:
            drawn = Drawn(detections, result.labels)
        else:
            drawn = Drawn(detections, detections.id_labels())
        return self._draw(as_bgr(frame), drawn)

    def _draw(self, frame: np.ndarray, drawn: Drawn) -> np.ndarray:
        """Draw `drawn` on the BGR uint8 `frame` (in place) and return it."""
        raise NotImplementedError


class BoxAnnotator(DetectionAnnotator):
    """Detection boxes in their class colour with a "label score" tag above each (below the box
    when the frame ends above it), every tag kept inside the frame."""

    def __init__(self, thickness: int = 2, text_scale: float = 0.5, show_score: bool = True):
        self.thickness = thickness
        self.text_scale = text_scale
        self.show_score = show_score

    def _draw(self, frame: np.ndarray, drawn: Drawn) -> np.ndarray:
        """Draw a box and a tag for each detection."""
        detections, labels, _ = drawn
        colors = class_colors(len(labels))
        boxes = detections.pixel_boxes(*frame.shape[:2])
        for (x1, y1, x2, y2), class_id, score in zip(
            boxes, detections.class_id, detections.score, strict=True
        ):
            color = tuple(int(c) for c in colors[class_id])
            cv2.rectangle(frame, (x1, y1), (x2, y2), color, self.thickness)
            text = labels[class_id] + (f" {score:.2f}" if self.show_score else "")
            height = label_size(text, self.text_scale)[1]
            top = y1 - height if y1 >= height else y2 + 1
            put_label(frame, text, (x1, top), color, self.text_scale)
        return frame


class LinesAnnotator(DetectionAnnotator):
    """Each read line's text on a filled label below the line's box (above it when the frame
    ends there, else wherever it covers the box least), and a thin outline of the box, so the
    digits stay visible and the per-digit tags of `BoxAnnotator`, drawn above, stay clear.
    Lines of fewer than `min_digits` digits are left to those tags (scattered single digits)."""

    def __init__(
        self,
        text_scale: float = 0.6,
        color: tuple[int, int, int] = (255, 255, 255),
        min_digits: int = 2,
    ) -> None:
        self.text_scale = text_scale
        self.color = color
        self.min_digits = min_digits

    def _draw(self, frame: np.ndarray, drawn: Drawn) -> np.ndarray:
        """Draw the lines that have at least `min_digits` digits."""
        height = frame.shape[0]
        for line in drawn.read():
            if len(line.detections) < self.min_digits:
                continue
            x1, y1, x2, y2 = (round(v) for v in line.box)
            cv2.rectangle(frame, (x1, y1), (x2, y2), self.color, 1)
            label = label_size(line.text, self.text_scale)[1]
            below = min(y2 + 2, height - label)
            above = max(y1 - 2 - label, 0)
            covered_below = max(y2 - below, 0)
            covered_above = max(above + label - y1, 0)
            top = below if covered_below <= covered_above else above
            put_label(frame, line.text, (x1, top), self.color, self.text_scale)
        return frame


LEGEND_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
PANEL_COLOR = (32, 32, 32)  # BGR: the strips the legend and the stats bar are drawn on


class LegendAnnotator:
    """The class colours and names (the background class, never drawn, is left out).

    By default on a dark strip added to the right of the frame, so it covers nothing (the
    returned frame is wider, image coordinates unchanged); with `corner`, on a darkened
    panel inside the frame, covering what is there.
    """

    def __init__(
        self, corner: str | None = None, swatch: int = 14, text_scale: float = 0.45
    ) -> None:
        if corner is not None and corner not in LEGEND_CORNERS:
            raise ValueError(f"corner: expected {'/'.join(LEGEND_CORNERS)} or None, got {corner!r}")
        self.corner = corner
        self.swatch = swatch
        self.text_scale = text_scale

    def annotate(self, frame: np.ndarray, result: Result) -> np.ndarray:
        """Draw the legend for the digit classes of `result.labels`."""
        frame = as_bgr(frame)
        colors = class_colors(len(result.labels))
        entries = [
            (label, tuple(int(c) for c in color))
            for index, (label, color) in enumerate(zip(result.labels, colors, strict=True))
            if index != result.background
        ]
        row = self.swatch + 4
        text = max(cv2.getTextSize(label, FONT, self.text_scale, 1)[0][0] for label, _ in entries)
        column = self.swatch + 14 + text
        height, width = frame.shape[:2]
        if self.corner is None:  # as many columns as the frame's height needs
            per_column = max((height - 4) // row, 1)
            columns = -(-len(entries) // per_column)
            strip = np.full((height, columns * column + 4, 3), PANEL_COLOR, np.uint8)
            self._draw(strip, entries, 0, 0, per_column, column)
            return cv2.hconcat([frame, strip])
        panel_width, panel_height = column + 4, row * len(entries) + 4
        x = width - panel_width - 4 if self.corner.endswith("right") else 4
        y = height - panel_height - 4 if self.corner.startswith("bottom") else 4
        x, y = max(x, 0), max(y, 0)
        panel = frame[y : y + panel_height, x : x + panel_width]
        panel[:] = panel // 3  # darken behind the legend so it reads on any frame
        self._draw(frame, entries, x, y, len(entries), column)
        return frame

    def _draw(
        self,
        canvas: np.ndarray,
        entries: list[tuple[str, tuple[int, ...]]],
        x: int,
        y: int,
        per_column: int,
        column: int,
    ) -> None:
        """Swatch and name of each entry, `per_column` to a column `column` px wide, from x, y."""
        for index, (label, color) in enumerate(entries):
            left = x + 4 + (index // per_column) * column
            top = y + 4 + (index % per_column) * (self.swatch + 4)
            cv2.rectangle(canvas, (left, top), (left + self.swatch, top + self.swatch), color, -1)
            cv2.putText(
                canvas,
                label,
                (left + self.swatch + 6, top + self.swatch - 2),
                FONT,
                self.text_scale,
                WHITE,
                1,
                cv2.LINE_AA,
            )


class StatsAnnotator:
    """FPS (smoothed over the intervals between calls), per-stage latency of the result, and the
    dropped-frame count the caller keeps in `dropped` (e.g. from a live camera reader).

    Drawn at the top left of the frame, or with `bar=True` on a dark bar added below it, so it
    covers nothing (the returned frame is then a new, taller array: the input is left as is).
    """

    def __init__(
        self,
        smoothing: float = 0.9,
        text_scale: float = 0.5,
        clock: Callable[[], float] = time.perf_counter,
        bar: bool = False,
    ) -> None:
        self.smoothing = smoothing
        self.text_scale = text_scale
        self.clock = clock
        self.bar = bar
        self.dropped = 0
        self.fps: float | None = None
        self._last: float | None = None

    def annotate(self, frame: np.ndarray, result: Result) -> np.ndarray:
        """Update the FPS estimate and draw the stats lines."""
        frame = as_bgr(frame)
        now = self.clock()
        if self._last is not None and now > self._last:
            current = 1.0 / (now - self._last)
            self.fps = (
                current
                if self.fps is None
                else (self.smoothing * self.fps + (1 - self.smoothing) * current)
            )
        self._last = now
        stages = " ".join(f"{name} {ms:.1f}" for name, ms in result.timings.items())
        lines = [
            f"FPS {self.fps:.1f}" if self.fps is not None else "FPS -",
            f"latency {sum(result.timings.values()):.1f} ms ({stages})",
            f"dropped {self.dropped}",
        ]
        row = label_size("Ag", self.text_scale)[1] + 2
        top = 4
        if self.bar:
            top = frame.shape[0] + 2
            bar = np.full((len(lines) * row + 4, frame.shape[1], 3), PANEL_COLOR, np.uint8)
            frame = cv2.vconcat([frame, bar])
        for index, text in enumerate(lines):
            put_label(frame, text, (4, top + index * row), PANEL_COLOR, self.text_scale)
        return frame
