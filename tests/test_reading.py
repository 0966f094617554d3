"""Reading strings on hand-made frames: rows in reading order, slant, wide gaps, box shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from convdet.runtime.detections import Detections
from convdet.runtime.reading import group_lines, read_lines

LABELS = (*(str(digit) for digit in range(10)), "background")


def digits_at(placed: list[tuple[int, float, float, float, float]]) -> Detections:
    """Detections from (digit, x, y, width, height) tuples, scores 0.9, 0.8, ..."""
    boxes = [[x, y, x + width, y + height] for _, x, y, width, height in placed]
    scores = [0.9 - 0.05 * k for k in range(len(placed))]
    return Detections(np.array(boxes).reshape(-1, 4), [d for d, *_ in placed], scores)


def string(text: str, x: float, y: float, rise: float = 0.0) -> list[tuple]:
    """Digits of `text` written left to right from (x, y), 20 px apart, each `rise` px higher
    than the one before; "1" gets a narrow tall 8x30 box, the others a round 18x24 one."""
    placed = []
    for k, d in enumerate(text):
        width, height, lift = (8, 30, 3) if d == "1" else (18, 24, 0)
        placed.append((int(d), x + 20 * k, y - rise * k - lift, width, height))
    return placed


def shuffled(placed: list[tuple], seed: int = 0) -> list[tuple]:
    return [placed[k] for k in np.random.default_rng(seed).permutation(len(placed))]


def test_two_lines_a_slanted_one_and_a_wide_gap_in_reading_order() -> None:
    # Line 1: "1897" rising 6 px a digit (about 17 degrees), then a gap of 60 px (2.5 digit
    # heights) and "05" on the same row; line 2, below: "42".
    placed = shuffled(
        string("1897", 10, 100, rise=6) + string("05", 150, 80) + string("42", 30, 150)
    )
    detections = digits_at(placed)
    lines = read_lines(detections, LABELS)
    assert [line.text for line in lines] == ["1897", "05", "42"]
    for line in lines:  # indices name the frame's detections, in reading order
        assert "".join(LABELS[detections.class_id[i]] for i in line.detections) == line.text
        xs = detections.centre[list(line.detections), 0]
        assert np.all(np.diff(xs) > 0)
    assert lines[1].box == pytest.approx((150, 80, 188, 104))
    assert lines[0].score == pytest.approx(min(detections.score[list(lines[0].detections)]))


def test_normal_spacing_and_touching_digits_stay_one_line_and_inf_keeps_rows_whole() -> None:
    touching = [(3, 0, 0, 24, 30), (5, 20, 2, 24, 30), (1, 46, 0, 8, 32), (0, 60, 4, 22, 26)]
    assert [line.text for line in read_lines(digits_at(touching), LABELS)] == ["3510"]
    gapped = string("12", 0, 0) + string("05", 80, 0) + string("1897", 160, 0)
    assert [line.text for line in read_lines(digits_at(gapped), LABELS)] == ["12", "05", "1897"]
    whole = read_lines(digits_at(gapped), LABELS, gap=math.inf)
    assert [line.text for line in whole] == ["12051897"]


def test_rows_are_ordered_top_to_bottom_whatever_their_x() -> None:
    placed = string("9", 300, 200) + string("77", 0, 100) + string("3", 150, 10)
    assert [line.text for line in read_lines(digits_at(shuffled(placed, 1)), LABELS)] == [
        "3",
        "77",
        "9",
    ]


def test_lines_a_box_height_apart_do_not_merge() -> None:
    placed = string("123", 0, 0) + string("456", 10, 26)  # 26 px below boxes 24-30 px tall
    assert [line.text for line in read_lines(digits_at(placed), LABELS)] == ["123", "456"]


def test_no_detections_no_lines() -> None:
    assert read_lines(Detections.empty(), LABELS) == ()
    assert group_lines(np.zeros((0, 4))) == []


def test_record_form() -> None:
    (line,) = read_lines(digits_at(string("70", 1.26, 2)), LABELS)
    assert line.to_record() == {
        "text": "70",
        "box": [1.3, 2.0, 39.3, 26.0],
        "detections": [0, 1],
        "score": 0.85,
    }
