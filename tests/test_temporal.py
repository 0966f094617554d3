"""Temporal reuse gives the detections of full recompute on synthetic video with a moving digit,
recomputes only around the change, and never lets changes below the threshold add up."""

from __future__ import annotations

import json
from operator import itemgetter

import numpy as np
import pytest
from convdet.data.motion import moving_digit_video
from convdet.data.scenes import SceneParams, generate_scenes
from convdet.measure.latency import detections_agreement
from convdet.runtime.detector import Detector
from convdet.runtime.field import model_field
from convdet.runtime.sparse import SparseInference
from convdet.runtime.temporal import NOISE_THRESHOLD, PIXEL_CHANGE, TemporalReuse, changed_pixels

from tests.test_sparse import same_detections


@pytest.fixture(scope="module")
def dense(models_dir) -> Detector:
    return Detector(models_dir / "wide.onnx", sparse="off")


def page(mnist, style: str) -> np.ndarray:
    scenes = generate_scenes(mnist["x_test"], mnist["y_test"], SceneParams(style, 1, 3))
    return next(scenes).image


@pytest.mark.parametrize(
    ("style", "threshold"),
    [("mnist", 0.0), ("notebook", 0.0), ("notebook", NOISE_THRESHOLD), ("paper", NOISE_THRESHOLD)],
)
def test_temporal_gives_the_detections_of_full_recompute(dense, mnist, style, threshold) -> None:
    """Without camera noise; at threshold 0 the scores too (the page's normalization moves
    every pixel a little as the digit moves)."""
    video = moving_digit_video(page(mnist, style), mnist["x_test"][5], 6, noise=0.0)
    temporal = Detector(dense.model_path, temporal=True, temporal_threshold=threshold)
    for frame in video:
        expected, found = dense(frame), temporal(frame)
        assert same_detections(expected.detections, found.detections)
        if threshold == 0.0:
            assert np.abs(expected.scores - found.scores).max() <= 1e-6


def test_camera_noise_is_reused_and_detections_agree(dense, mnist) -> None:
    """Under camera noise (sigma 2 codes) most of a still page is reused, where a per-pixel
    test would recompute nearly all of it; the noise makes dense detections flicker a little,
    which reused cells do not follow, so they agree closely rather than exactly."""
    video = moving_digit_video(page(mnist, "paper"), mnist["x_test"][5], 8, noise=2.0)
    reuse = TemporalReuse(SparseInference(dense.backend.run, model_field(dense.backend), 8, 0.0))
    temporal = Detector(dense.model_path, temporal=True)
    shares, expected, found = [], [], []
    for frame in video:
        prepared, _ = dense.preprocessor.prepare(frame)
        reuse("frame", dense.preprocessor.model_input(prepared)[0, :, :, 0])
        shares.append(reuse.last_recomputed)
        expected.append(dense(frame).detections)
        found.append(temporal(frame).detections)
    assert max(shares[1:]) < 0.25
    assert detections_agreement(expected, found) >= 0.95


def test_only_cells_that_see_the_change_are_recomputed(dense, mnist) -> None:
    video = moving_digit_video(page(mnist, "paper"), mnist["x_test"][5], 3, noise=0.0)
    field = model_field(dense.backend)
    reuse = TemporalReuse(SparseInference(dense.backend.run, field, 8, 0.0, "off"))
    shares = []
    for frame in video:
        prepared, _ = dense.preprocessor.prepare(frame)
        image = dense.preprocessor.model_input(prepared)[0, :, :, 0]
        expected = dense.backend.run(image[None, :, :, None])[0]
        assert np.abs(reuse("frame", image) - expected).max() <= 1e-6
        shares.append(reuse.last_recomputed)
    assert shares[0] == 1.0 and 0.0 < max(shares[1:]) < 0.25


def test_changes_below_the_threshold_do_not_add_up(dense) -> None:
    field = model_field(dense.backend)
    reuse = TemporalReuse(SparseInference(dense.backend.run, field, 8, 0.0), threshold=0.03)
    image = np.zeros((96, 128), np.float32)
    image[40:60, 50:60] = 0.5
    reuse(0, image)
    reuse(0, image + 0.02)  # noise: kept
    assert reuse.last_recomputed == 0.0
    reuse(0, image + 0.04)  # 0.04 from the frame the scores were computed on: recomputed
    assert reuse.last_recomputed == 1.0
    found = reuse(0, image + 0.04)
    expected = dense.backend.run((image + 0.04)[None, :, :, None])[0]
    assert np.abs(found - expected).max() <= 1e-6


