"""Annotators: small classes, settings in `__init__`, one method `annotate(frame, result) -> frame`.

They draw on BGR uint8 frames in place (a gray, BGRA, uint16 or float frame is first converted
to a new BGR uint8 array, which is returned). Drawing is vectorized: colour lookup tables, index
maps and OpenCV calls, never a Python loop over grid cells.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from runtime.detector import Result

FONT = cv2.FONT_HERSHEY_SIMPLEX
HSV_STEPS = 12


def class_colors(count: int) -> np.ndarray:
    """BGR uint8 colours (count, 3) for classes 0..count-1: the hsv colour map resampled to 12
    entries (as the seed drew its grid; entry k has hue k/11 of the circle), so 11 classes get
    11 clearly different hues."""
    steps = max(HSV_STEPS, count + 1)
    hue = np.round(np.arange(count) * 180 / (steps - 1))  # OpenCV hue is 0..179
    hsv = np.stack([hue, np.full(count, 255), np.full(count, 255)], axis=1).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2BGR)[0]


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """`frame` itself if it is BGR uint8, else a BGR uint8 copy (gray, BGRA, uint16, float)."""
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        else:
            scale = 255.0 if frame.size and float(frame.max()) <= 1.0 else 1.0
            frame = np.clip(frame * scale, 0, 255).astype(np.uint8)
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def put_label(
    frame: np.ndarray,
    text: str,
    origin: tuple[int, int],
    background: tuple[int, ...],
    scale: float = 0.5,
) -> None:
    """Draw `text` with its top-left at `origin` on a filled box of colour `background`, in
    black or white, whichever reads better on it."""
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, 1)
    x, y = origin
    cv2.rectangle(frame, (x, y), (x + width + 4, y + height + baseline + 4), background, -1)
    ink = (0, 0, 0) if sum(background) > 380 else (255, 255, 255)
    cv2.putText(frame, text, (x + 2, y + height + 2), FONT, scale, ink, 1, cv2.LINE_AA)


class GridAnnotator:
    """The seed's coloured detection grid: each cell's class colour (hsv map), drawn as a
    stride-sized tile centred on the cell's window, alpha-blended over the frame; background
    cells get `background_alpha` (0: transparent); coloured cells show their edges.

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
            table[:, :3] = class_colors(count)
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


class BoxAnnotator:
    """Detection boxes in their class colour with a "label score" tag above each."""

    def __init__(self, thickness: int = 2, text_scale: float = 0.5, show_score: bool = True):
        self.thickness = thickness
        self.text_scale = text_scale
        self.show_score = show_score

    def annotate(self, frame: np.ndarray, result: Result) -> np.ndarray:
        """Draw every detection of `result`."""
        frame = as_bgr(frame)
        colors = class_colors(len(result.labels))
        detections = result.detections
        boxes = np.round(detections.xyxy).astype(int)
        for (x1, y1, x2, y2), class_id, score in zip(
            boxes, detections.class_id, detections.score, strict=True
        ):
            color = tuple(int(c) for c in colors[class_id])
            cv2.rectangle(frame, (x1, y1), (x2, y2), color, self.thickness)
            text = result.labels[class_id] + (f" {score:.2f}" if self.show_score else "")
            (_, text_height), baseline = cv2.getTextSize(text, FONT, self.text_scale, 1)
            top = max(y1 - text_height - baseline - 4, 0)
            put_label(frame, text, (x1, top), color, self.text_scale)
        return frame


class LinesAnnotator:
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

    def annotate(self, frame: np.ndarray, result: Result) -> np.ndarray:
        """Draw the lines of `result` that have at least `min_digits` digits."""
        frame = as_bgr(frame)
        height, width = frame.shape[:2]
        for line in result.lines:
            if len(line.detections) < self.min_digits:
                continue
            x1, y1, x2, y2 = (round(v) for v in line.box)
            cv2.rectangle(frame, (x1, y1), (x2, y2), self.color, 1)
            (text_width, text_height), baseline = cv2.getTextSize(
                line.text, FONT, self.text_scale, 1
            )
            label = text_height + baseline + 4  # put_label's box height
            below = min(y2 + 2, height - label)
            above = max(y1 - 2 - label, 0)
            covered_below = max(y2 - below, 0)
            covered_above = max(above + label - y1, 0)
            top = below if covered_below <= covered_above else above
            left = max(min(x1, width - text_width - 4), 0)
            put_label(frame, line.text, (left, max(top, 0)), self.color, self.text_scale)
        return frame


class LegendAnnotator:
    """A legend panel of class colours and names in a corner of the frame."""

    def __init__(self, corner: str = "top-right", swatch: int = 14, text_scale: float = 0.45):
        if corner not in ("top-left", "top-right", "bottom-left", "bottom-right"):
            raise ValueError(
                f"corner: expected top-left/top-right/bottom-left/bottom-right, got {corner!r}"
            )
        self.corner = corner
        self.swatch = swatch
        self.text_scale = text_scale

    def annotate(self, frame: np.ndarray, result: Result) -> np.ndarray:
        """Draw the legend for `result.labels`."""
        frame = as_bgr(frame)
        colors = class_colors(len(result.labels))
        line = self.swatch + 4
        text_width = max(
            cv2.getTextSize(label, FONT, self.text_scale, 1)[0][0] for label in result.labels
        )
        panel_width = self.swatch + text_width + 16
        panel_height = line * len(result.labels) + 6
        height, width = frame.shape[:2]
        x = width - panel_width - 4 if self.corner.endswith("right") else 4
        y = height - panel_height - 4 if self.corner.startswith("bottom") else 4
        x, y = max(x, 0), max(y, 0)
        panel = frame[y : y + panel_height, x : x + panel_width]
        panel[:] = panel // 3  # darken behind the legend so it reads on any frame
        for index, (label, color) in enumerate(zip(result.labels, colors, strict=True)):
            top = y + 4 + index * line
            bgr = tuple(int(c) for c in color)
            cv2.rectangle(frame, (x + 4, top), (x + 4 + self.swatch, top + self.swatch), bgr, -1)
            cv2.putText(
                frame,
                label,
                (x + self.swatch + 10, top + self.swatch - 2),
                FONT,
                self.text_scale,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
        return frame


class StatsAnnotator:
    """FPS (smoothed over the intervals between calls), per-stage latency of the result, and the
    dropped-frame count the caller keeps in `dropped` (e.g. from a live camera reader)."""

    def __init__(
        self,
        smoothing: float = 0.9,
        text_scale: float = 0.5,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.smoothing = smoothing
        self.text_scale = text_scale
        self.clock = clock
        self.dropped = 0
        self.fps: float | None = None
        self._last: float | None = None

    def annotate(self, frame: np.ndarray, result: Result) -> np.ndarray:
        """Update the FPS estimate and draw the stats lines at the top left."""
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
        (_, text_height), baseline = cv2.getTextSize("Ag", FONT, self.text_scale, 1)
        for index, text in enumerate(lines):
            origin = (4, 4 + index * (text_height + baseline + 6))
            put_label(frame, text, origin, (32, 32, 32), self.text_scale)
        return frame
