"""Sinks: JSON Lines that never destroy earlier results, savers that stay inside their folder
and never overwrite inputs, annotated videos, and the window: its no-display path, its size,
images held until a key, and the user closing it (on a stand-in for OpenCV's Qt windows)."""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path, PurePath

import cv2
import numpy as np
import pytest
from convdet.runtime.detections import Detections
from convdet.runtime.jsonl import JsonlSink, RecordError
from convdet.runtime.reading import read_lines
from convdet.runtime.records import detection_record, failure_record, run_id, utc_time
from convdet.runtime.savers import (
    AnnotatedImageSaver,
    SaveError,
    VideoSaver,
    safe_relative,
    set_avi_rate,
)
from convdet.runtime.window import Window, display_unavailable, fit_window

LABELS = (*(str(digit) for digit in range(10)), "background")


def record(index: int) -> dict:
    detections = Detections(np.array([[1.25, 2, 30, 40.04]]), np.array([7]), np.array([0.91234]))
    lines = read_lines(detections, LABELS)
    return detection_record(f"img{index}.png", None, (48, 64, 3), detections, LABELS, lines)


def test_detection_record_follows_its_schema():
    assert record(0) == {
        "source": "img0.png",
        "frame": None,
        "width": 64,
        "height": 48,
        "detections": [
            {"class_id": 7, "label": "7", "score": 0.9123, "box": [1.2, 2.0, 30.0, 40.0]}
        ],
        "lines": [{"text": "7", "box": [1.2, 2.0, 30.0, 40.0], "detections": [0], "score": 0.9123}],
    }


def test_detection_record_lines_name_detections_in_reading_order():
    # "40" written right to left in the detections' order (the 0 was found first), then a 1
    # on the next row.
    boxes = np.array([[40, 0, 60, 28], [10, 2, 30, 30], [12, 50, 20, 80]])
    detections = Detections(boxes, np.array([0, 4, 1]), np.array([0.9, 0.7, 0.8]))
    lines = read_lines(detections, LABELS)
    row = detection_record("page.png", 3, (96, 80), detections, LABELS, lines)
    assert json.loads(json.dumps(row))["lines"] == [
        {"text": "40", "box": [10.0, 0.0, 60.0, 30.0], "detections": [1, 0], "score": 0.7},
        {"text": "1", "box": [12.0, 50.0, 20.0, 80.0], "detections": [2], "score": 0.8},
    ]
    assert [row["detections"][i]["label"] for i in row["lines"][0]["detections"]] == ["4", "0"]


