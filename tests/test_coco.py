"""COCO digit folders: fixed splits by file name, ink-box truths, one-line errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from convdet.data.coco import load_coco_set, split_of


def test_splits_are_fixed_by_name_and_sized_60_15_25() -> None:
    names = [f"a_car_{number:06d}.jpg" for number in range(2000)]
    counts = Counter(split_of(name) for name in names)
    assert abs(counts["train"] / 2000 - 0.60) < 0.04
    assert abs(counts["dev"] / 2000 - 0.15) < 0.03
    assert abs(counts["test"] / 2000 - 0.25) < 0.03
    # pinned: a change to the hash or the buckets would move held-out images into training
    assert [split_of(name) for name in names[:6]] == [split_of(f"x/{n}") for n in names[:6]]
    assert split_of("images/a_car_000154.jpg") == split_of("a_car_000154.jpg")


def write_folder(root: Path, images: list[dict], annotations: list[dict]) -> Path:
    (root / "images").mkdir(parents=True)
    for image in images:
        cv2.imwrite(str(root / "images" / image["file_name"]), np.zeros((20, 40), np.uint8))
    categories = [{"id": digit, "name": str(digit)} for digit in range(10)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def test_digits_are_ink_boxes_read_left_to_right(tmp_path: Path) -> None:
    image = {"id": 1, "file_name": "a.png", "width": 40, "height": 20}
    annotations = [
        {"image_id": 1, "category_id": 7, "bbox": [20, 2, 6, 15]},
        {"image_id": 1, "category_id": 1, "bbox": [3, 2, 5, 15]},
    ]
    scenes = load_coco_set(write_folder(tmp_path, [image], annotations))
    (truth,) = scenes.truths
    assert truth.box_kind == "ink" and truth.line_texts() == ["17"]
    np.testing.assert_array_equal(truth.digit_heights(), [15, 15])


@pytest.mark.parametrize("missing", ["width", "id", "file_name"])
def test_a_malformed_image_entry_is_a_value_error_naming_the_file(
    tmp_path: Path, missing: str
) -> None:
    image = {"id": 1, "file_name": "a.png", "width": 40, "height": 20}
    root = write_folder(tmp_path, [image], [])
    coco = json.loads((root / "annotations.json").read_text())
    del coco["images"][0][missing]
    (root / "annotations.json").write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=r"annotations\.json"):
        load_coco_set(root)
