"""Specs build a classifier and a detector that share weights; the geometry is derived right."""

from __future__ import annotations

import numpy as np
import pytest
from convdet.export.specs import (
    ARCHS,
    POOLINGS,
    cell_offset,
    classifier_cell,
    first_feature_centre,
    get_spec,
    pooling_kernel,
)

keras = pytest.importorskip("keras")
from convdet.export.networks import build_classifier, convolutionalize  # noqa: E402


@pytest.mark.parametrize(
    ("arch", "pooling", "expected"),
    [
        ("basic", "max4", 10.0),
        ("basic", "none", 6.0),
        ("deep", "max3", 6.0),
        ("deep", "max4", 10.0),
        ("separable", "max3", 6.0),
        ("wide", "max3", 6.0),
    ],
)
def test_cell_offset_follows_the_padding_arithmetic(arch, pooling, expected):
    # Padded frames: every stride-2 conv pads only after, so feature 0 is centred at 7.5 px;
    # in the 28x28 classifier the 7x7 map pads before, so its feature 0 is centred at 3.5 px.
    spec = get_spec(arch)
    assert spec.stride == 8 and spec.feature_size == 4
    assert first_feature_centre(spec, 64) == 7.5 and first_feature_centre(spec, 28) == 3.5
    assert cell_offset(spec, pooling) == expected
    assert classifier_cell(spec, pooling) == 1


@pytest.mark.parametrize(("name", "error"), [("huge", "unknown architecture"), ("max5", "pool")])
def test_unknown_names_are_value_errors(name, error):
    with pytest.raises(ValueError, match=error):
        get_spec(name) if error.startswith("unknown arch") else pooling_kernel(name)


def test_train_command_names_every_spec():
    from convdet.commands.train import ARCHS as TRAIN_ARCHS

    assert TRAIN_ARCHS.split(",") == list(ARCHS)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_classifier_and_detector_layers_align_by_name(arch):
    spec = get_spec(arch)
    classifier = build_classifier(spec)
    detector = convolutionalize(classifier, spec, "max4")
    weighted = {layer.name for layer in detector.layers if layer.weights}
    assert weighted == {layer.name for layer in classifier.layers if layer.weights}
    assert detector.input_shape == (None, None, None, 1)
    for name in ("head1", "classes"):
        dense = classifier.get_layer(name).get_weights()[0]
        conv = detector.get_layer(name).get_weights()[0]
        assert conv.shape == (1, 1, *dense.shape)
        np.testing.assert_array_equal(conv[0, 0], dense)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_max4_cell_equals_the_classifier_on_a_28x28_input(arch):
    spec = get_spec(arch)
    classifier = build_classifier(spec)
    rng = np.random.default_rng(0)
    # Non-trivial weights: the untrained init is near-uniform, so perturb the head.
    for layer in classifier.layers:
        if layer.weights:
            layer.set_weights([w + rng.normal(0, 0.2, w.shape) for w in layer.get_weights()])
    detector = convolutionalize(classifier, spec, "max4")
    images = rng.random((8, 28, 28, 1), dtype=np.float32)
    expected = np.asarray(classifier(images, training=False))
    grid = np.asarray(detector(images, training=False))
    assert grid.shape == (8, 4, 4, 11)
    centre = classifier_cell(spec, "max4")
    # float32 sums in another order (1x1 convolutions vs matmuls, blocked by the threads free):
    # 3e-5 apart on wide's 128-channel head on a loaded machine, 0 to 1e-6 on an idle one.
    assert np.abs(grid[:, centre, centre] - expected).max() <= 1e-4


@pytest.mark.parametrize("pooling", POOLINGS)
def test_grid_is_ceil_of_input_over_stride(pooling):
    spec = get_spec("basic")
    detector = convolutionalize(build_classifier(spec), spec, pooling)
    for height, width in ((28, 28), (100, 100), (127, 333)):
        grid = detector(np.zeros((1, height, width, 1), np.float32), training=False)
        assert tuple(grid.shape) == (1, -(-height // 8), -(-width // 8), 11)
