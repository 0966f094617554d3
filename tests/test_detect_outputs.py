"""`convdet detect` options users of other detectors expect: --classes and --grid heatmap,
each checked end to end on the shipped basic model.

No assertion depends on a training run's scores: the page's four digits are ones the basic
model finds (checked by the unfiltered run each test compares with).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_detect_cli import error_lines, records

from convdet.cli import main
from convdet.commands.detect import parse_classes


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
