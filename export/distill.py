"""Knowledge distillation: a trained classifier (the teacher) softens the training targets of
a smaller one, which then learns how the teacher ranks the classes, not only the right one.

A small, fast architecture trained this way gets closer to the teacher's accuracy than it does
from one-hot labels alone (models/README.md has the measurements).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from convdet.runtime.errors import DataError, OptionError


@dataclass(frozen=True)
class Distillation:
    """Where the teacher is (a `convdet train` run directory) and how its answers are mixed
    into the targets: `weight` of the teacher's probabilities softened by `temperature`, the
    rest the one-hot label. Checked on creation, before TensorFlow loads."""

    teacher: str
    weight: float = 0.5
    temperature: float = 2.0

    def __post_init__(self) -> None:
        if not self.classifier_path.is_file():
            raise DataError(f"teacher {self.teacher}: no classifier.keras (a `convdet train` run)")
        if not 0.0 < self.weight <= 1.0:
            raise OptionError(f"distillation weight: expected 0 < w <= 1, got {self.weight}")
        if self.temperature <= 0:
            raise OptionError(f"distillation temperature: expected > 0, got {self.temperature}")

    @property
    def classifier_path(self) -> Path:
        """The teacher run's 28x28 classifier."""
        return Path(self.teacher) / "classifier.keras"


class Teacher:
    """A run's 28x28 classifier, used to make soft targets for another model's training."""

    def __init__(self, config: Distillation) -> None:
        import keras

        self.model = keras.models.load_model(config.classifier_path)
        self.config = config

    def targets(self, images: np.ndarray, onehot: np.ndarray) -> np.ndarray:
        """(N, classes) float32: the one-hot labels mixed with the teacher's softened
        probabilities for `images` (N, 28, 28, 1)."""
        probabilities = self.model.predict(images, batch_size=512, verbose=0)
        logits = np.log(np.maximum(probabilities, 1e-12)) / self.config.temperature
        soft = np.exp(logits - logits.max(axis=1, keepdims=True))
        soft /= soft.sum(axis=1, keepdims=True)
        weight = self.config.weight
        return ((1.0 - weight) * onehot + weight * soft).astype(np.float32)
