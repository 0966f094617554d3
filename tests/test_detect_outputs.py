"""`convdet detect` options users of other detectors expect: --classes, --grid heatmap,
--save-crop, --save-txt and --coco, each checked end to end on the shipped basic model.

No assertion depends on a training run's scores: the page's four digits are ones the basic
model finds (checked by the unfiltered run each test compares with).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_detect_cli import error_lines, records
from test_sources import write_video

from convdet.cli import main
from convdet.options import parse_classes


def four_digit_page(mnist: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """A 96x256 page (dark ink on white) of MNIST test digits 0-3 (7, 2, 1, 0) spaced wide
    apart, so each is a line of its own, and their labels left to right."""
    page = np.full((96, 256), 255, np.uint8)
    for position in range(4):
        left = 20 + 56 * position
        page[34:62, left : left + 28] = 255 - mnist["x_test"][position]
    return page, [str(label) for label in mnist["y_test"][:4]]


@pytest.fixture
def page(tmp_path: Path, mnist) -> Path:
    path = tmp_path / "in" / "page.png"
    path.parent.mkdir()
    cv2.imwrite(str(path), four_digit_page(mnist)[0])
    return path


def detect(page: Path, model: Path, *options: str) -> int:
    return main(["detect", str(page), "--model", str(model), *options])


def test_classes_keep_only_those_detections_and_lines_are_read_from_them(tmp_path, page, model):
    assert detect(page, model, "--json", str(tmp_path / "all.jsonl")) == 0
    everything = records(tmp_path / "all.jsonl")[0]
    assert {d["label"] for d in everything["detections"]} == {"7", "2", "1", "0"}
    assert detect(page, model, "--classes", "7,1", "--json", str(tmp_path / "kept.jsonl")) == 0
    kept = records(tmp_path / "kept.jsonl")[0]  # records() checks every line's indices
    assert kept["detections"] == [d for d in everything["detections"] if d["label"] in "71"]
    assert sorted(line["text"] for line in kept["lines"]) == ["1", "7"]


def test_classes_drawing_shows_the_kept_classes_alone(tmp_path, page, model):
    """The grid and the boxes of a left-out digit are not drawn: the part of the page around
    the 2 (second digit) stays as it is, while the 7's does not."""
    assert detect(page, model, "--classes", "7", "--no-legend", "--save", str(tmp_path / "s")) == 0
    saved = cv2.imread(str(tmp_path / "s" / "page.png"))
    original = cv2.cvtColor(cv2.imread(str(page), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR)
    changed = (saved != original).any(axis=2)
    assert changed[:, :66].sum() > 100  # the 7 (columns 20-48), its tiles, box and tag
    assert not changed[:, 76:132].any()  # the 2 (columns 76-104) and the gap after it


def test_grid_modes_and_no_grid_as_grid_off(tmp_path, page, model):
    saved = {}
    for name, options in {
        "cells": [],
        "heatmap": ["--grid", "heatmap"],
        "off": ["--grid", "off"],
        "no-grid": ["--no-grid"],
    }.items():
        assert detect(page, model, "--no-legend", *options, "--save", str(tmp_path / name)) == 0
        saved[name] = cv2.imread(str(tmp_path / name / "page.png"))
    assert (saved["off"] == saved["no-grid"]).all()
    page_bgr = cv2.cvtColor(cv2.imread(str(page), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR)
    changed = {name: int((image != page_bgr).any(axis=2).sum()) for name, image in saved.items()}
    assert changed["off"] < changed["cells"] and changed["off"] < changed["heatmap"]
    assert (saved["heatmap"] != saved["cells"]).any()
    assert (saved["heatmap"][:, -8:] == 255).all()  # the white page's right margin stays white


def test_save_crop_cuts_each_box_as_drawn_and_a_second_run_keeps_the_first(tmp_path, page, model):
    out = tmp_path / "out"
    options = ["--save", str(out), "--save-crop", "--json", str(tmp_path / "r.jsonl")]
    assert detect(page, model, *options) == 0
    detections = records(tmp_path / "r.jsonl")[0]["detections"]
    assert len(detections) == 4
    image = cv2.imread(str(page))
    expected = set()
    for index, detection in enumerate(detections):
        name = Path("crops", detection["label"], f"page_{index}.jpg")
        expected.add(name)
        crop = cv2.imread(str(out / name))
        x1, y1, x2, y2 = np.clip(np.round(detection["box"]).astype(int), 0, [255, 95, 255, 95])
        assert crop.shape == (y2 - y1 + 1, x2 - x1 + 1, 3)
        cut = image[y1 : y2 + 1, x1 : x2 + 1].astype(int)
        assert np.abs(crop.astype(int) - cut).mean() < 8  # JPEG's loss, no drawing on it
    assert {path.relative_to(out) for path in (out / "crops").rglob("*.jpg")} == expected
    first = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    (tmp_path / "r.jsonl").unlink()
    assert detect(page, model, *options) == 0
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == first
    second = tmp_path / "out-2"
    assert {path.relative_to(second) for path in (second / "crops").rglob("*.jpg")} == expected


def test_save_txt_writes_yolo_labels_mirroring_the_inputs(tmp_path, page, model):
    (page.parent / "sub").mkdir()
    cv2.imwrite(str(page.parent / "sub" / "blank.png"), np.full((40, 50), 255, np.uint8))
    for name, options in {"plain": [], "conf": ["--save-conf"]}.items():
        json = tmp_path / f"{name}.jsonl"
        saving = ["--save", str(tmp_path / name), "--save-txt", *options]
        assert detect(page.parent, model, "--recursive", "--json", str(json), *saving) == 0
        labels = tmp_path / name / "labels"
        assert (labels / "sub" / "blank.txt").read_text() == ""  # no detections: an empty file
        record = next(row for row in records(json) if row["source"] == str(page))
        rows = [line.split() for line in (labels / "page.txt").read_text().splitlines()]
        assert len(rows) == len(record["detections"]) == 4
        for row, detection in zip(rows, record["detections"], strict=True):
            assert len(row) == (6 if name == "conf" else 5)
            assert int(row[0]) == detection["class_id"]
            x1, y1, x2, y2 = detection["box"]
            centre_size = [(x1 + x2) / 2 / 256, (y1 + y2) / 2 / 96, (x2 - x1) / 256, (y2 - y1) / 96]
            np.testing.assert_allclose([float(v) for v in row[1:5]], centre_size, atol=1e-3)
            assert all(0 <= float(v) <= 1 for v in row[1:5])
            if name == "conf":
                assert float(row[5]) == pytest.approx(detection["score"], abs=1e-4)


def test_video_frames_name_crops_and_labels_by_frame_index(tmp_path, mnist, model):
    video = write_video(tmp_path / "clip.avi", mnist, frames=3)
    out = tmp_path / "out"
    options = ["--save", str(out), "--save-crop", "--save-txt", "--json", str(tmp_path / "r.jsonl")]
    assert main(["detect", str(video), "--model", str(model), *options]) == 0
    rows = records(tmp_path / "r.jsonl")
    assert [row["frame"] for row in rows] == [0, 1, 2] and (out / "clip.avi").is_file()
    crops = {
        Path("crops", d["label"], f"clip_{row['frame']:08d}_{index}.jpg")
        for row in rows
        for index, d in enumerate(row["detections"])
    }
    saved = {path.relative_to(out) for path in (out / "crops").rglob("*") if path.is_file()}
    assert crops and saved == crops
    labels = sorted(path.name for path in (out / "labels").iterdir())
    assert labels == [f"clip_{frame:08d}.txt" for frame in range(3)]


def test_coco_results_number_images_by_their_place_in_the_batch(tmp_path, page, model):
    cv2.imwrite(str(page.parent / "a-blank.png"), np.full((40, 50), 255, np.uint8))
    cv2.imwrite(str(page.parent / "z-page.png"), cv2.imread(str(page)))
    coco, jsonl = tmp_path / "results.json", tmp_path / "r.jsonl"
    options = ["--classes", "7,2,0", "--coco", str(coco), "--json", str(jsonl)]
    assert detect(page.parent, model, *options) == 0
    rows = records(jsonl)
    assert [Path(row["source"]).name for row in rows] == ["a-blank.png", "page.png", "z-page.png"]
    expected = [
        {"image_id": image_id, "category_id": d["class_id"], "score": d["score"],
         "bbox": [d["box"][0], d["box"][1], d["box"][2] - d["box"][0], d["box"][3] - d["box"][1]]}
        for image_id, row in enumerate(rows, start=1)
        for d in row["detections"]
    ]  # fmt: skip
    results = json.loads(coco.read_text())
    assert len(results) == 6 and {r["image_id"] for r in results} == {2, 3}
    assert {r["category_id"] for r in results} == {7, 2, 0}
    for result, wanted in zip(results, expected, strict=True):
        assert result.keys() == wanted.keys() and result["image_id"] == wanted["image_id"]
        assert result["category_id"] == wanted["category_id"]
        assert result["score"] == pytest.approx(wanted["score"], abs=1e-4)
        np.testing.assert_allclose(result["bbox"], wanted["bbox"], atol=0.1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in", "r.jsonl", "results.json"]


def test_coco_images_give_each_result_the_ground_truths_id_for_its_file_name(
    tmp_path, page, model, capsys
):
    folder = page.parent
    (folder / "sub").mkdir()
    page.rename(folder / "sub" / "page.png")
    drawn = cv2.imread(str(folder / "sub" / "page.png"))
    for name in ("a-page.png", "z-page.png", "extra.png"):
        cv2.imwrite(str(folder / name), drawn)
    images = [
        {"id": 42, "file_name": "images/a-page.png", "width": 256},  # by its base name alone
        {"id": 7, "file_name": "sub/page.png"},  # by its path in the SOURCE folder
        {"id": 1001, "file_name": "z-page.png"},
        {"id": 5, "file_name": "other/z-page.png"},  # z-page.png is two base names
    ]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": images, "annotations": []}), encoding="utf-8")
    coco, jsonl = tmp_path / "results.json", tmp_path / "r.jsonl"
    sources = [str(folder), str(folder / "z-page.png")]  # z-page.png twice
    options = ["--recursive", "--coco", str(coco), "--coco-images", str(gt), "--json", str(jsonl)]
    assert main(["detect", *sources, "--model", str(model), *options]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"convdet detect: {folder / 'extra.png'}: not in --coco-images {gt} (no image named "
        "extra.png)",
        f"convdet detect: {folder / 'z-page.png'}: its --coco-images image (z-page.png, id "
        f"1001) is already {folder / 'z-page.png'}'s",
    ]
    rows = records(jsonl)
    assert [(Path(row["source"]).name, "error" in row) for row in rows] == [
        ("a-page.png", False),
        ("extra.png", True),
        ("page.png", False),
        ("z-page.png", False),
        ("z-page.png", True),
    ]
    wanted = {"a-page.png": 42, "sub/page.png": 7, "z-page.png": 1001}
    expected = [
        (wanted[Path(row["source"]).relative_to(folder).as_posix()], d["class_id"])
        for row in rows
        if "error" not in row
        for d in row["detections"]
    ]
    results = json.loads(coco.read_text(encoding="utf-8"))
    assert len(expected) == 12  # four digits on each page
    assert [(r["image_id"], r["category_id"]) for r in results] == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "--coco-images {gt}: unreadable: No such file or directory"),
        ("{", "--coco-images {gt}: not a COCO JSON file (Expecting property name"),
        ("[]", '--coco-images {gt}: not a COCO file with images (no "images" list, or empty)'),
        ('{"images": []}', "--coco-images {gt}: not a COCO file with images"),
        ('{"images": [{"id": "1", "file_name": "a.png"}]}', 'image 0 of "images" has no'),
        ('{"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "./a.png"}]}',
         "--coco-images {gt}: file_name 'a.png' is named by two images"),
        ('{"images": [{"id": 1, "file_name": "page.png"}]}', "--coco-images needs --coco FILE"),
        ("FIFO", "--coco-images {gt}: not a regular file (a folder, device or FIFO)"),
        ("folder", "--coco-images {gt}: not a regular file (a folder, device or FIFO)"),
    ],
)  # fmt: skip
def test_coco_images_that_cannot_be_used_are_one_line_before_the_run(
    tmp_path, page, model, capsys, content, message
):
    gt = tmp_path / "gt.json"
    if content == "FIFO":
        os.mkfifo(gt)  # read, it would block the run before it starts
    elif content == "folder":
        gt.mkdir()
    elif content is not None:
        gt.write_text(content, encoding="utf-8")
    coco = [] if "needs --coco" in message else ["--coco", str(tmp_path / "c.json")]
    assert detect(page, model, *coco, "--coco-images", str(gt)) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [err.rstrip("\n")] and message.format(gt=gt) in err
    assert not (tmp_path / "c.json").exists()


