"""Camera-realistic pages: every kind of mark is what it claims, and the truth fits the writing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from convdet.data import camera, surfaces
from convdet.data.scenes import SceneParams, generate_scenes
from convdet.export.background import ALL_KINDS, BackgroundMix, camera_windows, make_background

SIZE = (320, 240)


def blank_page(shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    return np.ones((*shape, 3), np.float32)


def darkened(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Pixels that some mark darkened by more than 5%."""
    return (before - after).max(axis=2) > 0.05


def test_a_line_patch_holds_one_straight_line() -> None:
    page = blank_page()
    rng = np.random.default_rng(3)
    for _ in range(10):
        page = blank_page()
        surfaces.straight_lines(page, rng, 1)
        ys, xs = np.nonzero(darkened(blank_page(), page))
        if xs.size > 20:
            break
    points = np.stack([xs, ys], axis=1).astype(np.float32)
    vx, vy, x0, y0 = cv2.fitLine(points, cv2.DIST_L2, 0, 0.01, 0.01).ravel()
    distance = np.abs((xs - x0) * vy - (ys - y0) * vx)
    assert np.percentile(distance, 95) < 4  # every marked pixel on one line, a few px thick
    assert np.ptp(xs) + np.ptp(ys) > 30  # and it runs across the patch


def test_printed_words_hold_no_digit_and_do_print() -> None:
    rng = np.random.default_rng(0)
    words = [surfaces.random_word(rng) for _ in range(2000)]
    assert not any(character.isdigit() for word in words for character in word)
    assert any(word.isupper() for word in words) and any(word.islower() for word in words)
    page = blank_page((200, 300))
    surfaces.printed_text(page, rng, 6, (12.0, 30.0))
    assert darkened(blank_page((200, 300)), page).mean() > 0.005


def test_ruling_marks_the_rows_it_returns() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        page = blank_page((200, 200))
        rows = surfaces.ruling(page, rng, 30.0)
        marked = darkened(blank_page((200, 200)), page)
        if marked.mean(axis=1).max() > 0.9:  # ruled or squared, not dots
            break
    on_rows = [marked[round(y) - 1 : round(y) + 2].mean() for y in rows if 2 < y < 197]
    between = [marked[round(y) + 14].mean() for y in rows if round(y) + 14 < 200]
    assert np.mean(on_rows) > 0.3 > np.mean(between)


@pytest.mark.parametrize(
    "draw",
    [
        lambda page, rng: surfaces.guilloche(page, rng),
        lambda page, rng: surfaces.boxes_and_tables(page, rng, 2),
        lambda page, rng: surfaces.scribbles(page, rng, 3, (20.0, 60.0)),
        lambda page, rng: surfaces.ruler(page, rng),
    ],
    ids=["guilloche", "tables", "scribbles", "ruler"],
)
def test_each_mark_changes_the_page(draw) -> None:
    page = blank_page((200, 200))
    draw(page, np.random.default_rng(1))
    assert darkened(blank_page((200, 200)), page).any()
    assert page.min() >= 0 and page.max() <= 1


def test_desks_and_sheets_look_like_surfaces() -> None:
    rng = np.random.default_rng(2)
    for name, make in surfaces.DESKS.items():
        surface = np.clip(make((100, 100), rng), 0, 1)
        assert surface.std() > 0.005, name  # a texture, not a flat fill
    outline = surfaces.sheet_outline((100, 120), rng)
    assert 0.2 < outline.mean() <= 1.0
    sheet = surfaces.paper((100, 120), rng)
    photo = surfaces.lay_on_desk(sheet, outline, rng)
    inside = outline > 0.99
    np.testing.assert_allclose(photo[inside], sheet[inside], atol=1e-5)


def test_pen_strokes_are_as_tall_as_asked_and_cropped_to_their_ink(mnist) -> None:
    rng = np.random.default_rng(0)
    for digit in mnist["x_test"][:20]:
        for height in (16.0, 40.0, 120.0):
            stroke = camera.pen_stroke(digit, height, rng)
            ink = stroke > 0.5
            assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()
            # slant and rotation make the written digit up to ~15% taller than asked
            assert 0.8 * height <= stroke.shape[0] <= 1.25 * height + 2


def test_a_wider_hand_writes_wider_digits_of_the_same_height(mnist) -> None:
    for digit in mnist["x_test"][:10]:
        plain, wide = (
            camera.pen_stroke(digit, 32.0, np.random.default_rng(3), width)
            for width in (1.0, camera.HAND_WIDTH[1])
        )
        assert abs(wide.shape[0] - plain.shape[0]) <= 2
        assert wide.shape[1] >= 1.2 * plain.shape[1] - 2


