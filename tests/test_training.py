"""Data loading both ways, a short training that learns, and the sliding-window agreement."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
import keras
from convdet.data.scenes import SceneParams, generate_scenes
from convdet.export.agreement import sliding_window_labels, window_agreement
from convdet.export.data import DataUnavailableError, load_mnist
from convdet.export.package import model_info


def test_npz_path_loads_real_digits(mnist_npz):
    data = load_mnist(mnist_npz)
    assert data.x_train.shape == (10000, 28, 28) and data.x_test.shape == (5000, 28, 28)
    assert data.x_train.dtype == np.float32 and 0 <= data.x_train.min() < data.x_train.max() <= 1
    assert "mnist-subset.npz" in data.source


def test_download_path_uses_keras(monkeypatch):
    images = np.full((4, 28, 28), 255, np.uint8)
    labels = np.arange(4, dtype=np.uint8)
    monkeypatch.setattr(
        keras.datasets.mnist, "load_data", lambda: ((images, labels), (images[:2], labels[:2]))
    )
    data = load_mnist(None)
    assert data.x_train.max() == 1.0 and list(data.y_test) == [0, 1]
    assert data.source.startswith("keras.datasets.mnist")


def test_offline_download_says_to_pass_data(monkeypatch):
    def offline():
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataUnavailableError, match="pass --data PATH"):
        load_mnist(None)


@pytest.fixture(scope="module")
def trained(tiny_run):
    return tiny_run[:3]


def test_short_training_lowers_the_loss(trained):
    _, _, result = trained
    losses = result.history["loss"]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert 0 <= result.metrics["digit_accuracy"] <= 1
    assert 0 <= result.metrics["background_recall"] <= 1


def run_info(config):
    return model_info(
        {
            "arch": config.arch,
            "pooling": config.detector_pooling,
            "metrics": {},
            "trained_on": "test",
        }
    )


def test_centre_window_is_the_whole_28x28_image(trained):
    data, config, result = trained
    info = run_info(config)
    images = data.x_test[:16]
    direct = result.classifier.predict(images[..., None], verbose=0).argmax(-1)
    for image, label in zip(images, direct, strict=True):
        windows = sliding_window_labels(result.classifier, image, info, (4, 4))
        assert windows[1, 1] == label


def test_detector_agrees_with_sliding_windows_on_a_scene(trained, mnist):
    _, config, result = trained
    params = SceneParams("mnist", count=1, seed=3, size=(160, 120), max_digits=6, gap=20)
    (scene,) = generate_scenes(mnist["x_test"], mnist["y_test"], params)
    agreement = window_agreement(
        result.classifier, result.detector, scene.image.astype(np.float32) / 255, run_info(config)
    )
    assert agreement.cells == 15 * 20
    # Well-separated digits: a cell's context beyond its window is mostly empty.
    assert agreement.all_cells >= 0.9


def test_teacher_mixes_its_softened_probabilities_into_the_targets(tiny_run, mnist):
    from convdet.export.distill import Distillation, Teacher

    *_, run_dir = tiny_run
    images = (mnist["x_test"][:16] / 255).astype(np.float32)[..., None]
    onehot = keras.utils.to_categorical(mnist["y_test"][:16], 11)
    teacher = Teacher(Distillation(str(run_dir), weight=0.25, temperature=1.0))
    targets = teacher.targets(images, onehot)
    probabilities = teacher.model.predict(images, verbose=0)
    np.testing.assert_allclose(targets, 0.75 * onehot + 0.25 * probabilities, atol=1e-5)
    hotter = Teacher(Distillation(str(run_dir), weight=1.0, temperature=4.0)).targets(
        images, onehot
    )
    np.testing.assert_allclose(hotter.sum(axis=1), 1.0, atol=1e-5)
    assert hotter.max(axis=1).mean() < probabilities.max(axis=1).mean()  # softened
    with pytest.raises(ValueError, match="weight"):
        Distillation(str(run_dir), weight=0.0)


def test_distilled_training_set_carries_soft_targets(tiny_run):
    from convdet.export.distill import Distillation, Teacher
    from convdet.export.train import TrainConfig, TrainingSet

    data, _, _, run_dir = tiny_run
    config = TrainConfig(arch="basic", limit=64, batch_size=32)
    teacher = Teacher(Distillation(str(run_dir)))
    training = TrainingSet(
        data.x_train[:64],
        data.y_train[:64].astype(np.int64),
        config,
        np.random.default_rng(0),
        teacher,
    )
    images, targets = training[0]
    assert images.shape == (32, 28, 28, 1) and targets.shape == (32, 11)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(targets.max(axis=1) >= 0.5)  # the label keeps half the mass
    assert np.mean(targets.max(axis=1) < 1.0) > 0.9  # and the teacher adds the rest
