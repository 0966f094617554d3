"""The runtime pipeline driven from Python, no CLI: the records `convdet detect --json` writes,
bounded queues between its stages, and failures of a sink, a source or the detector."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from convdet.runtime.errors import ConvdetError
from convdet.runtime.options import ModelOptions, OutputOptions, PipelineOptions, load_detector
from convdet.runtime.outputs import Outputs
from convdet.runtime.pipeline import run_pipeline, run_stages
from convdet.runtime.records import Outcome, analyse, record_for
from convdet.runtime.shipped import sample_path
from convdet.runtime.sources import Frame, resolve_sources
from convdet.runtime.targets import plan_targets

from convdet.cli import main


class Collected:
    """A Reporter keeping what the pipeline reports."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.failures: list[tuple[str, str]] = []
        self.outcomes: list[Outcome] = []

    def message(self, text: str) -> None:
        self.messages.append(text)

    def failure(self, what: str, why: str) -> None:
        self.failures.append((what, why))

    def recorded(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def step(self) -> None:
        pass


def unstamped(path: Path) -> list[dict]:
    """The records of a JSON Lines file without the run's `run` and `time`."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [{k: v for k, v in row.items() if k not in ("run", "time")} for row in rows]


def samples_with_a_bad_file(folder: Path) -> Path:
    """The shipped sample frames and a file that is no image, in `folder`."""
    folder.mkdir()
    for name in ("digits.png", "paper.jpg", "multiscale.png", "camera.jpg"):
        shutil.copy(sample_path(name), folder / name)
    (folder / "bad.png").write_bytes(b"not an image")
    return folder


@pytest.mark.parametrize("io_threads", [None, 0])
def test_the_pipeline_writes_the_records_detect_writes(tmp_path, model, io_threads) -> None:
    folder = samples_with_a_bad_file(tmp_path / "in")
    cli = tmp_path / "cli.jsonl"
    assert main(["detect", str(folder), "--model", str(model), "--json", str(cli)]) == 1
    ours = tmp_path / "ours.jsonl"
    options = PipelineOptions(
        model=ModelOptions(model=str(model)),
        outputs=OutputOptions(json=str(ours)),
        io_threads=io_threads,
    )
    detector = load_detector(options.model)
    source = resolve_sources([str(folder)], workers=0 if io_threads == 0 else 2)
    reporter = Collected()
    targets = plan_targets(options.outputs, [str(folder)], source)
    with source, Outputs(options, targets, source, detector.labels, reporter) as outputs:
        run_pipeline(source, detector, outputs, reporter, options)
    expected = unstamped(cli)
    assert unstamped(ours) == expected
    assert [outcome.record for outcome in reporter.outcomes] == expected
    assert [row["error"] for row in expected if "error" in row] == [
        "not an image (unrecognised file header)"
    ]
    assert [record_for(detector, row["source"], options) for row in expected] == expected


def test_record_for_a_frame_keeps_the_classes_asked_for(model) -> None:
    import cv2

    detector = load_detector(ModelOptions(model=str(model)))
    frame = Frame("digits.png", None, cv2.imread(str(sample_path())))
    every = record_for(detector, frame, PipelineOptions())
    assert (every["source"], every["width"], every["height"]) == ("digits.png", 640, 480)
    kept = every["detections"][0]["class_id"]
    only = record_for(detector, frame, PipelineOptions(model=ModelOptions(classes=(kept,))))
    assert only["detections"] and {d["class_id"] for d in only["detections"]} == {kept}
    assert len(only["detections"]) < len(every["detections"])


class Refusing:
    """A detector that refuses frame "refused" with a typed error and hits a bug on "bug"."""

    labels = ("0", "1")

    def __call__(self, image: np.ndarray) -> object:
        if image.shape == (1, 1):
            raise ConvdetError("refused, as the runtime says it")
        raise ValueError("a bug, not a bad frame")


def test_only_typed_errors_are_a_frames_failure() -> None:
    refused = analyse(Refusing(), Frame("refused", None, np.zeros((1, 1), np.uint8)))
    assert refused.result is None and refused.record == {
        "source": "refused",
        "frame": None,
        "error": "refused, as the runtime says it",
    }
    with pytest.raises(ValueError, match="a bug"):
        analyse(Refusing(), Frame("bug", None, np.zeros((2, 2), np.uint8)))


def test_a_frame_the_detector_cannot_take_is_that_frames_failure(model) -> None:
    detector = load_detector(ModelOptions(model=str(model)))
    frame = Frame("signed.tiff", None, np.zeros((48, 64), np.int16))  # as OpenCV decodes it
    assert record_for(detector, frame, PipelineOptions()) == {
        "source": "signed.tiff",
        "frame": None,
        "error": "frame: expected dtype uint8, uint16 or float, got int16",
    }


class Counted:
    """Items 0..count-1, counting how many were taken and whether the iteration was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.taken = 0
        self.closed = False

    def __iter__(self) -> Iterator[int]:
        try:
            for index in range(self.count):
                if index == self.fail_at:
                    raise OSError(f"source failed at {index}")
                self.taken += 1
                yield index
        finally:
            self.closed = True


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("convdet-pipeline")]


@pytest.mark.parametrize("depth", [1, 3])
def test_the_reader_never_runs_more_than_the_queues_ahead_of_a_slow_sink(depth) -> None:
    items = Counted(40)
    ahead: list[int] = []

    def slow(item: int) -> bool:
        time.sleep(0.01)
        ahead.append(items.taken - (item + 1))  # taken but not yet through the sink
        return True

    run_stages(items, lambda item: item, slow, depth=depth)
    # each queue holds `depth`; the reader, the caller and the writer hold one item each
    assert max(ahead) <= 2 * depth + 2
    assert max(ahead) >= depth  # it did read ahead
    assert items.taken == 40 and items.closed and not pipeline_threads()


@pytest.mark.parametrize("write_behind", [True, False])
def test_a_sink_failing_stops_the_pipeline_and_is_raised_in_the_caller(write_behind) -> None:
    items = Counted(10_000)
    sunk: list[int] = []

    def failing(item: int) -> bool:
        if item == 5:
            raise OSError("disk gone")
        sunk.append(item)
        return True

    with pytest.raises(OSError, match="disk gone"):
        run_stages(items, lambda item: item, failing, depth=2, write_behind=write_behind)
    assert sunk == [0, 1, 2, 3, 4]
    assert items.taken < 20 and items.closed  # stopped, its iteration closed in the reader
    assert not pipeline_threads()  # the reader and the writer were joined


def test_a_sink_returning_false_ends_the_run_quietly() -> None:
    items = Counted(10_000)
    run_stages(items, lambda item: item, lambda item: item < 3, depth=2)
    assert items.taken < 20 and items.closed and not pipeline_threads()


@pytest.mark.parametrize("read_ahead", [True, False])
def test_a_source_failing_is_raised_after_the_items_before_it_are_sunk(read_ahead) -> None:
    sunk: list[int] = []
    with pytest.raises(OSError, match="source failed at 7"):
        run_stages(
            Counted(100, fail_at=7),
            lambda item: item * 10,
            lambda item: sunk.append(item) is None,
            depth=2,
            read_ahead=read_ahead,
        )
    assert sunk == [0, 10, 20, 30, 40, 50, 60] and not pipeline_threads()
