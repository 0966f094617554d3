"""`Detector`: frame in, `Result` out (score grid, per-cell classes, detections, stage timings)."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from convdet.runtime.backends import Backend, open_backend
from convdet.runtime.classifier_cell import classifier_cell_scores
from convdet.runtime.defaults import DEFAULT_CONF, MAX_SCALE, MIN_SCALE
from convdet.runtime.detections import Detections
from convdet.runtime.errors import OptionError
from convdet.runtime.field import model_field
from convdet.runtime.grid import GridGeometry, decode_cells
from convdet.runtime.grouping import Grouping, ScaleGrid, same_class_apart
from convdet.runtime.modelinfo import ModelInfo
from convdet.runtime.preprocess import FrameError, Preprocessor
from convdet.runtime.reading import Line, read_lines
from convdet.runtime.recheck import Recheck
from convdet.runtime.sparse import SparseInference, check_mode
from convdet.runtime.temporal import NOISE_THRESHOLD, TemporalReuse, check_threshold


@dataclass(frozen=True)
class Result:
    """What a detector saw in one frame.

    `scores` (gh, gw, C) and `cell_class` (gh, gw) belong to the first scale's grid (with the
    default pyramid, scale 1: the finest, one cell per 8 frame pixels), whose cells
    `geometry` places in frame pixels; `timings` are milliseconds per stage ("preprocess",
    "infer", "decode"); `inverted` says whether the frame was inverted to the model's polarity;
    `lines` are the detections read as written strings, in reading order (convdet.runtime.reading).
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

    def only(self, classes: Sequence[int]) -> Result:
        """This result restricted to the digit `classes` (e.g. `convdet detect --classes`): the
        other detections dropped and `lines` read again from those kept (so their indices point
        into the kept detections), the other digits' cells made background in `cell_class`
        and in `scores` (their probability added to background's), so that every drawing,
        the heat map too, shows the kept classes alone."""
        kept = np.isin(self.detections.class_id, classes)
        detections = self.detections[kept]
        dropped = np.ones(self.scores.shape[-1], bool)
        dropped[list(classes)] = False
        dropped[self.background] = False
        scores = self.scores.copy()
        scores[..., self.background] += scores[..., dropped].sum(axis=-1)
        scores[..., dropped] = 0.0
        cell_class = np.where(dropped[self.cell_class], self.background, self.cell_class)
        return replace(
            self,
            scores=scores,
            cell_class=cell_class,
            detections=detections,
            lines=read_lines(detections, self.labels),
        )


# The default pyramid keeps halving the frame while its shorter side keeps this many pixels:
# about two windows, the least that still shows a digit with some background around it.
PYRAMID_MIN_SIDE = 64
# Its scales, finest first: 1 to 1/64, the whole pyramid of frames under 8192 px a side.
PYRAMID = tuple(0.5**level for level in range(7))
# Then one step of half an octave more, while the frame keeps this many pixels a side there:
# digits between the last octave's sizes and the frame's side. On strips of handwriting
# (cheque amounts 43-65 px tall, digits 23-57 px) it found the large digits that halving
# would shrink below a window's worth.
PYRAMID_LAST_SIDE = 32
HALF_OCTAVE = 0.5**0.5


def pyramid_scales(height: int, width: int) -> tuple[float, ...]:
    """The default scales for a `height` x `width` frame: 1, 0.5, 0.25, ... (PYRAMID) while the
    scaled frame's shorter side stays at least PYRAMID_MIN_SIDE px (always 1), then the last
    of them times HALF_OCTAVE if the frame keeps PYRAMID_LAST_SIDE px there. Each halving
    doubles the digit sizes seen, up to about a third of the shorter side; the last step
    reaches the whole side of a strip (a line of text cut out)."""
    side = min(height, width)
    octaves = tuple(s for s in PYRAMID if s == 1.0 or side * s >= PYRAMID_MIN_SIDE)
    last = octaves[-1] * HALF_OCTAVE
    return (*octaves, last) if side * last >= PYRAMID_LAST_SIDE else octaves


def as_frame(image: Any) -> Any:
    """What `Detector.__call__` runs on: a path (str or Path) read with `load_image` (depth and
    channels kept, JPEG orientation applied), a PIL image as the numpy frame it shows
    (`pil_frame`); anything else as given. PIL is never imported: Pillow stays optional."""
    if isinstance(image, (str, os.PathLike)):
        from convdet.runtime.sources import ImageError, load_image

        try:
            return load_image(Path(image))
        except ImageError as error:
            raise ImageError(f"{image}: {error}") from None
    if not type(image).__module__.startswith("PIL."):
        return image
    return pil_frame(image)


