"""`Detections`: what flows from grouping to annotators and writers, as parallel numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Detections:
    """N detections as parallel arrays: `xyxy` (N, 4) float32 boxes in input pixels,
    `class_id` (N,) int64 and `score` (N,) float32.

    Arrays are converted to these dtypes on construction; shapes are checked so a bad producer
    fails where it builds the object, not later in a writer.
    """

    xyxy: np.ndarray
    class_id: np.ndarray
    score: np.ndarray

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        class_id = np.asarray(self.class_id, dtype=np.int64)
        score = np.asarray(self.score, dtype=np.float32)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy: expected shape (N, 4), got {xyxy.shape}")
        count = xyxy.shape[0]
        for name, array in (("class_id", class_id), ("score", score)):
            if array.shape != (count,):
                raise ValueError(f"{name}: expected shape ({count},), got {array.shape}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "class_id", class_id)
        object.__setattr__(self, "score", score)

    @classmethod
    def empty(cls) -> Detections:
        """No detections (the result of a blank frame)."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    @classmethod
    def concatenate(cls, parts: Sequence[Detections]) -> Detections:
        """All detections of `parts`, in order (e.g. the per-scale results before merging)."""
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([part.xyxy for part in parts]),
            np.concatenate([part.class_id for part in parts]),
            np.concatenate([part.score for part in parts]),
        )

    def __len__(self) -> int:
        return int(self.class_id.shape[0])

    def __getitem__(self, index: Any) -> Detections:
        """A subset by boolean mask, integer indices or slice; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Detections(self.xyxy[index], self.class_id[index], self.score[index])

    def sorted_by_score(self) -> Detections:
        """The same detections, highest score first (stable, so ties keep their order)."""
        return self[np.argsort(-self.score, kind="stable")]

    def pixel_boxes(self, height: int, width: int) -> np.ndarray:
        """Boxes (N, 4) int as drawn: rounded to whole pixels and clipped to a `height` x
        `width` frame, [x1, y1, x2, y2] with x2 and y2 the last pixel inside (for crops)."""
        boxes = np.round(self.xyxy).astype(np.int64)
        np.clip(boxes[:, 0::2], 0, width - 1, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, height - 1, out=boxes[:, 1::2])
        return boxes

    @property
    def area(self) -> np.ndarray:
        """Box areas (N,) in square pixels."""
        size = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return size[:, 0] * size[:, 1]

    @property
    def centre(self) -> np.ndarray:
        """Box centres (N, 2) as (x, y) in input pixels."""
        return (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2

    def to_records(self, labels: Sequence[str]) -> list[dict[str, Any]]:
        """JSON-ready dicts (README, JSON Lines): class_id, label, score, box [x1, y1, x2, y2]."""
        return [
            {
                "class_id": int(class_id),
                "label": labels[class_id],
                "score": round(float(score), 4),
                "box": [round(float(v), 1) for v in box],
            }
            for box, class_id, score in zip(self.xyxy, self.class_id, self.score, strict=True)
        ]
