"""Stage 2: fine-tune the detector on whole scenes, with a target for every grid cell.

The 28x28 classifier only ever saw its window with zero padding around it; a detector cell
also sees its neighbours' pixels. Fine-tuning on scenes made of training digits, passed
through the runtime's own preprocessing, teaches each cell the context it will really see:
the cell nearest a digit's centre says the digit, cells a cell-width or more away say
background (neighbouring digits, seams, blank paper), and the ambiguous ring between is
not scored. Scene batches alternate with stage 1's 28x28 batches, scored at the cell that
computes the classifier, so the classifier keeps its accuracy. Batch-norm statistics stay
frozen from stage 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from runtime.modelinfo import ModelInfo
from runtime.preprocess import Preprocessor
from runtime.scenes import SceneParams, Truth, generate_scenes

SCALE_RANGE = (20, 40)  # frame sides (px) a cell is trained to accept at scale 1


@dataclass(frozen=True)
class FinetuneConfig:
    """Scene fine-tuning settings (epochs 0 turns the stage off)."""

    epochs: int = 8
    scenes_per_epoch: int = 1200
    size: tuple[int, int] = (128, 128)  # width, height: a multiple of the stride
    max_digits: int = 10
    learning_rate: float = 5e-4
    digit_weight: float = 4.0
    positive_radius: float = 4.0  # px, Chebyshev, cell centre to digit centre
    ignore_radius: float = 7.0
    styles: tuple[str, ...] = ("mnist", "multiscale", "paper")


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
    for (x1, y1, x2, y2), class_id in zip(truth.boxes, truth.classes, strict=True):
        side = x2 - x1
        distance = np.maximum(
            np.abs(row_centres - (y1 + y2) / 2), np.abs(col_centres - (x1 + x2) / 2)
        )
        if not SCALE_RANGE[0] <= side <= SCALE_RANGE[1]:
            weights[distance < side / 2 + config.ignore_radius] = 0.0
            continue
        weights[distance < config.ignore_radius] = 0.0
        positives.append((distance <= config.positive_radius, class_id))
    for cells, class_id in positives:
        labels[cells] = class_id
        weights[cells] = config.digit_weight
    return labels, weights


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
    ) -> None:
        super().__init__()
        self.digits, self.labels, self.info, self.config = digits, labels, info, config
        self.windows = windows
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        self.preprocessor = Preprocessor(info, invert="auto", normalize=True)
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        config, info = self.config, self.info
        per_style = math.ceil(config.scenes_per_epoch / len(config.styles))
        images, targets, weights = [], [], []
        for style in config.styles:
            params = SceneParams(
                style,
                count=per_style,
                seed=self.seed * 1000 + self.epoch,
                size=config.size,
                max_digits=config.max_digits,
                gap=2,
            )
            for scene in generate_scenes(self.digits, self.labels, params):
                prepared, _ = self.preprocessor.prepare(scene.image)
                batch = self.preprocessor.model_input(prepared)
                grid = (batch.shape[1] // info.stride, batch.shape[2] // info.stride)
                cell_labels, cell_weights = cell_targets(scene.truth, grid, info, config)
                images.append(batch[0].copy())
                targets.append(cell_labels)
                weights.append(cell_weights)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(images))
        self.images = np.stack(images)[order]
        self.targets = np.stack(targets)[order]
        self.weights = np.stack(weights)[order]
        if self.epoch:
            self.windows.on_epoch_end()
        self.epoch += 1

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
) -> dict[str, list[float]]:
    """Fine-tune `detector` in place on scenes of `digits` (uint8, training split) and on the
    28x28 batches of `windows`."""
    for layer in detector.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    scenes = SceneSet(digits, labels, info, config, windows, batch_size, seed)
    steps = config.epochs * len(scenes)
    detector.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.05)
        ),
        loss=keras.losses.CategoricalCrossentropy(),
        weighted_metrics=["accuracy"],
    )
    history = detector.fit(scenes, epochs=config.epochs, verbose=2)
    return history.history
