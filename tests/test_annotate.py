"""Annotators on a hand-made Result: class colours where the cells fire, distinct colours with
readable labels kept inside the frame, the legend and stats beside the frame, a golden image."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from convdet.runtime.annotate import (
    PANEL_COLOR,
    BoxAnnotator,
    GridAnnotator,
    HeatmapAnnotator,
    LegendAnnotator,
    LinesAnnotator,
    StatsAnnotator,
    as_bgr,
    class_colors,
    contrast_ratio,
    label_size,
    put_label,
)
from convdet.runtime.detections import Detections
from convdet.runtime.detector import Result
from convdet.runtime.grid import GridGeometry, round_up
from convdet.runtime.reading import read_lines

GOLDEN = Path(__file__).parent / "data" / "annotated_golden.png"
LABELS = tuple([*(str(k) for k in range(10)), "background"])
BACKGROUND = 10


def synthetic_result(shape: tuple[int, int] = (120, 160)) -> Result:
    """A Result as the detector would give for digits 3 (cells (4, 5), (4, 6)) and 8 (cell
    (9, 14)) on a frame of `shape`, for a stride-8 model with cells centred at 8*i + 4."""
    geometry = GridGeometry(stride=8, cell_offset=4.0, window=28)
    rows, cols = (round_up(side, geometry.stride) // geometry.stride for side in shape)
    cell_class = np.full((rows, cols), BACKGROUND, np.int64)
    cell_class[4, 5:7] = 3
    cell_class[9, 14] = 8
    scores = np.eye(len(LABELS), dtype=np.float32)[cell_class]
    detections = Detections(
        geometry.cell_boxes(np.array([4, 9]), np.array([5, 14])), np.array([3, 8]), [0.97, 0.88]
    )
    return Result(
        scores=scores,
        cell_class=cell_class,
        detections=detections,
        geometry=geometry,
        labels=LABELS,
        background=BACKGROUND,
        frame_shape=shape,
        inverted=False,
        timings={"preprocess": 1.0, "infer": 5.0, "decode": 0.5},
    )


def frame(shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    return np.full((*shape, 3), 60, np.uint8)


def test_class_colours_are_distinct_and_background_is_grey() -> None:
    colors = class_colors(11, background=BACKGROUND)
    assert colors.shape == (11, 3) and colors.dtype == np.uint8
    assert tuple(colors[BACKGROUND]) == (128, 128, 128)
    lab = cv2.cvtColor(colors[None, :10].astype(np.float32) / 255, cv2.COLOR_BGR2Lab)[0]
    distance = np.linalg.norm(lab[:, None] - lab[None, :], axis=2) + np.eye(10) * 1000
    assert distance.min() >= 25, f"classes {np.unravel_index(distance.argmin(), distance.shape)}"
    np.testing.assert_array_equal(class_colors(12)[10:], class_colors(2))  # repeats after ten


@pytest.mark.parametrize("class_id", range(10))
def test_every_class_label_reads_at_wcag_contrast(class_id: int) -> None:
    """The tag BoxAnnotator draws: its text (the extreme pixels) against its fill >= 4.5:1."""
    detections = Detections(np.array([[60.0, 60, 80, 90]]), [class_id], [0.97])
    result = Result(**{**synthetic_result().__dict__, "detections": detections})
    out = BoxAnnotator().annotate(frame(), result)
    fill = tuple(int(c) for c in class_colors(11)[class_id])
    width, height = label_size("0 0.97")
    tag = out[60 - height : 60, 60 : 60 + width].reshape(-1, 3)
    assert (tag == fill).all(axis=1).mean() > 0.5, "the tag is not filled with the class colour"
    inks = {tuple(int(c) for c in pixel) for pixel in tag} & {(0, 0, 0), (255, 255, 255)}
    assert len(inks) == 1, f"text in {inks}"
    assert contrast_ratio(inks.pop(), fill) >= 4.5


def test_labels_stay_inside_the_frame() -> None:
    out = frame()
    put_label(out, "8 0.99", (150, 110), (255, 255, 255))  # would stick out right and below
    width, height = label_size("8 0.99")
    rows, cols = np.nonzero((out != 60).any(axis=2))
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (160 - width, 159, 120 - height, 119)
    assert (out[120 - height :, 160 - width :] == 255).mean() > 0.5  # filled: the text is on it
    # A box at the top edge gets its tag below it, so the digit stays visible.
    detections = Detections(np.array([[100.0, 0, 130, 30]]), [8], [0.9])
    result = Result(**{**synthetic_result().__dict__, "detections": detections})
    tagged = BoxAnnotator(thickness=1).annotate(frame(), result)
    assert (tagged[2:29, 102:129] == 60).all()  # inside the box: untouched
    assert (tagged[31 : 31 + height, 100 : 100 + width] != 60).all(axis=2).mean() > 0.9


def test_grid_colours_cells_where_digits_fire() -> None:
    result = synthetic_result()
    out = GridAnnotator(alpha=0.5).annotate(frame(), result)
    colors = class_colors(11).astype(int)
    # Cell (4, 5) covers pixels y 32..39, x 40..47 (centre 8*i + 4, tiles 8 px); (4, 6) x 48..55.
    expected_3 = (60 + colors[3]) // 2
    for inside in (out[33:40, 41:48], out[33:40, 49:56]):
        np.testing.assert_allclose(inside, np.broadcast_to(expected_3, inside.shape), atol=1)
    expected_8 = (60 + colors[8]) // 2
    inside = out[73:80, 113:120]
    np.testing.assert_allclose(inside, np.broadcast_to(expected_8, inside.shape), atol=1)
    assert (out[0:30] == 60).all()  # background is transparent
    # Cell edges visible: the first row/column of a coloured tile is darker than its inside.
    assert (out[32, 42] < out[34, 42]).any()
    assert (out[34, 48] < out[34, 50]).any()  # edge between the two cells of the same class


def test_grid_faint_background_and_scale() -> None:
    result = synthetic_result()
    faint = GridAnnotator(background_alpha=0.2).annotate(frame(), result)
    assert not (faint[0:30] == 60).all()
    half = Result(**{**result.__dict__, "geometry": GridGeometry(8, 4.0, 28, scale=2.0)})
    out = GridAnnotator(edges=False).annotate(frame((60, 80)), half)
    # At scale 2 the tiles are 4 px: cell (4, 5) covers y 16..19, x 20..23.
    assert (out[16:20, 20:24] != 60).any(axis=2).all() and (out[16:20, 16:20] == 60).all()


def test_heatmap_weights_each_cells_digit_colour_by_its_digit_score() -> None:
    """A sure digit cell shows its class colour at `alpha`, an unsure one (P(background) 0.75,
    the rest on 9) a quarter of that in 9's colour, even below --conf; background stays the
    frame exactly, never tinted by the background class's grey."""
    result = synthetic_result()
    scores = result.scores.copy()
    scores[4, 8, BACKGROUND], scores[4, 8, 9] = 0.75, 0.25  # cell (4, 8): pixels x 64..71
    result = Result(**{**result.__dict__, "scores": scores})
    out = HeatmapAnnotator(alpha=0.6).annotate(frame(), result)
    colors = class_colors(11).astype(float)
    sure = out[33:40, 41:48].reshape(-1, 3)
    np.testing.assert_allclose(
        sure, np.broadcast_to(60 + (colors[3] - 60) * 0.6, sure.shape), atol=1
    )
    unsure = out[33:40, 65:72].reshape(-1, 3)
    expected = 60 + (colors[9] - 60) * 0.6 * 0.25
    np.testing.assert_allclose(unsure, np.broadcast_to(expected, unsure.shape), atol=1)
    untouched = np.ones(out.shape[:2], bool)
    untouched[32:40, 40:56] = untouched[32:40, 64:72] = untouched[72:80, 112:120] = False
    assert (out[untouched] == 60).all()