def test_coco_inside_a_used_save_folder_moves_with_the_run(tmp_path, page, model):
    out = tmp_path / "out"
    for _run in range(2):
        assert detect(page, model, "--save", str(out), "--coco", str(out / "coco.json")) == 0
    assert len(json.loads((out / "coco.json").read_text())) == 4
    assert json.loads((tmp_path / "out-2" / "coco.json").read_text()) == json.loads(
        (out / "coco.json").read_text()
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--coco", "{existing}"], "--coco {existing} already exists; choose another file"),
        (["--coco", "{page}"], "--coco {page} is an input file"),
        (
            ["--coco", "{out}/r.jsonl", "--json", "{out}/r.jsonl"],
            "--coco {out}/r.jsonl is the --json",
        ),
        (
            ["--save", "{out}", "--coco", "{out}/page.png"],
            "is where --save writes an annotated image",
        ),
        (["--save", "{out}", "--coco", "{out}"], "--coco {out} is the --save folder"),
    ],
)
def test_coco_never_names_an_existing_file_an_input_or_another_output(
    tmp_path, page, model, capsys, options, message
):
    existing = tmp_path / "old.json"
    existing.write_text("[]\n")
    paths = {"existing": existing, "page": page, "out": tmp_path / "out"}
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert detect(page, model, *[option.format(**paths) for option in options]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [err.rstrip("\n")] and message.format(**paths) in err
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert not (tmp_path / "out").exists()


def test_coco_applies_to_image_batches(tmp_path, mnist, model, capsys):
    video = write_video(tmp_path / "clip.avi", mnist, frames=2)
    assert (
        main(["detect", str(video), "--model", str(model), "--coco", str(tmp_path / "c.json")]) == 2
    )
    assert "--coco applies to image batches" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_classes_take_labels_or_ids_and_refuse_the_rest():
    labels = ("a", "b", "10", "background")
    assert parse_classes(None, labels, 3) is None
    assert parse_classes("b, 0,b", labels, 3) == (1, 0)  # a label, an id, duplicates dropped
    assert parse_classes("10", labels, 3) == (2,)  # a label before an id
    assert parse_classes("1", ("0", "1", "background"), 2) == (1,)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--classes", "x"], "--classes: no class 'x' in this model (it has 0, 1, 2, 3, 4, 5"),
        (["--classes", "3,12"], "--classes: no class '12' in this model"),
        (["--classes", "10"], "--classes: '10' is the background class, not a digit"),
        (["--classes", "background"], "--classes: 'background' is the background class"),
        (["--classes", " , "], "--classes: expected labels or class ids, got ' , '"),
        (["--save-crop"], "--save-crop needs --save DIR"),
        (["--save-txt"], "--save-txt needs --save DIR"),
        (["--save", "{out}", "--save-conf"], "--save-conf needs --save-txt"),
        (["--grid", "dots"], "--grid: expected one of cells, heatmap, off, got 'dots'"),
        (["--no-grid", "--grid", "heatmap"], "--no-grid is --grid off; it excludes --grid heatmap"),
    ],
)
def test_bad_options_are_one_line_exit_2(tmp_path, page, model, capsys, options, message):
    options = [option.format(out=tmp_path / "out") for option in options]
    before = sorted(tmp_path.rglob("*"))
    assert detect(page, model, *options) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [err.rstrip("\n")] and err.startswith("convdet detect: error: ")
    assert message.format(out=tmp_path / "out") in err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written