def pil_frame(image: Any) -> np.ndarray:
    """A PIL image as the array OpenCV would give for it, depth kept: L, F and I;16 (either
    byte order) as their gray array, I as uint16 gray (16-bit PNGs open as I or I;16), 1 as
    0/255 gray, RGB and RGBA as BGR and BGRA, other modes converted to RGB, or RGBA when they
    carry transparency. FrameError in one line for values or modes no frame can hold."""
    mode = image.mode
    if mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "RGB", "RGBA", "F", "I") and not mode.startswith("I;16"):
        alpha = "A" in mode or "transparency" in image.info
        try:
            image = image.convert("RGBA" if alpha else "RGB")
        except ValueError:
            raise FrameError(
                f"PIL image mode {mode}: not convertible to RGB; convert it to RGB, L or I;16 first"
            ) from None
    array = np.asarray(image)
    if array.ndim == 3:
        return array[..., [2, 1, 0, 3][: array.shape[-1]]]  # RGB(A) to BGR(A), a new array
    if mode == "I" or mode.startswith("I;16"):
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if low < 0 or high > 65535:
            raise FrameError(f"PIL image mode {mode}: values {low}..{high} do not fit 16 bits")
        return array.astype(np.uint16)
    return array


class Detector:
    """A loaded model plus its pre- and post-processing settings; call it on frames.

    `model` is a .onnx or .tflite path or a shipped model's name, with or without its extension
    (`convdet.runtime.shipped.resolve_model`; default: the shipped default model); `conf` is the
    minimum score of a detection (and the digit probability that colours a grid cell); `scales`
    resize the frame before inference: None or "auto" (default) for the pyramid, whose scales
    `pyramid_scales` chooses per frame size (digits of about 16 px up to a third of the frame's
    shorter side, or all of it on a strip of text), or a sequence run as given (e.g. (2, 1, 0.5,
    0.25) adds digits of about 8-16 px), results merged by `Grouping`; `invert` is "auto", "on"
    or "off"; `normalize` removes uneven lighting (on by default: without it paper-style F1
    drops from 0.98 to 0.80, model card ablation; MNIST-style unchanged); `threads`/`providers`
    go to the backend. The `scales` attribute is a tuple: the given scales, or with `pyramid`
    True all of PYRAMID, of which each frame runs those it can hold (and its half-octave step,
    `pyramid_scales`). One instance may be called from several threads.

    `sparse` runs the model only where cells see ink (`convdet.runtime.sparse`), with the same
    scores: "auto" (default) where it pays, "on" always, "off" never. `temporal` True reuses the
    scores of cells whose field did not change beyond noise since the previous frame
    (`convdet.runtime.temporal`; a mean change of a 5x5 neighbourhood up to
    `temporal_threshold` is noise, as camera noise is): for the
    frames of one video or camera, called in order. Both need a model that takes any input size;
    otherwise frames run whole.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        conf: float = DEFAULT_CONF,
        scales: Sequence[float] | str | None = None,
        invert: str = "auto",
        normalize: bool = True,
        grouping: Grouping | None = None,
        threads: int | None = None,
        providers: list[str] | None = None,
        sparse: str = "auto",
        temporal: bool = False,
        temporal_threshold: float = NOISE_THRESHOLD,
        recheck: bool = True,
    ) -> None:
        check_mode(sparse)
        if model is None:
            from convdet.runtime.shipped import default_model_path

            model = default_model_path()
        if scales == "auto":
            scales = None
        if scales is not None and (
            isinstance(scales, str)
            or not scales
            or not all(MIN_SCALE <= scale <= MAX_SCALE for scale in scales)
        ):
            raise OptionError(
                f"scales: expected 'auto' or one or more numbers in {MIN_SCALE:g}..{MAX_SCALE:g}, "
                f"got {scales!r}"
            )
        if not 0.0 <= conf <= 1.0:
            raise OptionError(f"conf: expected a probability in 0..1, got {conf}")
        self.backend: Backend = open_backend(model, threads=threads, providers=providers)
        self.info: ModelInfo = self.backend.info
        self.labels: tuple[str, ...] = self.info.classes
        self.conf = conf
        self.pyramid = scales is None
        self.scales = PYRAMID if scales is None else tuple(float(scale) for scale in scales)
        self.grouping = grouping or Grouping()
        if self.grouping.same_class_apart is None:  # how far apart this model's digits peak
            apart = same_class_apart(self.info.arch)
            self.grouping = replace(self.grouping, same_class_apart=apart)
        self.preprocessor = Preprocessor(self.info, invert=invert, normalize=normalize)
        # One thread at a time fills the reused input buffer and runs the backend (a LiteRT
        # interpreter is not thread-safe), so threads sharing a detector get their own results.
        self._inference = threading.Lock()
        self.sparse = sparse
        self.temporal = temporal
        self.temporal_threshold = temporal_threshold
        check_threshold(temporal_threshold)
        self._sparse: SparseInference | None = None
        self._temporal: TemporalReuse | None = None
        # The second look needs the model's classifier cell and any input size.
        able = self.info.classifier_cell is not None and self.backend.fixed_size is None
        self.recheck: Recheck | None = Recheck() if recheck and able else None

    def _selective(self) -> SparseInference | None:
        """The sparse inference of this model, made on first use (it may measure the model's
        receptive field); None when frames run whole. Called with the inference lock held."""
        if self.sparse == "off" and not self.temporal:
            return None
        if self._sparse is None:
            field = model_field(self.backend)
            if field is None:
                self.sparse, self.temporal = "off", False
                return None
            background = float(self.preprocessor.background)
            run = self.backend.run
            self._sparse = SparseInference(run, field, self.info.stride, background, self.sparse)
            if self.temporal:
                self._temporal = TemporalReuse(self._sparse, self.temporal_threshold)
        return self._sparse

    def reset(self) -> None:
        """Forget the previous frames temporal reuse compares with (a new video or a cut)."""
        with self._inference:
            if self._temporal is not None:
                self._temporal.reset()

    @property
    def model_path(self) -> Path:
        """The model file this detector runs."""
        return self.backend.path

    def scales_for(self, height: int, width: int) -> tuple[float, ...]:
        """The scales run on a `height` x `width` frame: the pyramid's, or `scales`, less those
        at which the frame is smaller than one cell (the largest is kept if none remain), so a
        tiny frame is a result without detections, never a resize to nothing."""
        scales = pyramid_scales(height, width) if self.pyramid else self.scales
        fitting = tuple(s for s in scales if min(height, width) * s >= self.info.stride)
        return fitting or (max(scales),)

    def __call__(self, frame: np.ndarray | str | os.PathLike[str] | Any) -> Result:
        """Detect digits in one frame: any array OpenCV gives (gray, BGR or BGRA), an image
        file's path or a PIL image (`as_frame`)."""
        return self.detect_batch([as_frame(frame)])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Result]:
        """Detect in several frames; frames of one size share one inference per scale.
        A batched frame's timings are its share of the batch's time."""
        start = time.perf_counter()
        prepared = [self.preprocessor.prepare(frame) for frame in frames]
        prepare_ms = (time.perf_counter() - start) * 1e3 / max(len(frames), 1)
        timings = [{"preprocess": prepare_ms, "infer": 0.0} for _ in frames]
        grids: list[list[ScaleGrid]] = [[] for _ in frames]
        same_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, (image, _) in enumerate(prepared):
            same_size[image.shape].append(index)
        for (height, width), indices in same_size.items():
            for scale in self.scales_for(height, width):
                start = time.perf_counter()
                images = [self.preprocessor.scaled(prepared[i][0], scale) for i in indices]
                with self._inference:
                    middle = time.perf_counter()
                    scores = self._infer(images, scale)
                    end = time.perf_counter()
                geometry = GridGeometry.from_info(self.info, scale)
                for position, index in enumerate(indices):
                    strokes = self.preprocessor.strokes(images[position])
                    grids[index].append(ScaleGrid(scores[position], geometry, strokes))
                    timings[index]["preprocess"] += (middle - start) * 1e3 / len(indices)
                    timings[index]["infer"] += (end - middle) * 1e3 / len(indices)
        return [
            self._decode(grids[index], frame.shape, prepared[index][1], timings[index])
            for index, frame in enumerate(frames)
        ]

    def _infer(self, images: list[np.ndarray], scale: float) -> Sequence[np.ndarray]:
        """Scores of same-size scaled images: one batch through the backend, or each image
        through temporal reuse or sparse inference when they are on."""
        selective = self._selective()
        if selective is None:
            return self.backend.run(self._batch(images))
        scores = []
        for image in images:  # one at a time: `padded` reuses its buffer
            padded = self.preprocessor.padded(image)[0, :, :, 0]
            temporal = self._temporal
            scores.append(selective(padded) if temporal is None else temporal(scale, padded))
        return scores

    def _classify(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) of 28x28 light-on-dark crops at the model's classifier
        cell, as `classifier_cell_scores` reads them."""
        model_input = self.preprocessor.windows(self.preprocessor.from_strokes(crops))

        def run(batch: np.ndarray) -> np.ndarray:
            with self._inference:
                return self.backend.run(batch)

        return classifier_cell_scores(run, model_input, self.info.classifier_cell)

    def _batch(self, images: list[np.ndarray]) -> np.ndarray:
        """The model input for same-size scaled images (the reused buffer for one image)."""
        size = self.backend.fixed_size
        if len(images) == 1:
            return self.preprocessor.padded(images[0], size)
        return np.concatenate([self.preprocessor.padded(image, size).copy() for image in images])

    def _decode(
        self,
        grids: list[ScaleGrid],
        frame_shape: tuple[int, ...],
        inverted: bool,
        timings: dict[str, float],
    ) -> Result:
        """Group one frame's grids into detections, read them as lines, package the Result."""
        start = time.perf_counter()
        background = self.info.background
        detections = self.grouping(grids, background, self.conf, frame_shape[:2])
        if self.recheck is not None and len(detections):
            detections = self.recheck(detections, grids, self._classify, background)
        lines = read_lines(detections, self.labels)
        scores, geometry = grids[0].scores, grids[0].geometry
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