def test_annotators_convert_gray_and_float_frames() -> None:
    result = synthetic_result()
    gray = np.full((120, 160), 60, np.uint8)
    out = GridAnnotator().annotate(gray, result)
    assert out.shape == (120, 160, 3) and out.dtype == np.uint8
    assert as_bgr(np.full((2, 2, 4), 0.5, np.float32)).tolist() == [[[127] * 3] * 2] * 2
    bgr = frame()
    assert as_bgr(bgr) is bgr  # BGR uint8 frames are drawn on in place


def test_boxes_in_class_colour() -> None:
    out = BoxAnnotator(thickness=1).annotate(frame(), synthetic_result())
    colors = class_colors(11)
    # Box of the 3: x 30..58, y 22..50 (the cell's 28 px window); its bottom edge at y = 50.
    assert (out[50, 35:55] == colors[3]).all()


def test_boxes_draw_only_the_detections_given() -> None:
    """`detections=` draws a filtered subset: the 8 (score 0.88) left out leaves its box and tag
    area as it was, the 3 kept is drawn exactly as in a Result holding it alone."""
    result = synthetic_result()
    kept = result.detections[result.detections.score > 0.9]
    out = BoxAnnotator(thickness=1).annotate(frame(), result, detections=kept)
    height = label_size("8 0.88")[1]
    assert (out[62 - height - 2 :, 96:] == 60).all()  # the 8's box (x 102..130, y 62..90), tag
    alone = Result(**{**result.__dict__, "detections": kept})
    np.testing.assert_array_equal(out, BoxAnnotator(thickness=1).annotate(frame(), alone))
    assert (out[50, 35:55] == class_colors(11)[3]).all()  # the 3's bottom edge