def read_jsonl(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_jsonl_sink_writes_one_complete_line_per_record(tmp_path):
    target = tmp_path / "out.jsonl"
    with JsonlSink(target) as sink:
        sink.write(record(0))
        assert read_jsonl(target) == [record(0)], "a record must be on disk as soon as written"
        sink.write(record(1))
    assert read_jsonl(target) == [record(0), record(1)] and sink.records == 2


def test_jsonl_sink_refuses_to_destroy_existing_results(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text('{"source": "earlier.png"}\n')
    with pytest.raises(FileExistsError, match="--append"), JsonlSink(target):
        pass
    assert target.read_text() == '{"source": "earlier.png"}\n'
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    with JsonlSink(empty) as sink:  # an empty file holds nothing to lose
        sink.write(record(0))
    assert read_jsonl(empty) == [record(0)]


@pytest.mark.parametrize(
    "kept",
    ['{"source": "a.png"}\n', "", "{}\n" * 30_000],  # the last: the cut line spans blocks
)
def test_jsonl_sink_append_removes_an_incomplete_last_line(tmp_path, kept):
    target = tmp_path / "out.jsonl"
    cut = '{"source": "b.png", "box": [4' + " " * 70_000  # a run killed (or a disk full) mid-line
    target.write_text(kept + cut)
    with JsonlSink(target, append=True) as sink:
        assert sink.repaired == len(cut)
        sink.write(record(2))
    assert target.read_text() == kept + json.dumps(record(2)) + "\n"
    with JsonlSink(target, append=True) as sink:  # a complete file is left as it is
        assert sink.repaired == 0
    assert target.read_text() == kept + json.dumps(record(2)) + "\n"


def disk_filling_up(monkeypatch, fd: int, room: int, per_call: int = 1 << 30) -> None:
    """Make write() on `fd` take at most `per_call` bytes per call and fail with ENOSPC once
    `room` bytes went in; other file descriptors are left alone."""
    real_write = os.write

    def write(target: int, data: bytes) -> int:
        nonlocal room
        if target != fd:
            return real_write(target, data)
        if room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(target, bytes(data[: min(room, per_call)]))
        room -= written
        return written

    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("room", [0, 1, 25, 90])
def test_jsonl_sink_writes_a_record_whole_or_not_at_all(tmp_path, monkeypatch, room):
    target = tmp_path / "out.jsonl"
    with JsonlSink(target) as sink:
        sink.write(record(0))
        before = target.read_bytes()
        disk_filling_up(monkeypatch, sink._fd, room, per_call=7)  # short writes, then full
        with pytest.raises(RecordError, match=r"No space left on device; record 2 of this run"):
            sink.write(record(1))
        assert target.read_bytes() == before, "a cut record was left in the file"
    assert read_jsonl(target) == [record(0)] and sink.records == 1


def test_jsonl_sink_completes_a_record_over_short_writes(tmp_path, monkeypatch):
    target = tmp_path / "out.jsonl"
    with JsonlSink(target) as sink:
        disk_filling_up(monkeypatch, sink._fd, room=1 << 20, per_call=3)
        sink.write(record(0))
        sink.write(record(1))
    assert read_jsonl(target) == [record(0), record(1)]


def test_jsonl_sink_to_stdout():
    stream = io.StringIO()
    with JsonlSink("-", stdout=stream) as sink:
        sink.write(record(3))
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [record(3)]


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("scans/page1.png", "scans/page1.png"),
        ("../../etc/evil.png", "etc/evil.png"),
        ("/tmp/abs/evil.png", "tmp/abs/evil.png"),
        ("a/./b/../c.png", "a/b/c.png"),
        ("..", SaveError),
        ("/", SaveError),
    ],
)
def test_safe_relative(relpath, expected):
    if expected is SaveError:
        with pytest.raises(SaveError):
            safe_relative(relpath)
    else:
        assert safe_relative(relpath) == PurePath(expected)


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("scans/page.png", "scans/page.png"),
        ("scan.xyz", "scan.xyz.png"),  # OpenCV has no .xyz writer
        ("noext", "noext.png"),
        ("bad\udcffname.png", "bad\udcffname.png"),  # byte 0xff in the name: kept as it is
        ("odd.\udcffpng", "odd.\udcffpng.png"),  # ... but never shown to OpenCV
    ],
)
def test_saver_output_relpath_judges_only_the_extension(relpath, expected):
    assert AnnotatedImageSaver.output_relpath(relpath) == PurePath(expected)


IMAGE = np.full((12, 16, 3), 200, np.uint8)


@pytest.mark.parametrize("workers", [0, 2])
def test_saver_mirrors_paths_and_never_leaves_its_folder(tmp_path, workers):
    root = tmp_path / "work" / "out"
    errors: list[tuple[str, str]] = []
    with AnnotatedImageSaver(root, on_error=lambda *e: errors.append(e), workers=workers) as saver:
        paths = [
            saver.save(PurePath("a/b/page.png"), IMAGE),
            saver.save(PurePath("../../escape.png"), IMAGE),
            saver.save(PurePath("/abs/escape.png"), IMAGE),
            saver.save(PurePath("a/b/page.png"), IMAGE),  # a second input with the same name
            saver.save(PurePath("scan.xyz"), IMAGE),  # OpenCV cannot write .xyz
        ]
    assert not errors
    written = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert written == [
        "a/b/page.png",
        "a/b/page_1.png",
        "abs/escape.png",
        "escape.png",
        "scan.xyz.png",
    ]
    assert [path.relative_to(root).as_posix() for path in paths] == [
        "a/b/page.png",
        "escape.png",
        "abs/escape.png",
        "a/b/page_1.png",
        "scan.xyz.png",
    ]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["out"]
    assert cv2.imread(str(root / "a/b/page.png")).shape == IMAGE.shape


