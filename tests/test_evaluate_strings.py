"""String figures: the edit-distance digit counts on hand-made cases, read lines assigned to
truth lines, count match, and `convdet evaluate` on a tiny COCO folder of MNIST digits."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from convdet.data.coco import load_coco_set, split_of
from convdet.measure.evaluate import Tally, evaluate_scene_set, format_report
from convdet.measure.matching import alignment_matches
from convdet.runtime.reading import group_lines

from convdet.cli import main


def row_of(text: str, x: float = 0.0, y: float = 0.0, step: float = 20.0) -> np.ndarray:
    """(N, 4) ink-like 16x24 boxes of `text`'s digits, `step` px apart from (x, y)."""
    return np.array([[x + step * k, y, x + step * k + 16, y + 24] for k in range(len(text))])


def digits(text: str) -> np.ndarray:
    return np.array([int(d) for d in text], dtype=np.int64)


def tally_of(truth: list[tuple[str, float, float]], read: list[tuple[str, float, float]]) -> Tally:
    """One image: truth lines and read strings given as (text, x, y) rows of digits; the read
    digits become detections, grouped into lines as evaluate_scene_set does."""
    truth_boxes = np.concatenate([row_of(text, x, y) for text, x, y in truth])
    truth_classes = np.concatenate([digits(text) for text, _, _ in truth])
    sizes = np.cumsum([0, *(len(text) for text, _, _ in truth)])
    truth_lines = [tuple(range(a, b)) for a, b in itertools.pairwise(sizes)]
    boxes = [row_of(text, x, y) for text, x, y in read]
    det_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    det_classes = np.concatenate([digits(text) for text, _, _ in read]) if read else []
    tally = Tally()
    tally.add_image(
        truth_boxes,
        truth_classes,
        det_boxes,
        np.asarray(det_classes, dtype=np.int64),
        np.full(len(det_boxes), 0.9),
        truth_lines,
        group_lines(det_boxes),
    )
    return tally


@pytest.mark.parametrize(
    ("read", "tp", "fp", "fn", "exact"),
    [
        pytest.param([("1897", 0, 0)], 4, 0, 0, 1, id="exact"),
        pytest.param([("197", 0, 0)], 3, 0, 1, 0, id="deletion"),  # the 8 missed, rest shifted
        pytest.param([("18597", 0, 0)], 4, 1, 0, 0, id="insertion"),
        pytest.param([("1807", 0, 0)], 3, 1, 1, 0, id="substitution"),
        pytest.param([], 0, 0, 4, 0, id="empty-read"),
        pytest.param([("18", 0, 0), ("97", 100, 0)], 2, 2, 2, 0, id="half-read-elsewhere"),
        pytest.param([("1897", 0, 0), ("55", 0, 200)], 4, 2, 0, 1, id="stray-line-is-fp"),
    ],
)
def test_string_digit_counts(read: list, tp: int, fp: int, fn: int, exact: int) -> None:
    tally = tally_of([("1897", 0, 0)], read)
    assert (tally.string_tp, tally.string_fp, tally.string_fn) == (tp, fp, fn)
    assert (tally.lines, tally.lines_exact, tally.string_exact) == (1, exact, float(exact))
    f1 = tally.string_figures()["f1"]
    assert f1 == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_a_number_read_as_two_lines_across_a_wide_gap_is_read_whole() -> None:
    # "12" and "05" written 60 px apart are one truth line but read as two lines.
    truth_boxes = np.concatenate([row_of("12"), row_of("05", x=96)])
    tally = Tally()
    read = group_lines(truth_boxes)
    assert len(read) == 2
    classes = digits("1205")
    tally.add_image(truth_boxes, classes, truth_boxes, classes, np.ones(4), [(0, 1, 2, 3)], read)
    assert (tally.string_tp, tally.string_fp, tally.string_fn, tally.lines_exact) == (4, 0, 0, 1)


