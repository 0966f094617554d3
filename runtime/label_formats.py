"""Detections in the annotation formats other tools read: a COCO results file (pycocotools'
loadRes, `--coco`) and YOLO label files (ultralytics, `--save-txt`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from convdet.runtime.detections import Detections
from convdet.runtime.savers import ErrorHandler, write_atomic


def yolo_labels(detections: Detections, shape: Sequence[int], scores: bool = False) -> str:
    """A YOLO label file of one image or frame: a line `class_id cx cy w h` per detection,
    normalized to 0..1 by the frame's width and height (and with `scores` the score as a
    sixth column, as ultralytics' --save-conf writes it); empty without detections."""
    height, width = shape[:2]
    size = np.array([width, height], np.float64)
    xyxy = detections.xyxy.astype(np.float64)
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2 / size
    sides = (xyxy[:, 2:] - xyxy[:, :2]) / size
    lines = []
    for index, class_id in enumerate(detections.class_id.tolist()):
        values = [*centres[index], *sides[index]] + ([detections.score[index]] if scores else [])
        lines.append(" ".join([str(class_id), *(f"{float(v):.6g}" for v in values)]) + "\n")
    return "".join(lines)


class CocoResults:
    """A COCO results file (a JSON list of {image_id, category_id, bbox [x, y, w, h], score},
    as pycocotools' loadRes reads it), collected in memory and written when the `with` block
    ends, atomically (`write_atomic`), so the file is whole or missing; a write that fails
    goes to `on_error`."""

    def __init__(self, path: Path, *, on_error: ErrorHandler) -> None:
        self.path = Path(path)
        self.on_error = on_error
        self.results: list[dict[str, Any]] = []

    def __enter__(self) -> CocoResults:
        return self

    def add(self, image_id: int, detections: Detections) -> None:
        """The detections of image `image_id`; boxes become [x, y, width, height]."""
        for box, class_id, score in zip(
            detections.xyxy.tolist(),
            detections.class_id.tolist(),
            detections.score.tolist(),
            strict=True,
        ):
            x1, y1, x2, y2 = box
            self.results.append(
                {
                    "image_id": image_id,
                    "category_id": class_id,
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "score": round(score, 4),
                }
            )

    def __exit__(self, *exc: object) -> None:
        try:
            write_atomic(self.path, (json.dumps(self.results) + "\n").encode("utf-8"))
        except OSError as error:
            self.on_error(str(self.path), error.strerror or str(error))
