"""Train a spec's 28x28 classifier on digits plus the background class, then convolutionalize it.

Each epoch sees freshly augmented digits and freshly drawn background patches (a Keras
PyDataset regenerates them), with a cosine-decayed learning rate and label smoothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
from convdet.export.augment import Augmentation, augment_digits
from convdet.export.background import BackgroundMix, make_background
from convdet.export.checkpoint import EpochCheckpoint, resumable_fit
from convdet.export.data import Mnist
from convdet.export.distill import Distillation, Teacher
from convdet.export.finetune import FinetuneConfig, finetune
from convdet.export.from_onnx import classifier_from_onnx, exported_info
from convdet.export.networks import (
    build_classifier,
    convolutionalize,
    grown_classifier,
    transfer_weights,
)
from convdet.export.specs import ARCHS, BACKGROUND, ArchSpec, detector_info, get_spec
from convdet.runtime.classifier_cell import classifier_cell_scores
from convdet.runtime.modelinfo import ModelInfo
from convdet.runtime.preprocess import Preprocessor

HELD_OUT_BACKGROUND = 2000


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored beside its outputs."""

    arch: str = "basic"
    pooling: str | None = None  # None: the spec's default
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 3e-3
    label_smoothing: float = 0.05
    background_ratio: float = 0.8  # background patches per training digit
    validation_fraction: float = 0.1
    limit: int | None = None  # train on the first N digits only (tests, quick runs)
    seed: int = 0
    mix: BackgroundMix = field(default_factory=BackgroundMix)
    augmentation: Augmentation = field(default_factory=Augmentation)
    scenes: FinetuneConfig = field(default_factory=FinetuneConfig)
    distillation: Distillation | None = None  # soft targets from a trained teacher
    init: str | None = None  # a `convdet train` run or exported .onnx replacing stage 1

    @property
    def spec(self) -> ArchSpec:
        return get_spec(self.arch)

    @property
    def detector_pooling(self) -> str:
        return self.pooling or self.spec.default_pooling


class TrainingSet(keras.utils.PyDataset):
    """Augmented digits and new background patches, redrawn at the end of every epoch, with
    one-hot targets, or the teacher's soft targets mixed in when distilling."""

    def __init__(
        self,
        digits: np.ndarray,
        labels: np.ndarray,
        config: TrainConfig,
        rng: np.random.Generator,
        teacher: Teacher | None = None,
    ) -> None:
        super().__init__()
        self.digits, self.labels, self.config, self.rng = digits, labels, config, rng
        self.teacher = teacher
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        count = round(len(self.digits) * self.config.background_ratio)
        backgrounds, _ = make_background(count, self.rng, self.digits, self.config.mix)
        images = np.concatenate(
            [augment_digits(self.digits, self.rng, self.config.augmentation), backgrounds]
        )
        labels = np.concatenate([self.labels, np.full(count, BACKGROUND)])
        order = self.rng.permutation(len(images))
        self.images = images[order, ..., None]
        self.targets = keras.utils.to_categorical(labels[order], BACKGROUND + 1)
        if self.teacher is not None:
            self.targets = self.teacher.targets(self.images, self.targets)

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.config.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        batch = slice(index * self.config.batch_size, (index + 1) * self.config.batch_size)
        return self.images[batch], self.targets[batch]


@dataclass
class TrainResult:
    """A trained classifier, its detector, and the measured accuracies."""

    classifier: keras.Model
    detector: keras.Model
    metrics: dict[str, float]
    history: dict[str, list[float]]


def held_out_background(data: Mnist, config: TrainConfig) -> np.ndarray:
    """Background patches made from test digits with a seed training never uses."""
    rng = np.random.default_rng(config.seed + 10_000)
    patches, _ = make_background(HELD_OUT_BACKGROUND, rng, data.x_test, config.mix)
    return patches


def evaluate_classifier(
    model: keras.Model, data: Mnist, background: np.ndarray, info: ModelInfo | None = None
) -> dict[str, float]:
    """Digit accuracy on the test split (background counts as wrong) and background recall, of
    the 28x28 classifier, or of a detector with `info` read at its classifier cell as the
    runtime reads it (`Preprocessor.windows`: alone, or padded with `classifier_padded`)."""

    def predicted(images: np.ndarray) -> np.ndarray:
        if info is None:
            return model.predict(images[..., None], batch_size=512, verbose=0).argmax(-1)
        windows = Preprocessor(info).windows(images)
        run = model.predict_on_batch
        return classifier_cell_scores(run, windows, info.classifier_cell, 512).argmax(-1)

    return {
        "digit_accuracy": float(np.mean(predicted(data.x_test) == data.y_test)),
        "background_recall": float(np.mean(predicted(background) == BACKGROUND)),
    }


