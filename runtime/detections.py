"""`Detections`: what flows from grouping to annotators and writers, as parallel numpy arrays.

`to_supervision` / `from_supervision` convert to and from `supervision.Detections`; supervision
is imported only there, so it stays an optional dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

# supervision.Detections.data's key for class names (supervision's CLASS_NAME_DATA_FIELD), which
# its label annotators write when given no labels.
CLASS_NAME = "class_name"


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

    def id_labels(self) -> tuple[str, ...]:
        """Class names where no model gives them: class ids 0..max as text (for the shipped
        models, whose class k is the digit k, the same names)."""
        return tuple(str(class_id) for class_id in range(int(self.class_id.max(initial=-1)) + 1))

    def to_supervision(self, labels: Sequence[str] | None = None) -> Any:
        """These detections as a `supervision.Detections` (xyxy, confidence, class_id, and each
        one's class name, from `labels` or else `id_labels`, in data["class_name"]), to use
        supervision's annotators, trackers and tools on them."""
        sv = _supervision("Detections.to_supervision")
        names = self.id_labels() if labels is None else labels
        return sv.Detections(
            xyxy=self.xyxy.copy(),
            confidence=self.score.copy(),
            class_id=self.class_id.copy(),
            data={CLASS_NAME: np.array([names[k] for k in self.class_id.tolist()], dtype=str)},
        )

    @classmethod
    def from_supervision(cls, detections: Any) -> Detections:
        """A `supervision.Detections` as Detections: its xyxy, class_id and confidence (1 where
        it has none, as ground truth); masks, tracker ids and data are not kept."""
        sv = _supervision("Detections.from_supervision")
        if not isinstance(detections, sv.Detections):
            got = type(detections).__name__
            raise TypeError(f"from_supervision: expected supervision.Detections, got {got}")
        if detections.class_id is None:
            raise ValueError("from_supervision: the detections have no class_id")
        confidence = detections.confidence
        if confidence is None:
            confidence = np.ones(len(detections.xyxy), np.float32)
        return cls(detections.xyxy, detections.class_id, confidence)


def _supervision(caller: str) -> ModuleType:
    """The supervision module, or ModuleNotFoundError with one line saying how to install it."""
    try:
        import supervision
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "supervision":
            raise
        message = f"{caller} needs supervision, which is not installed: pip install supervision"
        raise ModuleNotFoundError(message, name="supervision") from None
    return supervision