def test_noise_is_no_change_but_a_dot_or_a_faint_patch_is() -> None:
    rng = np.random.default_rng(0)
    reference = np.full((64, 64), 0.2, np.float32)
    noisy = reference + rng.normal(0.0, 0.02, reference.shape).astype(np.float32)
    assert np.abs(noisy - reference).max() > NOISE_THRESHOLD  # a per-pixel test would fire
    assert not changed_pixels(noisy, reference, NOISE_THRESHOLD).any()
    dot = reference.copy()
    dot[30, 30] += PIXEL_CHANGE + 0.01  # one pixel, diluted 25 times by the neighbourhood mean
    assert changed_pixels(dot, reference, NOISE_THRESHOLD)[30, 30] == 255
    patch = reference.copy()
    patch[20:26, 20:26] += 2 * NOISE_THRESHOLD  # faint, but over a whole neighbourhood
    assert changed_pixels(patch, reference, NOISE_THRESHOLD)[22, 22] == 255
    assert np.count_nonzero(changed_pixels(dot, reference, 0.0)) >= 1


def test_reset_and_a_new_size_compute_the_next_frame_in_full(dense) -> None:
    reuse = TemporalReuse(SparseInference(dense.backend.run, model_field(dense.backend), 8, 0.0))
    image = np.zeros((64, 64), np.float32)
    reuse(0, image)
    reuse(0, image)
    assert reuse.last_recomputed == 0.0
    reuse.reset()
    reuse(0, image)
    assert reuse.last_recomputed == 1.0
    reuse(0, np.zeros((64, 72), np.float32))
    assert reuse.last_recomputed == 1.0


def test_bad_threshold_is_a_value_error(models_dir) -> None:
    with pytest.raises(ValueError, match=r"temporal_threshold: expected 0 <= x < 1, got 1\.5"):
        Detector(models_dir / "basic.onnx", temporal=True, temporal_threshold=1.5)


def test_detect_command_gives_the_same_records_with_sparse_and_temporal_on(
    tmp_path, mnist, models_dir
) -> None:
    from convdet.measure.frames import write_video

    from convdet.cli import main

    frames = moving_digit_video(page(mnist, "mnist"), mnist["x_test"][5], 4, noise=0.0)
    video = write_video(frames, tmp_path / "moving.avi")
    texts = {}
    for name, options in {
        "dense": ["--sparse", "off"],
        "fast": ["--sparse", "on", "--temporal", "on"],
    }.items():
        out = tmp_path / f"{name}.jsonl"
        model = str(models_dir / "wide.onnx")
        assert main(["detect", str(video), "--model", model, "--json", str(out), *options]) == 0
        records = [json.loads(line) for line in out.read_text().splitlines()]
        texts[name] = [record["detections"] for record in records if "detections" in record]
    # The video codec's small changes are below the noise threshold: reused cells keep scores
    # of an earlier frame, so scores may differ a little; classes and boxes do not.
    assert len(texts["dense"]) == 4 and len(texts["fast"]) == 4
    for expected, found in zip(texts["dense"], texts["fast"], strict=True):
        expected, found = (sorted(d, key=itemgetter("label", "box")) for d in (expected, found))
        assert [(d["label"], d["box"]) for d in found] == [(d["label"], d["box"]) for d in expected]
        scores = [(d["score"], e["score"]) for d, e in zip(found, expected, strict=True)]
        assert max(abs(a - b) for a, b in scores) <= 0.01


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--sparse", "--sparse: expected one of auto, on, off, got 'yes'"),
        ("--temporal", "--temporal: expected one of on, off, got 'yes'"),
    ],
)
def test_detect_refuses_bad_modes(option, message, model, capsys) -> None:
    from convdet.cli import main

    assert main(["detect", "x.png", "--model", str(model), option, "yes"]) == 2
    assert message in capsys.readouterr().err