def train(data: Mnist, config: TrainConfig, checkpoint: Path | None = None) -> TrainResult:
    """Train the classifier of `config.arch`, measure it, and convolutionalize it. With a
    `checkpoint` folder, each stage saves its state there after every epoch and a run started
    again on the folder goes on where it stopped; the augmented digits and background patches
    after the break are new draws, so a resumed run is close to, not the same as, an unbroken
    one (stage 2's scenes do not change)."""
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    digits, labels = data.x_train, data.y_train.astype(np.int64)
    if config.limit is not None:
        digits, labels = digits[: config.limit], labels[: config.limit]
    order = rng.permutation(len(digits))
    n_val = max(1, round(len(digits) * config.validation_fraction))
    val, fit = order[:n_val], order[n_val:]

    teacher = None if config.distillation is None else Teacher(config.distillation)
    training = TrainingSet(digits[fit], labels[fit], config, rng, teacher)
    val_background, _ = make_background(
        n_val, np.random.default_rng(config.seed + 1), digits[val], config.mix
    )
    val_x = np.concatenate([digits[val], val_background])[..., None]
    val_y = keras.utils.to_categorical(
        np.concatenate([labels[val], np.full(n_val, BACKGROUND)]), BACKGROUND + 1
    )

    if config.init is None:
        classifier = build_classifier(config.spec)
        steps = config.epochs * len(training)
        classifier.compile(
            optimizer=keras.optimizers.Adam(
                keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.02)
            ),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
        )
        saver = None if checkpoint is None else EpochCheckpoint(checkpoint / "stage1")
        history = resumable_fit(
            classifier,
            training,
            config.epochs,
            saver,
            validation_data=(val_x, val_y),
            verbose=2,
        )
    else:
        classifier = initial_classifier(Path(config.init), config.spec)
        history = {}
    background = held_out_background(data, config)
    metrics = evaluate_classifier(classifier, data, background)
    detector = convolutionalize(classifier, config.spec, config.detector_pooling)
    histories = dict(history)
    if config.scenes.epochs:
        info = detector_info(
            config.spec, config.detector_pooling, classifier_padded=config.scenes.padded_windows
        )
        scene_digits = np.rint(digits[fit] * 255).astype(np.uint8)
        tuned = finetune(
            detector,
            scene_digits,
            labels[fit],
            info,
            config.scenes,
            training,
            config.seed,
            checkpoint=None if checkpoint is None else checkpoint / "stage2",
        )
        histories.update({f"scenes_{key}": values for key, values in tuned.items()})
        transfer_weights(detector, classifier)
        # Stage 2 tunes the detector, whose pooled cell no longer equals the classifier's
        # global pool: measure what ships.
        metrics = {
            **{f"stage1_{k}": v for k, v in metrics.items()},
            **evaluate_classifier(detector, data, background, info),
        }
    return TrainResult(classifier, detector, metrics, histories)


def initial_classifier(init: Path, spec: ArchSpec) -> keras.Model:
    """The classifier an --init run or exported detector (`.onnx`) hands to stage 2: after a
    run's stage 2 its classifier holds the detector's weights, and an exported file holds them
    with batch norm folded in (see `from_onnx`). One of the spec `spec` grows from is grown
    into `spec` (`grown_classifier`)."""
    if init.suffix == ".onnx":
        arch = exported_info(init).arch
        source = classifier_from_onnx(init, ARCHS[arch])
    else:
        arch = json.loads((init / "run.json").read_text(encoding="utf-8"))["arch"]
        source = keras.models.load_model(init / "classifier.keras")
    return source if arch == spec.name else grown_classifier(source, spec)


def save_run(result: TrainResult, config: TrainConfig, data: Mnist, out: Path) -> None:
    """Write classifier.keras, detector.keras and run.json (config, metrics, data) to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    result.classifier.save(out / "classifier.keras")
    result.detector.save(out / "detector.keras")
    run = {
        "arch": config.arch,
        "pooling": config.detector_pooling,
        "metrics": result.metrics,
        "trained_on": data.source,
        "config": asdict(config),
        "history": {key: [float(v) for v in values] for key, values in result.history.items()},
        "versions": {"keras": keras.__version__, "tensorflow": _tensorflow_version()},
    }
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")


def _tensorflow_version() -> str:
    import tensorflow as tf

    return tf.__version__