def test_a_slash_runs_longer_and_leans_further_than_the_digits_beside_it() -> None:
    """A "/" as tall as a written 1 and leaning as MNIST's ones do would be a 1: slashes reach
    above and below the digits and lean at least SLASH_LEAN[0]."""
    for seed in range(20):
        slash = camera._separator("/", 24.0, 2.0, np.random.default_rng(seed))
        height, width = slash.shape
        assert height >= camera.SLASH_HEIGHT[0] * 24 - 1
        assert width >= camera.SLASH_LEAN[0] * height - 1
        ink = slash > 0.5
        top, bottom = np.flatnonzero(ink[0]), np.flatnonzero(ink[-1])
        assert top.mean() > bottom.mean()  # from the top right to the bottom left


def test_a_written_string_reads_left_to_right_with_tight_gaps(mnist) -> None:
    images, labels = mnist["x_test"], mnist["y_test"]
    taken = iter(range(len(images)))

    def digits() -> tuple[int, np.ndarray, int]:
        row = next(taken)
        return row, images[row], int(labels[row])

    rng = np.random.default_rng(4)
    page = camera.Page(blank_page((120, 400)), np.ones((120, 400), np.float32))
    assert camera.write_string(page, digits, rng, 24.0, (40.0, 80.0), [8])
    (line,) = page.lines
    boxes = np.array(page.boxes)[list(line)]
    assert [page.classes[i] for i in line] == [int(labels[r]) for r in range(8)]
    assert (np.diff(boxes[:, 0]) > 0).all()  # reading order
    gaps = boxes[1:, 0] - boxes[:-1, 2]
    assert gaps.min() >= -3.5 and gaps.max() <= 6.5
    # nothing else may be written over it
    assert not camera.write_string(page, digits, rng, 24.0, (60.0, 85.0), [3])


@pytest.mark.parametrize("style", camera.CAMERA_STYLES)
def test_camera_scenes_have_consistent_truth(mnist, style: str) -> None:
    params = SceneParams(style, count=3, seed=2, size=SIZE)
    for scene in generate_scenes(mnist["x_test"], mnist["y_test"], params):
        truth = scene.truth
        assert scene.image.shape == (SIZE[1], SIZE[0], 3) and truth.file.endswith(".jpg")
        assert truth.box_kind == "ink"
        if style == "empty":
            assert len(truth.classes) == 0 and truth.lines == ()
            continue
        assert len(truth.classes) > 0
        assert (truth.classes == mnist["y_test"][truth.indices]).all()
        boxes = truth.boxes
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= SIZE[0]).all()
        assert (boxes[:, 3] <= SIZE[1]).all()
        assert sorted(i for line in truth.lines for i in line) == list(range(len(boxes)))
        heights = truth.digit_heights()
        low, high = camera.LARGE_HEIGHTS if style == "large" else camera.DIGIT_HEIGHTS
        high = min(high, SIZE[1] * 0.8) if style == "large" else high
        assert heights.min() >= 0.75 * min(low, high) and heights.max() <= 1.4 * high
        gray = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        for x1, y1, x2, y2 in boxes.round().astype(int):
            inside = gray[y1:y2, x1:x2]
            assert np.percentile(inside, 90) - inside.min() > 15  # ink in every box


def test_camera_backgrounds_come_from_pages_without_digits() -> None:
    windows = camera_windows(20, np.random.default_rng(0))
    assert windows.shape == (20, 28, 28) and windows.dtype == np.float32
    assert windows.min() >= 0 and windows.max() <= 1
    assert windows.reshape(20, -1).std(axis=1).max() > 0.02  # marks, not only blank paper


def test_zoomed_backgrounds_are_parts_of_large_digits(mnist) -> None:
    digits = mnist["x_train"][:100].astype(np.float32) / 255
    only = BackgroundMix(**{kind: float(kind == "zoomed") for kind in ALL_KINDS})
    patches, _ = make_background(50, np.random.default_rng(3), digits, only)
    ink = patches > 0.6
    inked = [p for p in ink if p.sum() > 20]
    assert len(inked) > 20

    # a part of a large digit runs out of the window; a whole digit (MNIST) never touches it
    def touches_edge(patch: np.ndarray) -> bool:
        return bool(patch[0].any() or patch[-1].any() or patch[:, 0].any() or patch[:, -1].any())

    assert np.mean([touches_edge(p) for p in inked]) > 0.8
    assert np.mean([touches_edge(d) for d in digits > 0.6]) < 0.05
