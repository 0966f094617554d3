"""Scene fine-tuning targets: the cell at a digit's centre says the digit, far cells background."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("keras")
from convdet.data.scenes import Truth
from convdet.export.finetune import FinetuneConfig, cell_targets, real_image_scale
from convdet.export.specs import detector_info, get_spec

INFO = detector_info(get_spec("basic"), "max4")  # cell i centred at 8 * i + 10


def truth(boxes, classes):
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return Truth("s.png", 128, 128, "mnist", boxes, np.asarray(classes), np.zeros(len(classes)))


def test_digit_centred_on_a_cell_labels_that_cell_only():
    # Frame centre (42, 58) is the centre of cell (row 6, col 4); neighbours are 8 px away.
    labels, weights = cell_targets(truth([[28, 44, 56, 72]], [7]), (16, 16), INFO, FinetuneConfig())
    assert labels[6, 4] == 7 and weights[6, 4] == FinetuneConfig().digit_weight
    assert (labels == 7).sum() == 1
    assert labels[5, 4] == labels[6, 5] == INFO.background and weights[5, 4] == weights[6, 5] == 1


def test_cells_between_positive_and_background_distances_are_not_scored():
    # Centre x = 45: 3 px from column 4 (positive), 5 px from column 5 (the ignored ring).
    labels, weights = cell_targets(truth([[31, 44, 59, 72]], [7]), (16, 16), INFO, FinetuneConfig())
    assert labels[6, 4] == 7 and labels[6, 5] == INFO.background
    assert weights[6, 5] == 0 and weights[6, 6] == 1


def test_far_cells_are_background_with_unit_weight():
    labels, weights = cell_targets(truth([[28, 44, 56, 72]], [7]), (16, 16), INFO, FinetuneConfig())
    assert labels[0, 0] == INFO.background and weights[0, 0] == 1
    assert labels[6, 6] == INFO.background and weights[6, 6] == 1  # 16 px away


def test_digits_just_outside_the_octave_are_not_scored():
    near = [[10, 10, 80, 80]]  # 70 px frame, 50 px ink: either answer is fine at this scale
    labels, weights = cell_targets(truth(near, [3]), (16, 16), INFO, FinetuneConfig())
    assert (labels == INFO.background).all()
    assert weights[5, 5] == 0 and weights[15, 15] == 1


@pytest.mark.parametrize("box", [[0, 0, 120, 120], [40, 40, 51, 51]], ids=["large", "tiny"])
def test_digits_far_outside_the_octave_are_taught_as_background(box):
    # A 120 px frame (86 px of ink) belongs to a smaller pyramid scale; an 11 px one is noise.
    labels, weights = cell_targets(truth([box], [8]), (16, 16), INFO, FinetuneConfig())
    assert (labels == INFO.background).all() and (weights == 1).all()


def test_ink_boxes_are_measured_by_their_own_height():
    # A "1" written 30 px high is 6 px wide: in the octave, whatever its width.
    one = Truth(
        "s.jpg",
        128,
        128,
        "strings",
        np.array([[40.0, 40, 46, 70]]),
        np.array([1]),
        np.zeros(1),
        box_kind="ink",
    )
    labels, _ = cell_targets(one, (16, 16), INFO, FinetuneConfig())
    assert (labels == 1).sum() >= 1


def test_a_neighbours_ring_does_not_erase_a_digit():
    boxes = [[28, 44, 56, 72], [52, 44, 80, 72]]  # centres 24 px apart: rings overlap
    labels, weights = cell_targets(truth(boxes, [1, 2]), (16, 16), INFO, FinetuneConfig())
    assert labels[6, 4] == 1 and labels[6, 7] == 2
    assert weights[6, 4] > 1 and weights[6, 7] > 1


class _NoWindows:
    def on_epoch_end(self) -> None:
        pass


def test_background_cells_near_ink_weigh_mark_weight(mnist):
    from convdet.export.finetune import SceneSet

    config = FinetuneConfig(scenes_per_epoch=2, styles=("mnist",), mark_weight=3.0)
    digits, labels = mnist["x_train"][:50], mnist["y_train"][:50].astype(np.int64)
    scenes = SceneSet(digits, labels, INFO, config, _NoWindows(), batch_size=2, seed=0)
    scenes.samples = []
    image = np.zeros((128, 128), np.float32)
    image[60:62, :] = 1.0  # a ruled line across the middle, and no digit
    scenes._append(image, truth(np.zeros((0, 4)), []))
    _, cell_labels, weights = scenes.samples[0]
    assert (cell_labels == INFO.background).all()
    rows = np.round(INFO.cell_centre(np.arange(16))).astype(int)
    near = np.abs(rows - 60.5) <= 5
    assert (weights[near] == 3.0).all() and (weights[~near] == 1.0).all()


class _Windows(_NoWindows):
    """One batch of three 28x28 windows (light-on-dark, channel last) with one-hot labels."""

    def __init__(self) -> None:
        self.images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
        self.onehot = np.eye(INFO.num_classes, dtype=np.float32)[[1, 2, 10]]

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images, self.onehot


@pytest.mark.parametrize("padded, side", [(False, 28), (True, 32)])
def test_window_batches_score_the_classifier_cell_alone_or_padded(mnist, padded, side):
    from convdet.export.finetune import SceneSet

    config = FinetuneConfig(scenes_per_epoch=2, styles=("mnist",), padded_windows=padded)
    digits, labels = mnist["x_train"][:50], mnist["y_train"][:50].astype(np.int64)
    windows = _Windows()
    info = replace(INFO, classifier_padded=padded)  # as `train` derives it from the config
    scenes = SceneSet(digits, labels, info, config, windows, batch_size=2, seed=0)
    images, targets, weights = scenes.window_batch(0)
    assert images.shape == (3, side, side, 1)
    np.testing.assert_array_equal(images[:, :28, :28], windows.images)  # at the top-left
    assert (images[:, 28:] == 0).all() and (images[:, :, 28:] == 0).all()
    cell = INFO.classifier_cell
    assert targets.shape == (3, 4, 4, INFO.num_classes)  # the same 4x4 grid either way
    np.testing.assert_array_equal(targets[:, cell, cell], windows.onehot)
    assert weights[:, cell, cell].tolist() == [16.0] * 3 and weights.sum() == 48.0


def test_real_images_shrink_to_fit_and_by_a_draw_from_real_scale() -> None:
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert real_image_scale((50, 100), (160, 160), (1.0, 1.0), rng) == 1.0
    assert real_image_scale((50, 304), (160, 160), (1.0, 1.0), rng) == 0.5  # 152 / 304
    assert rng.bit_generator.state == state  # no draw: scenes as runs without it drew them
    drawn = [real_image_scale((50, 304), (160, 160), (0.5, 1.0), rng) for _ in range(200)]
    assert 0.25 <= min(drawn) < 0.3 and 0.47 < max(drawn) <= 0.5
