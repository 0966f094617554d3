"""The evaluation maths on hand-made cases, the scene-set loop with a stand-in detector, the CLI."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from convdet.data.scenes import SceneParams, generate_scenes, load_scene_set, write_scene_set
from convdet.measure.evaluate import (
    Tally,
    detector_functions,
    evaluate_scene_set,
    format_report,
)
from convdet.measure.matching import match_greedy
from convdet.runtime.grid import GridGeometry

from convdet.cli import main

# Two 28-px truth frames: a 3 at (0..28, 0..28) and a 7 at (100..128, 0..28).
TRUTH_BOXES = np.array([[0, 0, 28, 28], [100, 0, 128, 28]], dtype=float)
TRUTH_CLASSES = np.array([3, 7])


def tally_of(boxes: list[list[float]], classes: list[int], scores: list[float]) -> Tally:
    """A tally of the two-digit truth image against the given detections."""
    tally = Tally()
    tally.add_image(
        TRUTH_BOXES,
        TRUTH_CLASSES,
        np.array(boxes, dtype=float).reshape(-1, 4),
        np.array(classes, dtype=np.int64),
        np.array(scores, dtype=float),
    )
    return tally


@pytest.mark.parametrize(
    ("boxes", "classes", "scores", "tp", "fp", "fn"),
    [
        pytest.param([[1, 1, 29, 29], [99, 0, 127, 28]], [3, 7], [0.9, 0.8], 2, 0, 0, id="perfect"),
        pytest.param([[1, 1, 29, 29]], [3], [0.9], 1, 0, 1, id="a-miss"),
        pytest.param(
            [[1, 1, 29, 29], [99, 0, 127, 28]], [3, 1], [0.9, 0.8], 1, 1, 1, id="wrong-class"
        ),
        pytest.param(
            [[1, 1, 29, 29], [0, 2, 28, 30], [99, 0, 127, 28]],
            [3, 3, 7],
            [0.9, 0.95, 0.8],
            2,
            1,
            0,
            id="duplicate",
        ),
        pytest.param([[50, 50, 78, 78]], [3], [0.99], 0, 1, 2, id="off-target"),
        pytest.param([], [], [], 0, 0, 2, id="no-detections"),
    ],
)
def test_counts(boxes, classes, scores, tp, fp, fn) -> None:
    tally = tally_of(boxes, classes, scores)
    assert (tally.tp.sum(), tally.fp.sum(), tally.fn.sum()) == (tp, fp, fn)
    assert tally.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_perfect_scores_one_and_zero_localization_error() -> None:
    tally = tally_of([[0, 0, 28, 28], [100, 0, 128, 28]], [3, 7], [0.9, 0.8])
    assert (tally.precision, tally.recall, tally.f1) == (1.0, 1.0, 1.0)
    assert tally.loc_error == 0.0


def test_wrong_class_lands_in_confusion_not_in_true_positives() -> None:
    tally = tally_of([[1, 1, 29, 29], [99, 0, 127, 28]], [3, 1], [0.9, 0.8])
    assert tally.confusion[7, 1] == 1 and tally.confusion[3, 3] == 1
    assert tally.confusion.sum() == 2
    per_class = tally.per_class()
    assert per_class[1]["precision"] == 0.0 and per_class[7]["recall"] == 0.0
    assert per_class[3]["f1"] == 1.0
    # Both detections are off by one pixel in x and the first also in y.
    assert tally.loc_error == pytest.approx((np.sqrt(2) + 1) / 2)


def test_miss_and_stray_detection_use_the_none_row_and_column() -> None:
    tally = tally_of([[50, 50, 78, 78]], [3], [0.99])
    none = tally.num_classes
    assert tally.confusion[none, 3] == 1
    assert tally.confusion[3, none] == 1 and tally.confusion[7, none] == 1
    assert tally.loc_error is None


def test_duplicate_higher_score_wins_the_match() -> None:
    boxes = np.array([[4, 0, 32, 28], [0, 0, 28, 28]], dtype=float)
    matched = match_greedy(
        TRUTH_BOXES, TRUTH_CLASSES, boxes, np.array([3, 3]), np.array([0.6, 0.7])
    )
    assert matched.tolist() == [-1, 0]


def test_empty_image() -> None:
    empty = np.zeros((0, 4))
    tally = Tally()
    tally.add_image(empty, np.zeros(0, int), empty, np.zeros(0, int), np.zeros(0))
    assert (tally.precision, tally.recall, tally.f1) == (1.0, 1.0, 1.0)
    tally.add_image(empty, np.zeros(0, int), np.array([[0, 0, 28, 28]]), np.array([5]), [0.9])
    assert (tally.tp.sum(), tally.fp.sum(), tally.fn.sum()) == (0, 1, 0)
    assert tally.f1 == 0.0 and tally.images == 2


# The 3's frame spans x 0..28 (centre 14); grown by 30% it spans 14 -+ 18.2 = -4.2..32.2.
@pytest.mark.parametrize(
    ("centre_x", "matches"),
    [(32.2, True), (32.19, True), (32.21, False), (-4.2, True), (-4.21, False)],
)
def test_grown_box_edge(centre_x: float, matches: bool) -> None:
    box = np.array([[centre_x - 10, 4, centre_x + 10, 24]])
    matched = match_greedy(TRUTH_BOXES, TRUTH_CLASSES, box, np.array([3]), np.array([0.9]))
    assert bool(matched[0] == 0) is matches


def test_nearest_truth_wins_when_grown_boxes_overlap() -> None:
    truth = np.array([[0, 0, 28, 28], [30, 0, 58, 28]], dtype=float)
    detection = np.array([[20, 0, 48, 28]], dtype=float)  # centre x 34: inside both grown boxes
    matched = match_greedy(truth, np.array([1, 1]), detection, np.array([1]), np.array([0.9]))
    assert matched.tolist() == [1]


def test_class_out_of_range_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"0\.\.9"):
        tally_of([[0, 0, 28, 28]], [10], [0.9])


def test_readout_accuracy_counts_background_as_wrong() -> None:
    tally = Tally()
    assert tally.accuracy("isolated") is None
    tally.add_readout("isolated", np.array([3, 7, 7, 1]), np.array([3, 7, 10, 2]))
    assert tally.accuracy("isolated") == 0.5 and tally.accuracy("isolated", 7) == 0.5
    assert tally.per_class()[7]["isolated_accuracy"] == 0.5
    assert tally.per_class()[0]["isolated_accuracy"] is None  # no 0 among the digits
    other = Tally()
    other.add_readout("isolated", np.array([0]), np.array([0]))
    tally.merge(other)
    assert tally.accuracy("isolated") == 0.6 and tally.summary()["isolated_accuracy"] == 0.6


class StubDetector:
    """Stands in for runtime.Detector: metadata with a classifier cell, a fixed Result."""

    info = SimpleNamespace(classifier_cell=1)
    scales = (1.0,)

    def __init__(self, result: SimpleNamespace) -> None:
        self.result = result

    def __call__(self, image: np.ndarray) -> SimpleNamespace:
        return self.result


def test_grid_readout_reads_the_cell_under_each_truth_centre() -> None:
    # Cells are centred at 8 * i + 4; the cell at row 4, col 2 (centre x 20, y 36) says 7.
    scores = np.zeros((6, 5, 11), np.float32)
    scores[..., 1] = 0.6
    scores[4, 2, 7] = 0.9
    nothing = SimpleNamespace(xyxy=np.zeros((0, 4)), class_id=np.zeros(0), score=np.zeros(0))
    result = SimpleNamespace(
        scores=scores,
        geometry=GridGeometry(stride=8, cell_offset=4.0, window=28),
        background=10,
        detections=nothing,
    )
    detect, readouts = detector_functions(StubDetector(result))
    image = np.zeros((48, 48), np.uint8)  # columns 5..: beyond the 5-column grid
    detect(image)
    boxes = np.array([[6, 22, 34, 50], [30, 22, 58, 50], [0, 0, 28, 28]], dtype=float)
    assert readouts["grid"](image, boxes).tolist() == [7, 10, 1]


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory, mnist: dict[str, np.ndarray]) -> Path:
    """A tiny scene set: 2 images per style."""
    out = tmp_path_factory.mktemp("scenes")
    scenes = (
        scene
        for style in ("mnist", "paper", "multiscale")
        for scene in generate_scenes(
            mnist["x_test"], mnist["y_test"], SceneParams(style, 2, seed=3, size=(320, 240))
        )
    )
    write_scene_set(out, scenes, {"seed": 3})
    return out


def test_oracle_detector_scores_perfect_and_a_blind_one_zero(scene_dir: Path) -> None:
    scenes = load_scene_set(scene_dir)
    in_order = iter(scenes.truths)

    def oracle(image: np.ndarray):
        truth = next(in_order)
        assert image.shape[:2] == (truth.height, truth.width)
        return truth.boxes, truth.classes, np.ones(len(truth.classes))

    tallies = evaluate_scene_set(
        scenes, oracle, {"isolated": lambda image, boxes: np.full(len(boxes), 10)}
    )
    assert set(tallies) == {"mnist", "paper", "multiscale", "all"}
    assert all(t.f1 == 1.0 for t in tallies.values())
    assert tallies["all"].images == 6
    assert tallies["all"].accuracy("isolated") == 0.0

    blind = evaluate_scene_set(scenes, lambda image: (np.zeros((0, 4)), np.zeros(0), np.zeros(0)))
    assert blind["all"].recall == 0.0 and blind["all"].precision == 1.0
    assert blind["all"].accuracy("isolated") is None  # not measured without the readout
    report = format_report(blind)
    assert "multiscale" in report and "confusion" in report


def test_cli_bad_path_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err


def test_cli_folder_without_truth_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truth.jsonl" in err


def test_cli_bad_truth_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "truth.jsonl").write_text(json.dumps({"file": "a.png"}) + "\n")
    assert main(["evaluate", str(broken)]) == 2
    assert "truth.jsonl:1" in capsys.readouterr().err


# F1 floors of the shipped default model on the small scene set below (the first 12 scenes
# per style of `convdet scenes --seed 0`), one number per style, a little below the measured
# figures: the scene-fine-tuned deep.onnx (conf 0.3) scored mnist 0.970, paper 0.976 and
# multiscale 0.971.
FLOORS = {"mnist": 0.95, "paper": 0.95, "multiscale": 0.94}


@pytest.fixture(scope="module")
def default_model_tallies(tmp_path_factory: pytest.TempPathFactory, mnist: dict) -> dict:
    """The shipped default model on 12 scenes per style (about 210 digits each)."""
    from convdet.runtime.detector import Detector

    out = tmp_path_factory.mktemp("floor")
    scenes = (
        scene
        for style in FLOORS
        for scene in generate_scenes(mnist["x_test"], mnist["y_test"], SceneParams(style, 12))
    )
    write_scene_set(out, scenes, {})
    return evaluate_scene_set(load_scene_set(out), *detector_functions(Detector()))


@pytest.mark.parametrize("style", FLOORS)
def test_default_model_f1_floor(default_model_tallies: dict, style: str) -> None:
    tally = default_model_tallies[style]
    assert tally.tp.sum() + tally.fn.sum() > 150
    assert tally.f1 >= FLOORS[style], f"{style}: F1 {tally.f1:.4f} < floor {FLOORS[style]}"


def test_without_a_terminal_evaluate_logs_progress_and_keeps_its_report(
    scene_dir: Path, model: Path, capsys: pytest.CaptureFixture
) -> None:
    command = ["evaluate", str(scene_dir), "--model", str(model)]
    assert main([*command, "--progress-every", "0"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert main([*command, "--progress-every", "0.000001"]) == 0
    logged = capsys.readouterr()
    assert logged.out == quiet.out  # the report on stdout, unchanged
    progress = r"convdet evaluate: ([1-6])/6 scenes, [\d.]+ scenes/s, ETA \d+:\d\d"
    done = [int(re.fullmatch(progress, line)[1]) for line in logged.err.splitlines()]
    assert done == list(range(1, 7))


def test_on_a_terminal_evaluate_shows_a_progress_bar(
    scene_dir: Path, model: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["evaluate", str(scene_dir), "--model", str(model)]) == 0
    captured = capsys.readouterr()
    assert "100%" in captured.err and "6/6" in captured.err and "scene/s" in captured.err
    assert "convdet evaluate:" not in captured.err and captured.out.startswith("model ")
