"""Stage 2: fine-tune the detector on whole scenes, with a target for every grid cell.

The 28x28 classifier only ever saw its window with zero padding around it; a detector cell
also sees its neighbours' pixels. Fine-tuning on scenes made of training digits, passed
through the runtime's own preprocessing, teaches each cell the context it will really see:
the cell nearest a digit's centre says the digit, cells a cell-width or more away say
background (neighbouring digits, seams, blank paper), and the ambiguous ring between is
not scored. A cell answers for one octave of digit sizes (INK_RANGE at scale 1): cells on
a digit too large or too small for it say background, so that a larger digit's loop or stroke
does not fire at scale 1 and the image pyramid's other scales find it instead. Camera scenes
(`convdet.data.camera`: ruled paper, print, desks, tight strings) are some of them drawn at twice
the size and shrunk as the pyramid shrinks a frame; real images with digit boxes (a COCO
folder's train split) can join them. Scene batches alternate with stage 1's 28x28 batches,
scored at the cell that computes the classifier, so the classifier keeps its accuracy.
Batch-norm statistics stay frozen from stage 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import keras
import numpy as np
from convdet.data.camera import CAMERA_STYLES
from convdet.data.coco import load_coco_set
from convdet.data.scenes import STYLES, SceneParams, Truth, generate_scenes
from convdet.export.checkpoint import EpochCheckpoint, resumable_fit
from convdet.runtime.modelinfo import ModelInfo
from convdet.runtime.preprocess import Preprocessor

INK_RANGE = (13.0, 42.0)  # digit ink heights (px) a cell answers for at scale 1
IGNORE_RANGE = (10.0, 56.0)  # outside INK_RANGE but inside this: not scored (either is fine)
MARK_INK = 0.35  # preprocessed level above which a pixel counts as ink for mark_weight


@dataclass(frozen=True)
class FinetuneConfig:
    """Scene fine-tuning settings (epochs 0 turns the stage off)."""

    epochs: int = 12
    scenes_per_epoch: int = 2400
    size: tuple[int, int] = (160, 160)  # width, height: a multiple of the stride
    max_digits: int = 10
    learning_rate: float = 5e-4
    digit_weight: float = 4.0
    mark_weight: float = 3.0  # background cells with ink (print, lines, parts of digits) at hand
    positive_radius: float = 4.0  # px, Chebyshev, cell centre to digit centre
    ignore_radius: float = 7.0
    styles: tuple[str, ...] = STYLES
    zoomed: float = 0.3  # share of camera scenes drawn at twice the size and shrunk by half
    real: str | None = None  # a COCO folder whose train split joins the scenes
    real_share: float = 0.0  # real images per synthetic scene
    # Each real image is shrunk by a log-uniform factor from this range (after fitting it in
    # the scene), as the pyramid shrinks frames: its digits then also train at the smaller
    # sizes at which the pyramid finds the larger ones. (1, 1): at their own size only.
    real_scale: tuple[float, float] = (1.0, 1.0)
    # The classifier cell's 28x28 windows at the top-left of inputs padded to a multiple of the
    # stride (32x32), as frames are padded, instead of alone: read so, a graph with explicit
    # padding computes exactly what Keras does. The run's detector metadata carries it as
    # `classifier_padded`, which is what the window batches and every readout go by.
    padded_windows: bool = False


def cell_targets(
    truth: Truth, grid: tuple[int, int], info: ModelInfo, config: FinetuneConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell class (gh, gw) and loss weight (gh, gw) for one scene's ground truth."""
    rows, cols = grid
    labels = np.full(grid, info.background, np.int64)
    weights = np.ones(grid, np.float32)
    row_centres = info.cell_centre(np.arange(rows))[:, None]
    col_centres = info.cell_centre(np.arange(cols))[None, :]
    positives = []
    heights = truth.digit_heights()
    for (x1, y1, x2, y2), class_id, height in zip(truth.boxes, truth.classes, heights, strict=True):
        distance = np.maximum(
            np.abs(row_centres - (y1 + y2) / 2), np.abs(col_centres - (x1 + x2) / 2)
        )
        if not INK_RANGE[0] <= height <= INK_RANGE[1]:
            if IGNORE_RANGE[0] <= height <= IGNORE_RANGE[1]:
                weights[distance < max(x2 - x1, y2 - y1) / 2 + config.ignore_radius] = 0.0
            continue  # far out of range: every cell on it learns background
        weights[distance < config.ignore_radius] = 0.0
        positives.append((distance <= config.positive_radius, class_id))
    for cells, class_id in positives:
        labels[cells] = class_id
        weights[cells] = config.digit_weight
    return labels, weights