def test_each_read_line_goes_to_the_truth_line_it_shares_digits_with() -> None:
    tally = tally_of([("42", 0, 0), ("317", 0, 60)], [("317", 0, 60), ("43", 0, 0)])
    assert (tally.lines, tally.lines_exact) == (2, 1)
    assert (tally.string_tp, tally.string_fp, tally.string_fn) == (4, 1, 1)


def test_alignment_prefers_most_matches_among_shortest_alignments() -> None:
    # "12" vs "21": two substitutions or delete-match-insert both take 2 edits; the latter
    # pairs one digit up.
    assert alignment_matches([1, 2], [2, 1]) == 1
    assert alignment_matches([1, 2, 3], [2, 3, 1]) == 2
    assert alignment_matches([], [1, 2]) == 0 and alignment_matches([1], []) == 0


def test_count_match_and_images_without_lines_add_no_string_counts() -> None:
    tally = Tally()
    boxes = row_of("12")
    tally.add_image(boxes, digits("12"), boxes, digits("17"), np.ones(2))  # no line truth
    tally.add_image(boxes, digits("12"), boxes[:1], digits("1"), np.ones(1))
    assert tally.count_match == 0.5
    assert tally.lines == 0 and tally.string_exact is None
    summary = tally.summary()
    assert summary["count_match"] == 0.5 and "string_f1" not in summary
    merged = tally_of([("12", 0, 0)], [("12", 0, 0)])
    merged.merge(tally)
    assert merged.images == 3 and merged.count_match == pytest.approx(2 / 3)
    assert merged.summary()["string_f1"] == 1.0 and merged.summary()["lines"] == 1


def ink_box(digit: np.ndarray, x: int, y: int) -> list[int]:
    """The COCO bbox (x, y, width, height) of a 28x28 digit's ink placed at (x, y)."""
    rows, cols = np.nonzero(digit > 40)
    return [x + int(cols.min()), y + int(rows.min()), int(np.ptp(cols)) + 1, int(np.ptp(rows)) + 1]


