"""`Detector`: frame in, `Result` out (score grid, per-cell classes, detections, stage timings)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.backends import Backend, open_backend
from runtime.defaults import DEFAULT_CONF
from runtime.detections import Detections
from runtime.grid import GridGeometry, decode_cells
from runtime.grouping import Grouping
from runtime.modelinfo import ModelInfo
from runtime.preprocess import Preprocessor
from runtime.reading import Line, read_lines


@dataclass(frozen=True)
class Result:
    """What a detector saw in one frame.

    `scores` (gh, gw, C) and `cell_class` (gh, gw) belong to the first scale's grid, whose cells
    `geometry` places in frame pixels; `timings` are milliseconds per stage ("preprocess",
    "infer", "decode"); `inverted` says whether the frame was inverted to the model's polarity;
    `lines` are the detections read as written strings, in reading order (runtime.reading).
    """

    scores: np.ndarray = field(repr=False)
    cell_class: np.ndarray = field(repr=False)
    detections: Detections
    geometry: GridGeometry
    labels: tuple[str, ...]
    background: int
    frame_shape: tuple[int, ...]
    inverted: bool
    timings: dict[str, float] = field(default_factory=dict)
    lines: tuple[Line, ...] = ()


class Detector:
    """A loaded model plus its pre- and post-processing settings; call it on frames.

    `model` is a .onnx or .tflite path (default: the shipped default model); `conf` is the
    minimum digit probability of a cell; `scales` resize the frame before inference (e.g.
    (0.5, 1, 2) for digits of about 14-56 px), results merged by NMS; `invert` is "auto",
    "on" or "off"; `normalize` removes uneven lighting (on by default: paper-style F1 0.25 ->
    0.67 with an early model, MNIST-style unchanged); `threads`/`providers` go to the backend.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        conf: float = DEFAULT_CONF,
        scales: Sequence[float] = (1.0,),
        invert: str = "auto",
        normalize: bool = True,
        grouping: Grouping | None = None,
        threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        if model is None:
            from runtime.models import default_model_path

            model = default_model_path()
        if not scales or any(scale <= 0 for scale in scales):
            raise ValueError(f"scales: expected one or more positive numbers, got {scales!r}")
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"conf: expected a probability in 0..1, got {conf}")
        self.backend: Backend = open_backend(model, threads=threads, providers=providers)
        self.info: ModelInfo = self.backend.info
        self.labels: tuple[str, ...] = self.info.classes
        self.conf = conf
        self.scales = tuple(float(scale) for scale in scales)
        self.grouping = grouping or Grouping()
        self.preprocessor = Preprocessor(self.info, invert=invert, normalize=normalize)

    @property
    def model_path(self) -> Path:
        """The model file this detector runs."""
        return self.backend.path

    def __call__(self, frame: np.ndarray) -> Result:
        """Detect digits in one frame (any array OpenCV gives: gray, BGR or BGRA)."""
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Result]:
        """Detect in several frames; frames of one size share one inference per scale.
        A batched frame's timings are its share of the batch's time."""
        start = time.perf_counter()
        prepared = [self.preprocessor.prepare(frame) for frame in frames]
        prepare_ms = (time.perf_counter() - start) * 1e3 / max(len(frames), 1)
        timings = [{"preprocess": prepare_ms, "infer": 0.0} for _ in frames]
        grids: list[list[tuple[np.ndarray, GridGeometry]]] = [[] for _ in frames]
        same_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, (image, _) in enumerate(prepared):
            same_size[image.shape].append(index)
        for indices in same_size.values():
            for scale in self.scales:
                start = time.perf_counter()
                batch = self._batch([prepared[index][0] for index in indices], scale)
                middle = time.perf_counter()
                scores = self.backend.run(batch)
                end = time.perf_counter()
                geometry = GridGeometry.from_info(self.info, scale)
                for position, index in enumerate(indices):
                    grids[index].append((scores[position], geometry))
                    timings[index]["preprocess"] += (middle - start) * 1e3 / len(indices)
                    timings[index]["infer"] += (end - middle) * 1e3 / len(indices)
        return [
            self._decode(grids[index], frame.shape, prepared[index][1], timings[index])
            for index, frame in enumerate(frames)
        ]

    def _batch(self, images: list[np.ndarray], scale: float) -> np.ndarray:
        """The model input for same-size images at one scale (the reused buffer for one image)."""
        size = self.backend.fixed_size
        if len(images) == 1:
            return self.preprocessor.model_input(images[0], scale, size)
        return np.concatenate(
            [self.preprocessor.model_input(image, scale, size).copy() for image in images]
        )

    def _decode(
        self,
        grids: list[tuple[np.ndarray, GridGeometry]],
        frame_shape: tuple[int, ...],
        inverted: bool,
        timings: dict[str, float],
    ) -> Result:
        """Group one frame's grids into detections, read them as lines, package the Result."""
        start = time.perf_counter()
        background = self.info.background
        detections = self.grouping(grids, background, self.conf, frame_shape[:2])
        lines = read_lines(detections, self.labels)
        scores, geometry = grids[0]
        cell_class, _ = decode_cells(scores, background, self.conf)
        timings["decode"] = (time.perf_counter() - start) * 1e3
        return Result(
            scores=scores,
            cell_class=cell_class,
            detections=detections,
            geometry=geometry,
            labels=self.labels,
            background=background,
            frame_shape=tuple(frame_shape),
            inverted=inverted,
            timings=timings,
            lines=lines,
        )