def real_image_scale(
    shape: tuple[int, ...],
    size: tuple[int, int],
    real_scale: tuple[float, float],
    rng: np.random.Generator,
) -> float:
    """The factor a real image of `shape` (h, w) is resized by in a scene of `size` (w, h):
    down to fit with 4 px to spare a side, times a log-uniform draw from `real_scale` (no draw
    when its ends are equal, so a run without it draws its scenes as runs before it did)."""
    width, height = size
    scale = min(1.0, (width - 8) / shape[1], (height - 8) / shape[0])
    low, high = real_scale
    if low != high:
        scale *= float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return scale


class SceneSet(keras.utils.PyDataset):
    """Preprocessed training scenes with per-cell targets, redrawn every epoch, interleaved
    with batches of `windows` (a PyDataset of 28x28 images and one-hot labels)."""

    def __init__(
        self,
        digits: np.ndarray,
        labels: np.ndarray,
        info: ModelInfo,
        config: FinetuneConfig,
        windows: keras.utils.PyDataset,
        batch_size: int,
        seed: int,
        first_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.digits, self.labels, self.info, self.config = digits, labels, info, config
        self.windows = windows
        self.batch_size, self.seed, self.epoch = batch_size, seed, first_epoch
        self.preprocessor = Preprocessor(info, invert="auto", normalize=True)
        self.real = None if config.real is None else load_coco_set(config.real, "train")
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        config = self.config
        per_style = math.ceil(config.scenes_per_epoch / len(config.styles))
        seed = self.seed * 1000 + self.epoch
        self.samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for style in config.styles:
            zoomed = round(per_style * config.zoomed) if style in CAMERA_STYLES else 0
            self._add_scenes(style, per_style - zoomed, seed, 1)
            self._add_scenes(style, zoomed, seed, 2)
        if self.real is not None:
            self._add_real(round(config.scenes_per_epoch * config.real_share))
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.samples))
        self.images, self.targets, self.weights = (
            np.stack([self.samples[i][part] for i in order]) for part in range(3)
        )
        del self.samples
        if self.epoch:
            self.windows.on_epoch_end()
        self.epoch += 1

    def _add_sample(self, image: np.ndarray, truth: Truth, scale: float = 1.0) -> None:
        """Preprocess a frame as the runtime does (at `scale`), with its per-cell targets."""
        prepared, _ = self.preprocessor.prepare(image)
        batch = self.preprocessor.model_input(prepared, scale)
        if scale != 1.0:
            truth = replace(truth, boxes=truth.boxes * scale)
        self._append(batch[0, ..., 0], truth)

    def _append(self, image: np.ndarray, truth: Truth) -> None:
        """A preprocessed model input (H, W) and its per-cell targets, with background cells
        near ink (the hard negatives: print, lines, scribbles, parts of digits) weighted up."""
        grid = (image.shape[0] // self.info.stride, image.shape[1] // self.info.stride)
        labels, weights = cell_targets(truth, grid, self.info, self.config)
        centres = [
            np.clip(np.rint(self.info.cell_centre(np.arange(n))).astype(int), 0, size - 1)
            for n, size in zip(grid, image.shape, strict=True)
        ]
        strokes = self.preprocessor.strokes(image)
        near_ink = cv2.dilate(strokes, np.ones((9, 9), np.uint8))[np.ix_(*centres)] > MARK_INK
        hard = near_ink & (labels == self.info.background) & (weights == 1.0)
        weights[hard] = self.config.mark_weight
        self.samples.append((image[..., None].copy(), labels, weights))

    def _add_scenes(self, style: str, count: int, seed: int, zoom: int) -> None:
        """`count` new scenes of `style`; with zoom 2 drawn at twice the size and shrunk back,
        as the pyramid's half scale shows a frame."""
        if count <= 0:
            return
        width, height = self.config.size
        params = SceneParams(
            style,
            count=count,
            seed=seed * 10 + zoom,
            size=(width * zoom, height * zoom),
            max_digits=self.config.max_digits * (2 if zoom > 1 else 1),
            gap=2,
        )
        for scene in generate_scenes(self.digits, self.labels, params):
            self._add_sample(scene.image, scene.truth, 1.0 / zoom)

    def _add_real(self, count: int) -> None:
        """`count` real images (of the train split), each pasted at a random place in an
        empty canvas of the scene size after preprocessing, shrunk first if it is larger."""
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        width, height = self.config.size
        truths = self.real.truths
        for number in rng.choice(len(truths), size=min(count, len(truths)), replace=False):
            truth = truths[number]
            prepared, _ = self.preprocessor.prepare(self.real.image(truth))
            scale = real_image_scale(prepared.shape, self.config.size, self.config.real_scale, rng)
            prepared = Preprocessor.scaled(prepared, scale)
            h, w = prepared.shape
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            canvas = np.full((height, width), self.preprocessor.background, np.float32)
            canvas[top : top + h, left : left + w] = prepared
            boxes = truth.boxes * scale + [left, top, left, top]
            self._append(canvas, replace(truth, boxes=boxes))

    def __len__(self) -> int:
        return 2 * math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if index % 2:
            return self.window_batch(index // 2)
        batch = slice(index // 2 * self.batch_size, (index // 2 + 1) * self.batch_size)
        onehot = keras.utils.to_categorical(self.targets[batch], self.info.num_classes)
        return self.images[batch], onehot, self.weights[batch]

    def window_batch(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A 28x28 batch scored only at the classifier cell (weighted as a whole grid)."""
        images, onehot = self.windows[index % len(self.windows)]
        images = self.preprocessor.windows(images[..., 0])  # alone, or padded (classifier_padded)
        side = math.ceil(images.shape[1] / self.info.stride)
        cell = self.info.classifier_cell
        targets = np.zeros((len(images), side, side, onehot.shape[-1]), np.float32)
        targets[:, cell, cell] = onehot
        weights = np.zeros((len(images), side, side), np.float32)
        weights[:, cell, cell] = side * side
        return images, targets, weights


def finetune(
    detector: keras.Model,
    digits: np.ndarray,
    labels: np.ndarray,
    info: ModelInfo,
    config: FinetuneConfig,
    windows: keras.utils.PyDataset,
    seed: int = 0,
    batch_size: int = 32,
    checkpoint: Path | None = None,
) -> dict[str, list[float]]:
    """Fine-tune `detector` in place on scenes of `digits` (uint8, training split) and on the
    28x28 batches of `windows`; with a `checkpoint` folder, saved after every epoch and resumed
    from it (the scenes of epoch N are the same either way)."""
    for layer in detector.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    saver = None if checkpoint is None else EpochCheckpoint(checkpoint)
    first = 0 if saver is None else saver.done
    scenes = SceneSet(digits, labels, info, config, windows, batch_size, seed, first)
    steps = config.epochs * len(scenes)
    detector.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.05)
        ),
        loss=keras.losses.CategoricalCrossentropy(),
        weighted_metrics=["accuracy"],
    )
    return resumable_fit(detector, scenes, config.epochs, saver, verbose=2)