def test_boxes_draw_detections_without_a_result() -> None:
    """Detections alone (no Result): tags name each class by its id, the digit itself."""
    result = synthetic_result()
    out = BoxAnnotator().annotate(frame(), detections=result.detections[[1]])
    only_8 = Result(**{**result.__dict__, "detections": result.detections[[1]]})
    np.testing.assert_array_equal(out, BoxAnnotator().annotate(frame(), only_8))
    assert (out[:, :96] == 60).all()  # the 3 (x 30..58, its tag from x 30) left out
    untouched = BoxAnnotator().annotate(frame(), detections=Detections.empty())
    assert (untouched == 60).all()
    with pytest.raises(TypeError, match="expected a Result or detections"):
        BoxAnnotator().annotate(frame())


def string_result(shape: tuple[int, int], boxes: list[list[float]]) -> Result:
    """The synthetic result with detections "1", "2", "3" at `boxes`, read into lines."""
    detections = Detections(np.array(boxes, dtype=float), [1, 2, 3], [0.9, 0.8, 0.7])
    lines = read_lines(detections, LABELS)
    return Result(**{**synthetic_result(shape).__dict__, "detections": detections, "lines": lines})


def test_lines_text_is_drawn_beside_the_line_not_over_its_digits() -> None:
    boxes = [[20, 40, 38, 64], [40, 40, 58, 64], [60, 41, 78, 65]]  # "123", one line
    result = string_result((120, 160), boxes)
    assert [line.text for line in result.lines] == ["123"]
    out = LinesAnnotator().annotate(frame(), result)
    changed = (out != 60).any(axis=2)
    assert changed[67:90, 20:60].sum() > 100  # the label, below the line's box (y2 = 65)
    assert not changed[41:64, 21:77].any()  # inside the box: the digits stay as they were
    assert changed[40, 20:78].all()  # the box outline
    # A line at the bottom of the frame gets its label above.
    low = LinesAnnotator().annotate(
        frame(), string_result((120, 160), [[b[0], b[1] + 54, b[2], b[3] + 54] for b in boxes])
    )
    assert (low[70:93, 20:60] != 60).any(axis=2).sum() > 100
    assert not (low[95:118, 21:77] != 60).any()


def test_lines_are_read_from_the_detections_given() -> None:
    """`detections=` without the "3" (score 0.7): the line drawn is "12", its outline ending at
    the "2" (x2 = 58), nothing drawn where the "3" was; without a Result, the same."""
    boxes = [[20, 40, 38, 64], [40, 40, 58, 64], [60, 41, 78, 65]]
    result = string_result((120, 160), boxes)
    kept = result.detections[result.detections.score > 0.75]
    out = LinesAnnotator().annotate(frame(), result, detections=kept)
    changed = (out != 60).any(axis=2)
    assert changed[40, 20:59].all()  # the outline of "12"
    assert not changed[:, 60:].any()  # the "3" (x 60..78) and its wider outline: not drawn
    label = label_size("12", 0.6)[0]
    assert changed[67:90, 20 : 20 + label].any(axis=0).mean() > 0.5  # the label "12" below
    np.testing.assert_array_equal(out, LinesAnnotator().annotate(frame(), detections=kept))
    alone = Result(**{**result.__dict__, "detections": kept, "lines": read_lines(kept, LABELS)})
    np.testing.assert_array_equal(out, LinesAnnotator().annotate(frame(), alone))


