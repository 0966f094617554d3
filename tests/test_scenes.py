"""The scene generator, scene sets on disk, the MNIST loader and `convdet scenes`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from convdet.data.digits import load_mnist_npz
from convdet.data.scenes import (
    CLASSIC_STYLES,
    STYLES,
    SceneParams,
    generate_scenes,
    isolated_crops,
    load_scene_set,
    write_scene_set,
)

from convdet.cli import main

SIZE = (320, 240)


def make(mnist: dict[str, np.ndarray], style: str, count: int = 3, seed: int = 1, **kwargs):
    """`count` scenes of `style` from the test split."""
    params = SceneParams(style, count, seed=seed, size=kwargs.pop("size", SIZE), **kwargs)
    return list(generate_scenes(mnist["x_test"], mnist["y_test"], params))


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_same_bytes_other_seed_other_scenes(mnist, style: str) -> None:
    first, again, other = make(mnist, style), make(mnist, style), make(mnist, style, seed=2)
    assert [s.encoded for s in first] == [s.encoded for s in again]
    assert [s.truth.to_record() for s in first] == [s.truth.to_record() for s in again]
    assert first[0].encoded != other[0].encoded


@pytest.mark.parametrize("style", CLASSIC_STYLES)
def test_boxes_inside_canvas_and_never_overlap(mnist, style: str) -> None:
    gap = 4
    for scene in make(mnist, style, count=4, max_digits=40, gap=gap):
        boxes = scene.truth.boxes
        assert len(boxes) >= 10
        assert (boxes[:, :2] >= 0).all()
        assert (boxes[:, 2] <= SIZE[0]).all() and (boxes[:, 3] <= SIZE[1]).all()
        a, b = np.triu_indices(len(boxes), k=1)
        apart_x = (boxes[a, 0] >= boxes[b, 2] + gap) | (boxes[b, 0] >= boxes[a, 2] + gap)
        apart_y = (boxes[a, 1] >= boxes[b, 3] + gap) | (boxes[b, 1] >= boxes[a, 3] + gap)
        assert (apart_x | apart_y).all()


def test_digits_come_from_the_split_and_each_once(mnist) -> None:
    scenes = make(mnist, "mnist", count=5)
    seen = np.concatenate([s.truth.indices for s in scenes])
    assert len(set(seen.tolist())) == len(seen)
    for scene in scenes:
        truth = scene.truth
        assert (truth.classes == mnist["y_test"][truth.indices]).all()
        for crop, index in zip(
            isolated_crops(scene.image, truth.boxes), truth.indices, strict=True
        ):
            np.testing.assert_array_equal(crop, mnist["x_test"][index])


def test_styles_differ_as_intended(mnist) -> None:
    plain, paper, multi = (make(mnist, style, count=2) for style in CLASSIC_STYLES)
    for scene in plain:
        sides = scene.truth.boxes[:, 2] - scene.truth.boxes[:, 0]
        assert scene.image.ndim == 2 and scene.truth.file.endswith(".png")
        assert (sides == 28).all() and np.median(scene.image) == 0
    for scene in paper:
        image = scene.image.astype(float)
        assert image.ndim == 3 and scene.truth.file.endswith(".jpg")
        assert np.median(image) > 100  # lit paper
        ink = np.zeros(image.shape[:2], bool)
        for x1, y1, x2, y2 in scene.truth.boxes.astype(int):
            ink[y1:y2, x1:x2] = True
        paper_pixels = image[~ink].mean(axis=1)
        assert paper_pixels.std() > 3  # gradient and noise, not a flat sheet
        assert image[ink].min() < 80  # dark ink
    sides = np.concatenate([s.truth.boxes[:, 2] - s.truth.boxes[:, 0] for s in multi])
    assert sides.min() >= 20 and sides.max() <= 56 and sides.max() - sides.min() > 15
    for scene in multi:
        boxes = scene.truth.boxes
        assert (boxes[:, 2] - boxes[:, 0] == boxes[:, 3] - boxes[:, 1]).all()  # square frames


def test_paper_image_is_the_decoded_jpeg(mnist, tmp_path: Path) -> None:
    scenes = make(mnist, "paper", count=1)
    write_scene_set(tmp_path, iter(scenes), {"seed": 1})
    loaded = load_scene_set(tmp_path)
    np.testing.assert_array_equal(loaded.image(loaded.truths[0]), scenes[0].image)
    assert loaded.truths[0].to_record() == scenes[0].truth.to_record()
    assert loaded.manifest["images"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"style": "ink"}, "style"),
        ({"style": "multiscale", "size": (50, 300)}, "56x56"),
        ({"style": "mnist", "count": -1}, "count"),
    ],
)
def test_bad_params(kwargs: dict, message: str) -> None:
    kwargs.setdefault("count", 1)
    with pytest.raises(ValueError, match=message):
        SceneParams(**kwargs)


def test_load_mnist_npz_reads_the_subset(mnist_npz: Path) -> None:
    x_train, _, x_test, y_test = load_mnist_npz(mnist_npz)
    assert x_train.shape[1:] == (28, 28) and x_test.dtype == np.uint8
    assert y_test.dtype == np.int64 and len(y_test) == len(x_test)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y_train": None}, "missing y_train"),
        ({"x_test": np.zeros((2, 28, 27), np.uint8)}, r"x_test should have shape"),
        ({"x_test": np.zeros((2, 28, 28), np.float32)}, "x_test should be uint8"),
        ({"y_test": np.zeros(3, np.uint8)}, r"y_test should have shape \(2,\)"),
        ({"y_train": np.full(2, 10, np.uint8)}, "labels 0..9"),
    ],
)
def test_load_mnist_npz_names_the_file_and_the_problem(
    tmp_path: Path, arrays: dict, message: str
) -> None:
    good = {
        "x_train": np.zeros((2, 28, 28), np.uint8),
        "y_train": np.zeros(2, np.uint8),
        "x_test": np.zeros((2, 28, 28), np.uint8),
        "y_test": np.zeros(2, np.uint8),
    }
    path = tmp_path / "digits.npz"
    np.savez(path, **{k: v for k, v in {**good, **arrays}.items() if v is not None})
    with pytest.raises(ValueError, match=message) as error:
        load_mnist_npz(path)
    assert "digits.npz" in str(error.value)


def test_cli_writes_a_reproducible_set(mnist_npz: Path, tmp_path: Path) -> None:
    command = [
        "scenes",
        "--data",
        str(mnist_npz),
        "--style",
        "classic,large",
        "--count",
        "2",
        "--seed",
        "5",
        "--size",
        "200x150",
    ]
    assert main([*command, "--out", str(tmp_path / "a")]) == 0
    assert main([*command, "--out", str(tmp_path / "b")]) == 0
    lines = (tmp_path / "a" / "truth.jsonl").read_text().splitlines()
    assert lines == (tmp_path / "b" / "truth.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    styles = ["mnist", "paper", "multiscale", "large"]
    assert [r["style"] for r in records] == [style for style in styles for _ in range(2)]
    assert all((r["width"], r["height"]) == (200, 150) for r in records)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert (manifest["seed"], manifest["split"], manifest["images"]) == (5, "test", 8)


def test_cli_refuses_a_non_empty_folder(
    mnist_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["scenes", "--data", str(mnist_npz), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an empty folder" in err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_cli_bad_size_is_a_usage_error(
    mnist_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["scenes", "--data", str(mnist_npz), "--out", str(tmp_path / "x"), "--size", "big"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "convdet scenes: error: --size: expected WIDTHxHEIGHT like 640x480, got 'big'\n"


def test_train_command_names_every_scene_style() -> None:
    from convdet.commands.train import STYLES as TRAIN_STYLES

    assert tuple(TRAIN_STYLES.split(",")) == STYLES
