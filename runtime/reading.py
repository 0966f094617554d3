"""Reading digit strings: one frame's detections grouped into written lines, in reading order.

Rows. Detection j is a row neighbour on the right of detection i when j's centre lies to the
right of i's and the two centres differ in y by at most `ROW_TOLERANCE` (half) of the taller
box's height. Each detection links to its nearest such neighbour (by centre distance), and a
link holds when it is mutual (i is also j's nearest neighbour on the left), so a row is a chain
of neighbours: a slanted string stays one row, since each link compares two neighbours only,
and boxes of different heights (a "1"'s narrow tall box beside a round "0") still line up.

Lines. A row is cut where the gap between two neighbours' boxes (the right one's x1 minus the
left one's x2) is wider than `gap` (default 1) times the taller box's height. A gap wider than a
digit is tall separates fields: a date "12 05 1897" written with wide gaps reads as three lines,
each with its own text and box, because a form reader wants the fields apart (and gets them one
after the other); touching, overlapping and normally spaced digits stay one line. On the
ORAND-CAR-A training amounts (ink boxes), 99.9% of neighbouring digits are closer than 1.13
heights and the median gap is 0.07. `gap=math.inf` keeps every row whole.

Order: rows top to bottom by the mean centre y of their digits; the lines of a row left to
right. A line's score is its lowest digit score: a string is only as sure as its least sure digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from convdet.runtime.detections import Detections

ROW_TOLERANCE = 0.5
GAP = 1.0


@dataclass(frozen=True)
class Line:
    """One written line: `text` (its labels in reading order), `box` (the union xyxy of its
    digits), `detections` (indices into the frame's detections, in reading order), `score`."""

    text: str
    box: tuple[float, float, float, float]
    detections: tuple[int, ...]
    score: float

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready form used in detection records: text, box, detections, score."""
        return {
            "text": self.text,
            "box": [round(v, 1) for v in self.box],
            "detections": list(self.detections),
            "score": round(self.score, 4),
        }


def group_lines(xyxy: np.ndarray, gap: float = GAP) -> list[np.ndarray]:
    """Indices of the boxes (N, 4) of each written line, lines and indices in reading order
    (the rule is in the module doc)."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    count = len(boxes)
    if not count:
        return []
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    height = boxes[:, 3] - boxes[:, 1]
    dx = centre[None, :, 0] - centre[:, None, 0]  # [i, j]: how far j lies right of i
    dy = centre[None, :, 1] - centre[:, None, 1]
    taller = np.maximum(height[:, None], height[None, :])
    neighbour = (dx > 0) & (np.abs(dy) <= ROW_TOLERANCE * taller)
    distance = np.where(neighbour, np.hypot(dx, dy), np.inf)
    right = distance.argmin(axis=1)
    everyone = np.arange(count)
    linked = np.isfinite(distance[everyone, right]) & (distance.argmin(axis=0)[right] == everyone)
    has_left = np.zeros(count, dtype=bool)
    has_left[right[linked]] = True
    after = np.where(linked, right, -1).tolist()
    rows = []
    for start in np.flatnonzero(~has_left).tolist():
        row = [start]
        while after[row[-1]] >= 0:
            row.append(after[row[-1]])
        rows.append(row)
    sizes = np.array([len(row) for row in rows])
    firsts = np.cumsum(sizes) - sizes
    order = np.array([i for row in rows for i in row])
    mean_y = np.add.reduceat(centre[order, 1], firsts) / sizes
    rows = [rows[k] for k in np.lexsort((centre[order[firsts], 0], mean_y))]
    order = np.array([i for row in rows for i in row])
    cut = np.zeros(count, dtype=bool)
    cut[np.cumsum([len(row) for row in rows])[:-1]] = True  # each row starts a line
    spaces = boxes[order[1:], 0] - boxes[order[:-1], 2]
    cut[1:] |= spaces > gap * np.maximum(height[order[1:]], height[order[:-1]])
    return np.split(order, np.flatnonzero(cut))


def read_lines(detections: Detections, labels: Sequence[str], gap: float = GAP) -> tuple[Line, ...]:
    """The written lines of one frame's detections in reading order, each with its text read
    through `labels` (class id -> label), its box and its score."""
    lines = group_lines(detections.xyxy, gap)
    if not lines:
        return ()
    order = np.concatenate(lines)
    firsts = np.r_[0, np.cumsum([len(line) for line in lines])[:-1]]
    low = np.minimum.reduceat(detections.xyxy[order, :2], firsts).tolist()
    high = np.maximum.reduceat(detections.xyxy[order, 2:], firsts).tolist()
    scores = np.minimum.reduceat(detections.score[order], firsts).tolist()
    texts = [labels[class_id] for class_id in detections.class_id[order].tolist()]
    ends = [*firsts[1:].tolist(), len(order)]
    return tuple(
        Line(
            text="".join(texts[first:end]),
            box=(*low[k], *high[k]),
            detections=tuple(line.tolist()),
            score=scores[k],
        )
        for k, (line, first, end) in enumerate(zip(lines, firsts.tolist(), ends, strict=True))
    )