def test_lines_annotator_without_detections_and_single_digits_draws_nothing() -> None:
    nothing = Detections.empty()
    lines = read_lines(nothing, LABELS)
    empty = Result(**{**synthetic_result().__dict__, "detections": nothing, "lines": lines})
    assert (LinesAnnotator().annotate(frame(), empty) == 60).all()
    single = string_result((120, 160), [[20, 10, 38, 34], [20, 60, 38, 84], [40, 60, 58, 84]])
    assert [line.text for line in single.lines] == ["1", "23"]
    out = LinesAnnotator().annotate(frame(), single)
    assert (out[:50] == 60).all() and (out[60:] != 60).any()
    assert (LinesAnnotator(min_digits=1).annotate(frame(), single)[:50] != 60).any()


def digit_colours(image: np.ndarray) -> set[tuple[int, ...]]:
    """The digit class colours (0-9) found in `image`."""
    found = {tuple(c) for c in image.reshape(-1, 3)}
    return {tuple(c) for c in class_colors(10)} & found


def test_legend_is_a_strip_beside_the_frame_covering_nothing() -> None:
    original = frame((240, 320))
    original[100:140, 300:320] = 200  # something in the top-right corner of the frame
    out = LegendAnnotator().annotate(original.copy(), synthetic_result((240, 320)))
    assert out.shape[0] == 240 and out.shape[1] > 320
    np.testing.assert_array_equal(out[:, :320], original)  # the frame itself untouched
    strip = out[:, 320:]
    assert len(digit_colours(strip)) == 10
    assert (strip[4 + 10 * 18 :] == PANEL_COLOR).all()  # ten rows: no background entry
    assert tuple(strip[-1, -1]) == PANEL_COLOR
    # A frame too short for ten rows gets the legend in columns, every class still in it.
    short = LegendAnnotator().annotate(frame((60, 80)), synthetic_result())
    assert short.shape[0] == 60 and len(digit_colours(short[:, 80:])) == 10


def test_legend_in_a_corner_stays_in_the_frame() -> None:
    out = LegendAnnotator(corner="bottom-left").annotate(
        frame((240, 320)), synthetic_result((240, 320))
    )
    assert out.shape == (240, 320, 3) and len(digit_colours(out[:, :160])) == 10
    with pytest.raises(ValueError, match="corner: expected"):
        LegendAnnotator(corner="middle")


def test_stats_bar_goes_below_the_frame_and_leaves_it_alone() -> None:
    original = frame()
    out = StatsAnnotator(bar=True).annotate(original, synthetic_result())
    assert out.shape[0] > 120 and out.shape[1] == 160
    assert (original == 60).all() and (out[:120] == 60).all()
    assert (out[120:] != PANEL_COLOR).any(axis=2).any()  # the text


def test_stats_fps_latency_and_dropped() -> None:
    ticks = iter([0.0, 0.1, 0.2])
    stats = StatsAnnotator(smoothing=0.5, clock=lambda: next(ticks))
    stats.dropped = 3
    result = synthetic_result()
    first = stats.annotate(frame(), result)
    assert stats.fps is None
    assert (first[:60, :100] != 60).any()
    stats.annotate(frame(), result)
    stats.annotate(frame(), result)
    assert stats.fps == pytest.approx(10.0)


def test_golden_annotated_image() -> None:
    """All annotators on the synthetic result vs tests/data/annotated_golden.png (regenerate with
    CONVDET_UPDATE_GOLDEN=1 after an intended drawing change, and look at the image)."""
    result = synthetic_result((240, 320))
    out = frame((240, 320))
    for annotator in (GridAnnotator(), BoxAnnotator(), LegendAnnotator()):
        out = annotator.annotate(out, result)
    if os.environ.get("CONVDET_UPDATE_GOLDEN") == "1":
        cv2.imwrite(str(GOLDEN), out)
    golden = cv2.imread(str(GOLDEN))
    assert golden is not None, f"missing {GOLDEN}"
    # OpenCV releases measure text a pixel apart (the legend strip 40 px wide in 5.0, 41 in 5.1,
    # the golden's OpenCV): the width may differ by 2 px, and the pixels both images have must match
    assert out.shape[0] == golden.shape[0] and abs(out.shape[1] - golden.shape[1]) <= 2
    width = min(out.shape[1], golden.shape[1])
    difference = np.abs(out[:, :width].astype(int) - golden[:, :width].astype(int))
    assert difference.mean() < 1.0, f"mean abs diff {difference.mean():.2f} vs {GOLDEN.name}"
    assert (difference.max(axis=2) > 32).mean() < 0.01, "more than 1% of pixels differ by > 32"