def test_saver_refuses_symlink_escapes_and_inputs(tmp_path):
    root, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    original = cv2.imencode(".png", np.zeros((5, 5), np.uint8))[1].tobytes()
    (root / "input.png").write_bytes(original)
    errors: list[tuple[str, str]] = []
    with AnnotatedImageSaver(
        root, on_error=lambda *e: errors.append(e), protect=[root / "input.png"]
    ) as saver:
        assert saver.save("link/x.png", IMAGE) is None
        assert saver.save("input.png", IMAGE) is None
    assert [what for what, _message in errors] == ["link/x.png", "input.png"]
    assert "would be outside" in errors[0][1] and "is an input file" in errors[1][1]
    assert list(outside.iterdir()) == []
    assert (root / "input.png").read_bytes() == original


def test_saver_reports_write_failures_without_raising(tmp_path):
    (tmp_path / "out").write_text("a file where the folder should be")
    errors: list[tuple[str, str]] = []
    with AnnotatedImageSaver(tmp_path / "out", on_error=lambda *e: errors.append(e)) as saver:
        saver.save("x.png", IMAGE)
    assert len(errors) == 1 and errors[0][0].endswith("x.png")


def test_video_saver_writes_every_frame(tmp_path):
    errors: list[tuple[str, str]] = []
    target = tmp_path / "v" / "clip.avi"
    with VideoSaver(target, fps=5, on_error=lambda *e: errors.append(e)) as video:
        for value in range(6):
            video.write(np.full((32, 48, 3), value * 40, np.uint8))
        video.write(np.zeros((10, 10, 3), np.uint8))  # a size change is resized, not fatal
    assert not errors
    capture = cv2.VideoCapture(str(video.path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 7
    ok, first = capture.read()
    assert ok and first.shape == (32, 48, 3)


def test_video_saver_defaults_to_the_mjpg_avi_detect_saves(tmp_path):
    with VideoSaver(tmp_path / "clip", fps=5, on_error=print) as video:  # no suffix given
        video.write(np.zeros((32, 48, 3), np.uint8))
    assert video.path == tmp_path / "clip.avi"
    fourcc = int(cv2.VideoCapture(str(video.path)).get(cv2.CAP_PROP_FOURCC))
    assert fourcc.to_bytes(4, "little") == b"MJPG"


def test_a_measured_video_plays_at_the_rate_frames_were_given(tmp_path):
    errors: list[tuple[str, str]] = []
    with VideoSaver(
        tmp_path / "live.avi", fps=30, on_error=lambda *e: errors.append(e), measured=True
    ) as video:
        started = time.monotonic()
        for value in range(6):
            video.write(np.full((32, 48, 3), value * 40, np.uint8))
            time.sleep(0.05)
        given = 5 / (time.monotonic() - started - 0.05)  # five gaps between six frames
    assert not errors and video.fps == pytest.approx(given, rel=0.1)
    capture = cv2.VideoCapture(str(video.path))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(video.fps, rel=0.01)  # not 30
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    with pytest.raises(SaveError, match=r"\.avi videos only"):
        VideoSaver(tmp_path / "live.mp4", fps=30, on_error=print, measured=True)
    (tmp_path / "not.avi").write_bytes(b"RIFF....AVI LIST")
    with pytest.raises(OSError, match="no AVI video header"):
        set_avi_rate(tmp_path / "not.avi", 5.0)


def test_failure_records_say_why_and_stamps_are_utc():
    assert failure_record("a.png", None, "empty file (0 bytes)") == {
        "source": "a.png",
        "frame": None,
        "error": "empty file (0 bytes)",
    }
    stamp = datetime.strptime(utc_time(), "%Y-%m-%dT%H:%M:%S.%f%z")
    assert abs((stamp - datetime.now(timezone.utc)).total_seconds()) < 5
    assert re.fullmatch(rf"\d{{8}}T\d{{6}}\.\d{{3}}Z-{os.getpid()}", run_id())


def test_video_saver_refuses_bad_names_and_inputs(tmp_path):
    with pytest.raises(SaveError, match=r"\.avi or \.mp4"):
        VideoSaver(tmp_path / "clip.mov", fps=5, on_error=print)
    (tmp_path / "clip.avi").write_bytes(b"input video")
    with pytest.raises(SaveError, match="input file"):
        VideoSaver(tmp_path / "clip.avi", fps=5, on_error=print, protect=[tmp_path / "clip.avi"])


def test_window_without_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert display_unavailable() == "no display (DISPLAY is not set)"
    with pytest.raises(OSError, match="no display"), Window():
        pass


def test_window_on_an_unreachable_display_is_refused_not_fatal(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4321")  # no X server there: OpenCV's Qt would abort
    reason = display_unavailable()
    assert reason is not None and reason.startswith("cannot open a window on display :4321")


class FakeQt:
    """OpenCV's window functions as the Qt backend behaves for a user: after `close_after`
    images the user closes the window, and from then on its functions raise "NULL guiReceiver"
    (as cv2.getWindowProperty and cv2.destroyWindow do once Qt's last window is gone);
    waitKey returns `keys` in turn, then -1 (no key)."""

    def __init__(self, monkeypatch, keys: tuple[int, ...] = (), close_after: int | None = None):
        self.keys = list(keys)
        self.close_after = close_after
        self.closed = self.destroyed = False
        self.shown: list[tuple[int, ...]] = []
        self.sizes: list[tuple[int, int]] = []
        self.waits: list[int] = []
        monkeypatch.setattr("convdet.runtime.window.display_unavailable", lambda: None)
        monkeypatch.setattr("convdet.runtime.window.screen_size", lambda: (1280, 1024))
        for name, function in {
            "namedWindow": self.named_window,
            "resizeWindow": self.resize_window,
            "imshow": self.imshow,
            "waitKey": self.wait_key,
            "getWindowProperty": self.get_window_property,
            "destroyWindow": self.destroy_window,
        }.items():
            monkeypatch.setattr(cv2, name, function)

    def _raise_if_closed(self, function: str) -> None:
        if self.closed:
            raise cv2.error(f"NULL guiReceiver (please create a window) in function '{function}'")

    def named_window(self, _title, _flags=0) -> None:
        self._raise_if_closed("namedWindow")

    def resize_window(self, _title, width, height) -> None:
        self._raise_if_closed("resizeWindow")
        self.sizes.append((width, height))

    def imshow(self, _title, image) -> None:
        self._raise_if_closed("imshow")
        self.shown.append(image.shape)

    def wait_key(self, delay=0) -> int:
        self.waits.append(delay)
        if self.close_after is not None and len(self.shown) >= self.close_after:
            self.closed = True
        return self.keys.pop(0) if self.keys else -1

    def get_window_property(self, _title, _prop) -> float:
        self._raise_if_closed("cvGetPropVisible_QT")
        return 1.0

    def destroy_window(self, _title) -> None:
        self._raise_if_closed("destroyWindowImpl")
        self.destroyed = True


def test_closing_the_window_ends_showing_quietly(monkeypatch):
    qt = FakeQt(monkeypatch, close_after=2)
    image = np.zeros((480, 640, 3), np.uint8)
    with Window() as window:  # exiting must not raise either
        assert window.show(image)
        assert not window.show(image)  # the user closed it while this frame was up
    assert len(qt.shown) == 2 and not qt.destroyed


def test_q_and_esc_end_showing_and_the_window_is_destroyed(monkeypatch):
    for key in (ord("q"), 27):
        qt = FakeQt(monkeypatch, keys=(-1, key))
        with Window() as window:
            assert window.show(np.zeros((4, 4, 3), np.uint8))
            assert not window.show(np.zeros((4, 4, 3), np.uint8))
        assert qt.destroyed


def test_the_window_takes_the_image_size_fitted_to_the_screen(monkeypatch):
    qt = FakeQt(monkeypatch)
    with Window() as window:
        for shape in [(480, 640, 3), (480, 640, 3), (3000, 4000, 3), (2000, 1000, 3)]:
            window.show(np.zeros(shape, np.uint8))
    assert qt.sizes == [(640, 480), (1152, 864), (461, 922)]  # once per size, 90% of 1280x1024
    assert fit_window((640, 480), None) == (640, 480)
    assert fit_window((100, 20000), (1920, 1080)) == (5, 972)


def test_images_are_held_until_a_key_or_the_timeout(monkeypatch):
    image = np.zeros((4, 4, 3), np.uint8)
    qt = FakeQt(monkeypatch, keys=(-1, -1, ord(" ")))
    with Window() as window:
        assert window.show(image, hold=math.inf)  # any key but q/Esc: go on
        assert qt.waits == [50, 50, 50]
        started = time.monotonic()
        assert window.show(image, hold=0.3)  # no key: the timeout
        assert time.monotonic() - started >= 0.3
        assert window.show(image)  # no hold: one event-loop turn (video and camera frames)
    assert qt.waits[-1] == 1


XVFB_TOOLS = ("Xvfb", "openbox", "wmctrl", "xwininfo")


@pytest.fixture
def x_display(monkeypatch) -> Iterator[str]:
    """A virtual X screen (Xvfb, 1280x1024) with a window manager (openbox), both stopped
    afterwards; its name is also set as DISPLAY."""
    missing = [tool for tool in XVFB_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install xvfb openbox wmctrl x11-utils)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=[write],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as numbers:
        display = f":{numbers.readline().strip()}"
    monkeypatch.setenv("DISPLAY", display)
    manager = subprocess.Popen(["openbox"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: run_x(["wmctrl", "-m"]).returncode == 0, "openbox to start")
        yield display
    finally:
        for process in (manager, server):
            process.terminate()
            process.wait(timeout=10)


def run_x(command: list[str]) -> subprocess.CompletedProcess:
    """An X client command on DISPLAY, output captured."""
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def wait_for(condition, what: str, timeout: float = 60.0):
    """Poll `condition` until it returns something true (returned), else fail saying `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"waited {timeout:.0f} s for {what}")


def test_json_sink_creates_missing_parent_folders(tmp_path):
    target = tmp_path / "new" / "nested" / "out.jsonl"
    with JsonlSink(target) as sink:
        sink.write({"source": "a.png", "frame": None, "width": 1, "height": 1, "detections": []})
    assert target.read_text().count("\n") == 1


def test_the_board_check_accepts_the_records_convdet_writes() -> None:
    """deploy/litert_check.py validates `convdet detect --json -` output on boards: it must
    accept exactly what `convdet detect` writes (detection_record and the run id), lines
    included."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "litert_check", Path(__file__).resolve().parents[1] / "deploy" / "litert_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    detections = Detections(np.array([[0, 0, 10, 20], [12, 0, 22, 20]]), [1, 7], [0.9, 0.8])
    lines = read_lines(detections, LABELS)
    written = detection_record("a.png", None, (30, 40), detections, LABELS, lines)
    record = json.dumps({**written, "time": utc_time(), "run": run_id()})
    (row,) = module.json_records(record)
    assert [line["text"] for line in row["lines"]] == ["17"]
    broken = json.loads(record)
    broken["lines"][0]["detections"] = [0]
    with pytest.raises(module.CheckFailed):
        module.json_records(json.dumps(broken))
