"""The background class: every kind is generated, labelled background, and off-centre really is."""

from __future__ import annotations

import numpy as np
import pytest
from convdet.export.background import ALL_KINDS, BackgroundMix, make_background


def centre_of_mass(patch: np.ndarray) -> np.ndarray:
    ys, xs = np.indices(patch.shape)
    total = patch.sum()
    return np.array([(ys * patch).sum() / total, (xs * patch).sum() / total])


def test_patches_have_the_shape_range_and_every_kind(mnist):
    digits = mnist["x_train"][:200].astype(np.float32) / 255
    patches, kinds = make_background(600, np.random.default_rng(0), digits, BackgroundMix())
    assert patches.shape == (600, 28, 28) and patches.dtype == np.float32
    assert patches.min() >= 0 and patches.max() <= 1
    assert set(kinds) == set(range(len(ALL_KINDS)))


def test_off_centre_digits_are_far_from_the_window_centre(mnist):
    digits = mnist["x_train"][:200].astype(np.float32) / 255
    only = BackgroundMix(**{kind: float(kind == "offcentre") for kind in ALL_KINDS})
    patches, _ = make_background(200, np.random.default_rng(1), digits, only)
    # Remove the photometric floor before locating the ink.
    ink = np.clip(patches - np.median(patches, axis=(1, 2), keepdims=True), 0, None)
    offsets = np.array([np.linalg.norm(centre_of_mass(p) - 13.5) for p in ink if p.sum() > 1])
    centred = digits.mean(0)
    assert np.linalg.norm(centre_of_mass(centred) - 13.5) < 1.5
    # Cropping pulls the visible centre of mass inwards, but it stays well off-centre.
    assert np.median(offsets) > 5


def test_mix_weights_decide_the_kinds(mnist):
    digits = mnist["x_train"][:50].astype(np.float32) / 255
    mix = BackgroundMix.parse(",".join(f"{kind}={int(kind == 'blank')}" for kind in ALL_KINDS))
    patches, kinds = make_background(50, np.random.default_rng(2), digits, mix)
    assert set(kinds) == {ALL_KINDS.index("blank")}
    assert np.all(patches.std(axis=(1, 2)) < 1e-6)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("blobs=1", "unknown kind"),
        ("seam=x", "needs a number"),
        (",".join(f"{kind}=0" for kind in ALL_KINDS), "all weights are zero"),
    ],
)
def test_bad_mixes_are_rejected(text, error):
    with pytest.raises(ValueError, match=error):
        BackgroundMix.parse(text).weights()