def names_in(split: str, count: int) -> list[str]:
    """`count` file names that the fixed split puts in `split`."""
    names = (f"amount_{k:03d}.png" for k in range(1000))
    return [name for name in names if split_of(name) == split][:count]


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory: pytest.TempPathFactory, mnist: dict[str, np.ndarray]) -> Path:
    """A COCO folder of three amounts written with MNIST test digits, light on dark, two in the
    dev split and one in test; images/ holds the files."""
    root = tmp_path_factory.mktemp("coco")
    (root / "images").mkdir()
    images, annotations = [], []
    picks = [[0, 1, 2], [3, 4], [5, 6, 7, 8]]  # MNIST test rows: 7 2 1 / 0 4 / 1 4 9 5
    names = names_in("dev", 2) + names_in("test", 1)
    for image_id, (name, rows) in enumerate(zip(names, picks, strict=True)):
        canvas = np.zeros((56, 24 + 26 * len(rows)), np.uint8)
        for k, row in enumerate(rows):
            digit = mnist["x_test"][row]
            x = 12 + 26 * k
            canvas[14:42, x : x + 28] = np.maximum(canvas[14:42, x : x + 28], digit)
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": image_id,
                    "category_id": int(mnist["y_test"][row]),
                    "bbox": ink_box(digit, x, 14),
                }
            )
        cv2.imwrite(str(root / "images" / name), canvas)
        images.append({"id": image_id, "file_name": name, "width": canvas.shape[1], "height": 56})
    categories = [{"id": d, "name": str(d)} for d in range(10)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def test_an_oracle_reads_every_coco_string_exactly(coco_dir: Path) -> None:
    scenes = load_coco_set(coco_dir, "all")
    assert sorted(text for truth in scenes.truths for text in truth.line_texts()) == [
        "04",
        "1495",
        "721",
    ]
    truths = iter(scenes.truths)

    def oracle(image: np.ndarray):
        truth = next(truths)
        return truth.boxes, truth.classes, np.ones(len(truth.classes))

    total = evaluate_scene_set(scenes, oracle)["all"]
    assert (total.lines, total.lines_exact, total.string_fn, total.count_match) == (3, 3, 0, 1.0)
    assert "strings" in format_report({"all": total})


def test_cli_evaluates_a_coco_folder_with_string_figures(
    coco_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "figures.json"
    assert main(["evaluate", str(coco_dir), "--json", str(out)]) == 0  # default split: dev
    printed = capsys.readouterr().out
    assert "split dev, 2 images" in printed
    strings = printed[printed.index("\nstrings") :].splitlines()
    row = next(line for line in strings if line.startswith("all "))
    assert row.split()[1:3] == ["2", "2"]  # images, lines
    figures = json.loads(out.read_text())
    total = figures["styles"]["all"]
    assert figures["scene_manifest"]["split"] == "dev" and total["images"] == 2
    assert total["lines"] == 2 and total["string_tp"] + total["string_fn"] == 5  # 721, 04
    assert 0.0 <= total["string_exact_match"] <= 1.0 and 0.0 <= total["string_f1"] <= 1.0
    assert total["count_match"] in (0.0, 0.5, 1.0)
    assert main(["evaluate", str(coco_dir), "--split", "test", "--json", str(tmp_path / "t")]) == 0
    held_out = json.loads((tmp_path / "t").read_text())["styles"]["all"]
    assert held_out["lines"] == 1 and held_out["string_tp"] + held_out["string_fn"] == 4  # 1495


def test_cli_split_errors_are_one_line(
    coco_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["evaluate", str(coco_dir), "--split", "train"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no images in split train (3 in all" in err
    assert main(["evaluate", str(coco_dir), "--split", "holdout"]) == 2
    assert "holdout" in capsys.readouterr().err
    scene_set = tmp_path / "scenes"
    scene_set.mkdir()
    (scene_set / "truth.jsonl").write_text("")
    assert main(["evaluate", str(scene_set), "--split", "dev"]) == 2
    assert "--split applies to COCO folders" in capsys.readouterr().err


def test_cli_scene_set_with_lines_and_ink_boxes_gets_string_figures_not_isolated(
    coco_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    scene_set = tmp_path / "strings"
    scene_set.mkdir()
    with open(scene_set / "truth.jsonl", "w", encoding="utf-8") as truth_file:
        for truth in load_coco_set(coco_dir, "all").truths:
            (scene_set / Path(truth.file).name).write_bytes((coco_dir / truth.file).read_bytes())
            record = {**truth.to_record(), "file": Path(truth.file).name, "style": "strings"}
            truth_file.write(json.dumps({**record, "box_kind": "ink"}) + "\n")
    out = tmp_path / "figures.json"
    assert main(["evaluate", str(scene_set), "--json", str(out)]) == 0
    assert "\nstrings " in capsys.readouterr().out
    total = json.loads(out.read_text())["styles"]["all"]
    assert total["lines"] == 3 and total["string_tp"] + total["string_fn"] == 9
    assert "isolated_accuracy" not in total and "grid_accuracy" in total


def test_a_mixed_set_keeps_the_isolated_readout_for_its_mnist_frames(
    mnist: dict[str, np.ndarray], tmp_path: Path
) -> None:
    from convdet.data.scenes import SceneParams, generate_scenes, write_scene_set

    scenes = [
        scene
        for style in ("mnist", "strings")
        for scene in generate_scenes(
            mnist["x_test"], mnist["y_test"], SceneParams(style, count=1, seed=3, size=(160, 120))
        )
    ]
    write_scene_set(tmp_path / "mixed", iter(scenes), {"seed": 3})
    out = tmp_path / "figures.json"
    assert main(["evaluate", str(tmp_path / "mixed"), "--json", str(out)]) == 0
    styles = json.loads(out.read_text())["styles"]
    assert styles["mnist"]["isolated_accuracy"] is not None
    assert "isolated_accuracy" not in styles["strings"] and "lines" in styles["strings"]
