"""`convdet detect` end to end: bad files reported once each, video frame indices, a live
stand-in camera that fails mid-run, --save confinement, kills mid-batch, no display, the window
closed by the user and still images held in it, drawing layers turned off, bad options,
and a LiteRT-only board (onnxruntime refused): .tflite and default models, JSON Lines on stdout.

Uses the shipped models; no assertion depends on a training run's scores.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from convdet.runtime.jsonl import JsonlSink
from test_hostile_corpus import detect_process, stop_after_records
from test_sinks import (
    FakeQt,
    disk_filling_up,
    run_x,
    wait_for,
    x_display,  # noqa: F401 (a fixture)
)
from test_sources import MIXED_FILES, StandInCamera, digit_page, write_mixed_folder, write_video

from convdet.cli import main, printable

RECORD_KEYS = {"source", "frame", "width", "height", "detections", "lines"}
FAILURE_KEYS = {"source", "frame", "error"}
RUN_ID = re.compile(r"\d{8}T\d{6}\.\d{3}Z-\d+")  # the run's start in UTC and the process id
UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
DETECTION_KEYS = {"class_id", "label", "score", "box"}
LINE_KEYS = {"text", "box", "detections", "score"}


def records(path: Path) -> list[dict]:
    """Every line of a JSONL file, each checked against the README's JSON Lines schema."""
    return parse_records(path.read_text())


def parse_records(text: str) -> list[dict]:
    """Every line of JSON Lines text, each checked against the README's JSON Lines schema."""
    assert text == "" or text.endswith("\n"), "the last record is incomplete"
    rows = [json.loads(line) for line in text.splitlines()]
    for row in rows:
        assert RUN_ID.fullmatch(row["run"]) and UTC_TIME.fullmatch(
            row.get("time", "0000-00-00T00:00:00.000Z")
        )
        keys = set(row) - {"run", "time"}
        if "error" in row:
            assert keys == FAILURE_KEYS and row["error"]
            continue
        assert keys == RECORD_KEYS
        for detection in row["detections"]:
            assert set(detection) == DETECTION_KEYS and len(detection["box"]) == 4
        read = []
        for line in row["lines"]:
            assert set(line) == LINE_KEYS and len(line["box"]) == 4
            assert line["text"] == "".join(
                row["detections"][i]["label"] for i in line["detections"]
            )
            read += line["detections"]
        assert sorted(read) == list(range(len(row["detections"])))  # each detection read once
    return rows


def unstamped(text: str) -> list[dict]:
    """The records of JSON Lines text without their run id and time, to compare two runs."""
    return [
        {key: value for key, value in row.items() if key not in ("run", "time")}
        for row in parse_records(text)
    ]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("convdet detect:")]


def test_batch_reports_each_bad_file_once_and_records_the_good_ones(tmp_path, mnist, model, capsys):
    folder = write_mixed_folder(tmp_path / "in", mnist)
    out = tmp_path / "out.jsonl"
    status = main(["detect", str(folder), "--recursive", "--model", str(model), "--json", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    good = sorted(str(folder / name) for name, error in MIXED_FILES.items() if error is None)
    rows = records(out)
    failed = {row["source"]: row["error"] for row in rows if "error" in row}
    rows = [row for row in rows if "error" not in row]
    assert sorted(row["source"] for row in rows) == good
    assert all((row["frame"], row["width"], row["height"]) == (None, 64, 48) for row in rows)
    assert failed.keys() == {str(folder / name) for name, error in MIXED_FILES.items() if error}
    for name, error in MIXED_FILES.items():  # each failed file's record says why
        assert error is None or error in failed[str(folder / name)]
    assert len({row["run"] for row in records(out)}) == 1 and "time" not in rows[0]
    errors = error_lines(captured.err)
    for name, error in MIXED_FILES.items():
        mentions = [line for line in errors if f"{folder / name}:" in line]
        assert len(mentions) == (0 if error is None else 1), (name, errors)
        assert error is None or error in mentions[0]
    assert "Traceback" not in captured.err
    assert "5 images processed; 5 failed" in captured.out


def test_without_outputs_one_line_per_image_and_a_summary(tmp_path, mnist, model, capsys):
    folder = tmp_path / "pages"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"p{index}.png"), digit_page(mnist, index))
    assert main(["detect", str(folder), "--model", str(model)]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [str(folder / f"p{index}.png") for index in range(3)]
    assert [line.split(":")[0] for line in lines[:3]] == names
    assert all("64x48" in line for line in lines[:3])
    for line in lines[:3]:  # the strings read hold the digits counted
        counted = "".join(digit * int(times) for digit, times in re.findall(r"(\d) x(\d+)", line))
        assert counted and sorted("".join(re.findall(r'"(\d+)"', line))) == sorted(counted)
    assert lines[3].startswith("3 images processed;") and len(lines) == 4


@pytest.mark.parametrize(("every", "logged"), [("0.000001", True), ("10", False), ("0", False)])
def test_without_a_terminal_progress_is_a_line_every_few_seconds(
    tmp_path, mnist, model, capsys, every, logged
):
    folder = write_pages(tmp_path / "pages", mnist, 4)
    command = ["detect", str(folder), "--model", str(model), "--json", str(tmp_path / "o.jsonl")]
    assert main([*command, "--progress-every", every]) == 0
    captured = capsys.readouterr()
    progress = r"convdet detect: ([1-4])/4 images, [\d.]+ images/s, ETA \d+:\d\d"
    done = [int(re.fullmatch(progress, line)[1]) for line in error_lines(captured.err)]
    assert done == ([1, 2, 3, 4] if logged else [])
    assert "\r" not in captured.err and "%" not in captured.err  # no bar drawn into a log


def test_on_a_terminal_progress_is_a_bar_with_percentage_and_eta(
    tmp_path, mnist, model, capsys, monkeypatch
):
    folder = write_pages(tmp_path / "pages", mnist, 4)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    command = ["detect", str(folder), "--model", str(model), "--json", str(tmp_path / "o.jsonl")]
    assert main([*command, "--progress-every", "0.000001"]) == 0
    captured = capsys.readouterr()
    assert "100%" in captured.err and "4/4" in captured.err and "image/s" in captured.err
    assert re.search(r"\d+/4 \[\d\d:\d\d<\d\d:\d\d", captured.err)  # elapsed<ETA
    assert not error_lines(captured.err)  # the bar, not log lines
    assert captured.out.startswith("4 images processed")


def test_video_records_frame_indices_and_saves_an_annotated_video(tmp_path, mnist, model):
    video = write_video(tmp_path / "clip.avi", mnist, frames=10)
    out, saved = tmp_path / "out.jsonl", tmp_path / "saved"
    status = main(
        [
            "detect",
            str(video),
            "--model",
            str(model),
            "--vid-stride",
            "2",
            "--json",
            str(out),
            "--save",
            str(saved),
        ]
    )
    assert status == 0
    rows = records(out)
    assert [row["frame"] for row in rows] == [0, 2, 4, 6, 8]
    assert {(row["source"], row["width"], row["height"]) for row in rows} == {(str(video), 64, 48)}
    capture = cv2.VideoCapture(str(saved / "clip.avi"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def saved_video(path: Path) -> tuple[int, float]:
    """Frame count and frame rate of a saved video, as a player reads them."""
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()


@pytest.mark.parametrize("stride", [1, 2, 5])
def test_a_strided_video_is_saved_at_its_rate_over_the_stride(tmp_path, mnist, model, stride):
    video = write_video(tmp_path / "clip.avi", mnist, frames=20)  # 10 fps: 2 s
    saved = tmp_path / "saved"
    command = ["detect", str(video), "--model", str(model), "--vid-stride", str(stride)]
    assert main([*command, "--save", str(saved)]) == 0
    frames, fps = saved_video(saved / "clip.avi")
    assert frames == 20 // stride and fps == pytest.approx(10.0 / stride, rel=0.01)
    assert frames / fps == pytest.approx(2.0, rel=0.01)  # it lasts as long as the file


def test_a_live_video_lasts_as_long_as_the_run_and_records_carry_time_and_run(
    tmp_path, model, monkeypatch
):
    camera = StandInCamera(frames=40, period=0.025, shape=(48, 64, 3))  # 40 fps, 1 s
    monkeypatch.setattr("convdet.runtime.sources.open_capture", lambda target: camera)
    out, saved = tmp_path / "live.jsonl", tmp_path / "saved"
    command = ["detect", "0", "--model", str(model), "--json", str(out)]
    assert main([*command, "--save", str(saved)]) == 1  # the camera stops after 40 frames
    rows = records(out)
    assert len({row["run"] for row in rows}) == 1
    times = [datetime.strptime(row["time"], "%Y-%m-%dT%H:%M:%S.%f%z") for row in rows]
    assert times == sorted(times) and abs(times[0] - datetime.now(timezone.utc)).seconds < 60
    frames, fps = saved_video(saved / "camera0.avi")
    assert frames == len(rows) >= 10
    measured = (len(rows) - 1) / (times[-1] - times[0]).total_seconds()
    assert fps == pytest.approx(measured, rel=0.05)  # not the camera's 40, nor a guess of 10
    camera = StandInCamera(frames=3, shape=(48, 64, 3))  # a restart: a new run id
    assert main([*command, "--append"]) == 1 and len({row["run"] for row in records(out)}) == 2


def test_live_stream_that_stops_flushes_outputs_and_fails(tmp_path, model, monkeypatch, capsys):
    camera = StandInCamera(frames=30, period=0.003, shape=(48, 64, 3))
    monkeypatch.setattr("convdet.runtime.sources.open_capture", lambda target: camera)
    out, saved = tmp_path / "live.jsonl", tmp_path / "saved"
    status = main(
        [
            "detect",
            "0",
            "--model",
            str(model),
            "--json",
            str(out),
            "--save",
            str(saved),
            "--save-interval",
            "3",
        ]
    )
    captured = capsys.readouterr()
    assert status == 1
    rows = records(out)
    frames = [row["frame"] for row in rows]
    assert frames == sorted(set(frames)) and frames[-1] == 29 and rows[0]["source"] == "0"
    assert "0 stopped delivering frames after 30 frames" in captured.err
    summary = captured.out.splitlines()[-1]
    dropped = int(summary.split(" dropped")[0].split("; ")[-1])
    assert summary.startswith(f"{len(rows)} frames processed") and dropped == 30 - len(rows)
    saved_frames = sorted(path.name for path in (saved / "camera0").iterdir())
    started = saved_frames[0][:15]  # the run's start, so a restart never reuses a name
    assert re.fullmatch(r"\d{8}-\d{6}", started)
    assert saved_frames == [f"{started}-{row['frame']:08d}.jpg" for row in rows[::3]]
    assert camera.released


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_on_a_live_source_closes_outputs_and_exits_130(tmp_path, model, monkeypatch):
    camera = StandInCamera(frames=100_000, period=0.002, shape=(48, 64, 3))
    monkeypatch.setattr("convdet.runtime.sources.open_capture", lambda target: camera)
    out, saved = tmp_path / "live.jsonl", tmp_path / "saved"
    ended = threading.Event()

    def ctrl_c_once_recorded() -> None:  # however long the model takes to load
        while not ended.wait(0.01):
            if out.exists() and out.read_bytes().count(b"\n") >= 3:
                os.kill(os.getpid(), signal.SIGINT)
                return

    threading.Thread(target=ctrl_c_once_recorded, daemon=True).start()
    try:
        status = main(
            ["detect", "0", "--model", str(model), "--json", str(out), "--save", str(saved)]
        )
    finally:
        ended.set()
    assert status == 130
    rows = records(out)
    capture = cv2.VideoCapture(str(saved / "camera0.avi"))
    # Ctrl-C may land between a frame's JSON record and its video frame
    video_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    assert len(rows) > 0 and video_frames in (len(rows) - 1, len(rows))
    assert camera.released


def test_save_mirrors_nested_folders_and_never_escapes(tmp_path, mnist, model):
    work = tmp_path / "work"
    (work / "scans/a/b").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    page = digit_page(mnist, 3)
    for name in ("scans/top.png", "scans/a/b/deep.png"):
        cv2.imwrite(str(work / name), page)
    cv2.imwrite(str(tmp_path / "elsewhere/far.png"), page)
    listing = work / "scans/list.txt"
    hostile = ["../../elsewhere/far.png", str(tmp_path / "elsewhere/far.png")]
    listing.write_text("\n".join(["top.png", "a/b/deep.png", *hostile]) + "\n")
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    saved = work / "out"
    assert main(["detect", str(listing), "--model", str(model), "--save", str(saved)]) == 0
    created = sorted(set(str(path) for path in tmp_path.rglob("*")) - set(before))
    assert all(path.startswith(str(saved)) for path in created), created
    written = sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*.png"))
    far = (tmp_path / "elsewhere/far.png").relative_to("/").as_posix()
    assert written == sorted(["top.png", "a/b/deep.png", "elsewhere/far.png", far])
    height, width = cv2.imread(str(saved / "a/b/deep.png")).shape[:2]
    assert height == 48 and width > 64  # the 64x48 frame and its legend strip


def test_save_into_the_source_folder_is_refused(tmp_path, mnist, model, capsys):
    cv2.imwrite(str(tmp_path / "page.png"), digit_page(mnist, 4))
    before = (tmp_path / "page.png").read_bytes()
    assert main(["detect", str(tmp_path), "--model", str(model), "--save", str(tmp_path)]) == 2
    assert "would overwrite the inputs" in capsys.readouterr().err
    assert (tmp_path / "page.png").read_bytes() == before


def convdet(
    *argv: str | bytes | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`convdet ARGV...` in a child process (bytes arguments pass file names as they are), so
    a crash shows as a return code instead of taking the test run down."""
    command = [sys.executable, "-m", "convdet", *argv]
    return subprocess.run(
        command, capture_output=True, timeout=120, env={**os.environ, **(env or {})}
    )


# File names as bytes (True: a good image): not UTF-8, not ASCII, with newlines.
HOSTILE_NAMES = {
    b"bad\xffname.png": True,
    b"caf\xc3\xa9.png": True,
    b"new\nline.png": True,
    b"cor\nrupt.png": False,
}
STRICT_ASCII = {"PYTHONIOENCODING": "ascii:strict"}


def test_hostile_file_names_are_saved_and_shown_on_one_line(tmp_path, mnist, model):
    folder = tmp_path / "in"
    folder.mkdir()
    page = cv2.imencode(".png", digit_page(mnist, 2))[1].tobytes()
    for name, good in HOSTILE_NAMES.items():
        (folder / os.fsdecode(name)).write_bytes(page if good else b"junk")
    saved, out = tmp_path / "out", tmp_path / "out.jsonl"
    done = convdet(
        "detect", folder, "--model", model, "--save", saved, "--json", out, env=STRICT_ASCII
    )
    assert done.returncode == 1, done.stderr  # the unreadable file; not 139 (SIGSEGV)
    assert error_lines(done.stderr.decode("ascii")) == [
        f"convdet detect: {folder}/cor\\nrupt.png: not an image (unrecognised file header)"
    ]
    good = sorted(name for name, ok in HOSTILE_NAMES.items() if ok)
    assert sorted(os.listdir(os.fsencode(saved))) == good
    rows = records(out)
    assert sorted(os.fsencode(row["source"]) for row in rows if "error" not in row) == [
        os.fsencode(folder) + b"/" + name for name in good
    ]
    listed = convdet("detect", folder, "--model", model, env=STRICT_ASCII)
    lines = listed.stdout.decode("ascii").splitlines()
    assert [line.split(": ")[0] for line in lines[:3]] == [
        f"{folder}/bad\\xffname.png",
        f"{folder}/caf\\xe9.png",  # an ASCII stdout escapes what it cannot encode
        f"{folder}/new\\nline.png",
    ]
    assert len(lines) == 4 and lines[3].startswith("3 images processed; 1 failed")


@pytest.mark.parametrize(
    ("video_name", "save_name", "message"),
    [
        (b"clip\xff.avi", b"saved", "OpenCV needs a UTF-8 file name"),
        (b"clip.avi", b"saved\xff", "OpenCV cannot write a video whose path is not UTF-8"),
    ],
)
def test_names_opencv_cannot_take_are_one_line_errors(
    tmp_path, mnist, model, video_name, save_name, message
):
    video = os.fsencode(tmp_path) + b"/" + video_name
    os.replace(write_video(tmp_path / "written.avi", mnist, frames=3), os.fsdecode(video))
    save = os.fsencode(tmp_path) + b"/" + save_name
    done = convdet("detect", video, "--model", model, "--save", save, env=STRICT_ASCII)
    assert done.returncode == 2, done.stderr
    stderr = done.stderr.decode("ascii")
    assert stderr.count("\n") == 1 and stderr.startswith("convdet detect: error: ")
    assert message in stderr and "\\xff" in stderr


def test_printable_keeps_messages_on_one_line():
    assert printable("in/bad\udcffname.png: x") == "in/bad\\xffname.png: x"
    assert printable("new\nline\t\u00e9\ud800.png") == "new\\nline\\t\u00e9\\ud800.png"


def write_pages(folder: Path, mnist, count: int) -> Path:
    """`count` small digit pages p00.png, p01.png, ... in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        cv2.imwrite(str(folder / f"p{index:02d}.png"), digit_page(mnist, index))
    return folder


def test_a_full_disk_stops_the_run_and_leaves_whole_records(
    tmp_path, mnist, model, monkeypatch, capsys
):
    folder = write_pages(tmp_path / "pages", mnist, 8)
    enter = JsonlSink.__enter__

    def enter_on_a_filling_disk(sink):
        enter(sink)
        disk_filling_up(monkeypatch, sink._fd, room=700, per_call=64)
        return sink

    monkeypatch.setattr(JsonlSink, "__enter__", enter_on_a_filling_disk)
    out = tmp_path / "out.jsonl"
    assert main(["detect", str(folder), "--model", str(model), "--json", str(out)]) == 1
    captured = capsys.readouterr()
    rows = records(out)  # every line whole: the cut record was removed
    assert 1 <= len(rows) < 8
    assert [row["source"] for row in rows] == [
        str(folder / f"p{i:02d}.png") for i in range(len(rows))
    ]
    assert error_lines(captured.err) == [
        f"convdet detect: {out}: No space left on device; record {len(rows) + 1} of this run "
        "not written, the file ends with the last complete record"
    ]
    assert re.match(rf"{len(rows)} images? processed", captured.out)  # counted once written


@pytest.mark.needs_root
def test_a_real_full_disk_then_append_after_freeing_space(
    small_disk, tmp_path, mnist, model, capsys
):
    folder = write_pages(tmp_path / "pages", mnist, 40)
    filler = small_disk / "filler"
    filler.write_bytes(bytes(60 * 1024))  # 4 KiB left: room for a dozen records or so
    out = small_disk / "out.jsonl"
    args = ["detect", str(folder), "--model", str(model), "--json", str(out)]
    assert main(args) == 1
    assert "No space left on device" in capsys.readouterr().err
    first = records(out)
    assert 1 <= len(first) < 40
    filler.unlink()
    assert main([*args, "--append"]) == 0
    assert error_lines(capsys.readouterr().err) == []  # nothing to repair
    assert len(records(out)) == len(first) + 40


def test_append_removes_an_incomplete_last_line_and_says_so(tmp_path, mnist, model, capsys):
    page = write_pages(tmp_path / "pages", mnist, 1) / "p00.png"
    out = tmp_path / "out.jsonl"
    args = ["detect", str(page), "--model", str(model), "--json", str(out)]
    assert main(args) == 0
    whole = out.read_text()
    cut = whole[: len(whole) // 2]
    out.write_text(whole + cut)  # a second record cut off mid-line
    assert main([*args, "--append"]) == 0
    assert error_lines(capsys.readouterr().err) == [
        f"convdet detect: {out}: removed an incomplete last line ({len(cut)} bytes, "
        "from a run that was killed or ran out of space) before appending"
    ]
    assert unstamped(out.read_text()) == unstamped(whole) * 2
    assert out.read_text().startswith(whole)  # the first run's record kept as it was


def tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below `folder`: relative path -> (contents, modification time in ns)."""
    return {
        path.relative_to(folder).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_second_run_saves_to_a_fresh_folder_and_overwrites_nothing(
    tmp_path, mnist, model, capsys
):
    folder = write_pages(tmp_path / "pages", mnist, 3)
    saved = tmp_path / "out"
    args = ["detect", str(folder), "--model", str(model), "--save", str(saved)]
    assert main(args) == 0
    first = tree(saved)
    assert sorted(first) == ["p00.png", "p01.png", "p02.png"]
    assert error_lines(capsys.readouterr().err) == []
    for number in (2, 3):
        assert main(args) == 0
        assert error_lines(capsys.readouterr().err) == [
            f"convdet detect: {saved} already holds results; this run saves to {saved}-{number}"
        ]
        assert sorted(tree(tmp_path / f"out-{number}")) == sorted(first)
    assert tree(saved) == first, "the first run's images were rewritten"


def test_a_second_video_run_keeps_the_first_video(tmp_path, mnist, model):
    video = write_video(tmp_path / "clip.avi", mnist, frames=4)
    saved = tmp_path / "runs" / "clip"
    args = ["detect", str(video), "--model", str(model), "--save", str(saved)]
    assert main(args) == 0
    first = tree(saved)
    assert list(first) == ["clip.avi"]
    assert main(args) == 0
    assert tree(saved) == first and list(tree(tmp_path / "runs" / "clip-2")) == ["clip.avi"]


def test_the_demo_command_runs_twice_and_its_json_moves_with_the_folder(
    tmp_path, mnist, model, capsys
):
    page = write_pages(tmp_path / "samples", mnist, 1) / "p00.png"
    demo = tmp_path / "runs" / "demo"
    args = ["detect", str(page), "--model", str(model), "--save", str(demo)]
    args += ["--json", str(demo / "detections.jsonl")]
    assert main(args) == 0 and main(args) == 0  # as `make demo` runs it
    moved = tmp_path / "runs" / "demo-2"
    assert error_lines(capsys.readouterr().err) == [
        f"convdet detect: {demo} already holds results; this run saves to {moved} "
        f"(--json {moved / 'detections.jsonl'})"
    ]
    for folder in (demo, moved):
        assert sorted(tree(folder)) == ["detections.jsonl", "p00.png"]
        assert [row["source"] for row in records(folder / "detections.jsonl")] == [str(page)]
    assert main([*args, "--append"]) == 2  # the records to append to are not where they go
    assert error_lines(capsys.readouterr().err) == [
        f"convdet detect: error: --append: --json {demo / 'detections.jsonl'} is inside --save "
        f"{demo}, which holds earlier results, so this run saves to {demo}-3; "
        f"to append, give a --json FILE outside {demo}"
    ]
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["demo", "demo-2"]


@pytest.mark.parametrize("kind", ["glob", "list"])
def test_globs_and_lists_never_read_earlier_runs_outputs(tmp_path, mnist, model, kind):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    for index, name in enumerate(["top.png", "sub/deep.png"]):
        cv2.imwrite(str(work / name), digit_page(mnist, index))
    # a list written from a listing of the tree: earlier runs' outputs included
    listing = work / "list.txt"
    listing.write_text("top.png\nsub/deep.png\nout/top.png\nout-2/sub/deep.png\n")
    source = str(work / "**" / "*.png") if kind == "glob" else str(listing)
    args = ["detect", source, "--model", str(model), "--save", str(work / "out")]
    for folder in ("out", "out-2", "out-3"):
        assert main(args) == 0
        assert sorted(tree(work / folder)) == ["sub/deep.png", "top.png"], folder


def test_frames_of_a_restarted_live_run_never_replace_earlier_ones(tmp_path, model, monkeypatch):
    saved = tmp_path / "frames"
    args = ["detect", "0", "--model", str(model), "--save", str(saved), "--save-interval", "2"]
    for _restart in range(2):
        camera = StandInCamera(frames=6, shape=(48, 64, 3))
        monkeypatch.setattr(
            "convdet.runtime.sources.open_capture", lambda target, camera=camera: camera
        )
        assert main(args) == 1  # the stand-in camera stops: a service would restart it
    first, second = tree(saved / "camera0"), tree(tmp_path / "frames-2" / "camera0")
    assert first and second
    for name in [*first, *second]:
        assert re.fullmatch(r"\d{8}-\d{6}-\d{8}\.jpg", name), name


def poison_window_functions(monkeypatch) -> None:
    """Make every OpenCV window call fail loudly, to prove which runs never touch them."""

    def forbidden(*_args, **_kwargs):
        raise AssertionError("window code was called")

    for name in ("namedWindow", "imshow", "waitKey", "destroyWindow", "getWindowProperty"):
        monkeypatch.setattr(cv2, name, forbidden)


@pytest.mark.parametrize("show", [True, False])
def test_no_display_one_line_and_the_run_goes_on(tmp_path, mnist, model, monkeypatch, capsys, show):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    poison_window_functions(monkeypatch)
    cv2.imwrite(str(tmp_path / "page.png"), digit_page(mnist, 5))
    out = tmp_path / "out.jsonl"
    args = ["detect", str(tmp_path / "page.png"), "--model", str(model), "--json", str(out)]
    assert main(args + (["--show"] if show else [])) == 0
    assert error_lines(capsys.readouterr().err) == (
        ["convdet detect: --show: no display (DISPLAY is not set); continuing without a window"]
        if show
        else []
    )
    assert len(records(out)) == 1


def test_closing_the_window_ends_the_run_like_q(tmp_path, mnist, model, monkeypatch, capsys):
    qt = FakeQt(monkeypatch, close_after=3)  # the title-bar X on the third frame
    video = write_video(tmp_path / "clip.avi", mnist, frames=10)
    out = tmp_path / "out.jsonl"
    assert main(["detect", str(video), "--model", str(model), "--show", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert error_lines(captured.err) == [] and "Traceback" not in captured.err
    assert [row["frame"] for row in records(out)] == [0, 1, 2]
    assert captured.out.startswith("3 frames processed")
    assert len(qt.shown) == 3 and not qt.destroyed


def test_images_stay_in_the_window_until_a_key(tmp_path, mnist, model, monkeypatch, capsys):
    for index in range(2):
        cv2.imwrite(str(tmp_path / f"page{index}.png"), digit_page(mnist, index))
    qt = FakeQt(monkeypatch, keys=(-1, -1, ord(" "), -1, ord("n")))
    assert main(["detect", str(tmp_path), "--model", str(model), "--show"]) == 0
    assert len(qt.shown) == 2 and qt.waits == [50] * 5  # held until each key
    assert capsys.readouterr().out.startswith("2 images processed")
    qt = FakeQt(monkeypatch)
    started = time.monotonic()
    assert main(["detect", str(tmp_path), "--model", str(model), "--show", "--wait", "0.3"]) == 0
    assert time.monotonic() - started >= 0.6 and len(qt.shown) == 2


def changed_pixels(path: Path, page) -> int:
    """How many pixels of the saved image at `path` differ from the input `page`."""
    saved = cv2.imread(str(path))
    assert saved.shape[:2] == page.shape[:2], "the legend strip was drawn"
    return int((saved != cv2.cvtColor(page, cv2.COLOR_GRAY2BGR)).any(axis=2).sum())


def test_drawing_layers_can_be_turned_off(tmp_path, mnist, model):
    page = digit_page(mnist, 2, size=(96, 128))  # a digit whose grid cells fire
    cv2.imwrite(str(tmp_path / "page.png"), page)
    args = ["detect", str(tmp_path / "page.png"), "--model", str(model), "--save"]
    assert main([*args, str(tmp_path / "default")]) == 0
    saved = cv2.imread(str(tmp_path / "default" / "page.png"))
    assert saved.shape[1] > 128 and saved.shape[0] == 96  # the legend strip beside the frame
    assert saved[0, -1].tolist() == [32, 32, 32]  # the strip's dark grey
    changed = {}
    for name, options in {
        "legend off": ["--no-legend"],
        "grid off": ["--no-legend", "--no-grid"],
        "no scores": ["--no-legend", "--no-grid", "--hide-conf"],
        "wide lines": ["--no-legend", "--no-grid", "--line-width", "4"],
    }.items():
        assert main([*args, str(tmp_path / name), *options]) == 0
        changed[name] = changed_pixels(tmp_path / name / "page.png", page)
    assert changed["grid off"] > 0
    assert changed["legend off"] > changed["grid off"]  # the grid's tiles
    assert changed["no scores"] < changed["grid off"] < changed["wide lines"]


def test_stats_are_saved_only_when_asked(tmp_path, mnist, model):
    video = write_video(tmp_path / "clip.avi", mnist, frames=3)
    args = ["detect", str(video), "--model", str(model), "--no-legend", "--save"]
    heights = {}
    for name, options in {"default": [], "stats": ["--stats"]}.items():
        assert main([*args, str(tmp_path / name), *options]) == 0
        capture = cv2.VideoCapture(str(tmp_path / name / "clip.avi"))
        ok, frame = capture.read()
        assert ok
        heights[name] = frame.shape[0]
    assert heights["default"] == 48 and heights["stats"] > 48  # the bar below the frame


def window_size(title: str) -> tuple[int, int] | None:
    """Width and height of the X window named `title`, None while there is none."""
    info = run_x(["xwininfo", "-name", title]).stdout
    sizes = re.findall(r"^\s*(Width|Height): (\d+)$", info, re.MULTILINE)
    return (int(sizes[0][1]), int(sizes[1][1])) if len(sizes) == 2 else None


@pytest.mark.needs_display
@pytest.mark.usefixtures("x_display")
@pytest.mark.parametrize("kind", ["video", "image"])
def test_on_a_real_screen_the_window_fits_the_frame_and_closing_it_ends_the_run(
    tmp_path, mnist, model, kind
):
    """On Xvfb with a window manager: the window opens at the annotated frame's size, an
    image stays up, and closing the window as its title-bar X does ends the run with 0."""
    from convdet.runtime import Detector, LegendAnnotator, StatsAnnotator

    page = cv2.cvtColor(digit_page(mnist, 3, size=(240, 320)), cv2.COLOR_GRAY2BGR)
    if kind == "video":
        source = tmp_path / "clip.avi"
        writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
        for _frame in range(5):
            writer.write(page)
        writer.release()
        options = ["--loop", "0"]  # endless: only closing the window ends it
    else:
        source = tmp_path / "page.png"
        cv2.imwrite(str(source), page)
        options = []
    result = Detector(model)(page)
    expected = LegendAnnotator().annotate(page.copy(), result)
    if kind == "video":
        expected = StatsAnnotator(bar=True).annotate(expected, result)
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "convdet", "detect", str(source), "--model", str(model)]
    command += ["--show", "--json", str(out), *options]
    title = f"convdet {source}"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The window may show OpenCV's default size for a moment before the first frame
        # sizes it; on a busy machine long enough to be seen, so wait for the frame's size.
        wanted = (expected.shape[1], expected.shape[0])
        wait_for(lambda: window_size(title), "the window")
        wait_for(lambda: window_size(title) == wanted, f"the window at {wanted}", timeout=20)
        wait_for(lambda: out.is_file() and out.read_text(), "a record")
        time.sleep(2)
        assert process.poll() is None, "the run ended before the window was closed"
        assert run_x(["wmctrl", "-c", title]).returncode == 0
        stdout, stderr = process.communicate(timeout=60)
    finally:  # a failed check must not leave the endless run behind
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "error" not in stderr
    rows = records(out)
    assert rows and stdout.startswith(f"{len(rows)} {'frames' if kind == 'video' else 'image'}")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--conf", "2"], "--conf: expected at least 0 and at most 1, got 2"),
        (["--conf", "high"], "--conf: expected a number, got 'high'"),
        (["--scales", "1,-2"], "--scales: expected at least 0.05 and at most 8, got -2"),
        (["--vid-stride", "0"], "--vid-stride: expected at least 1"),
        (["--loop", "-1"], "--loop: expected at least 0"),
        (["--loop", "2"], "--loop applies to video files"),
        (["--threads", "two"], "--threads: expected an integer"),
        (["--invert", "maybe"], "--invert: expected one of auto, on, off"),
        (["--backend", "tensorrt"], "--backend: expected one of auto, onnx, tflite"),
        (["--backend", "tflite"], "--backend tflite runs .tflite models"),
        (["--save-interval", "3"], "--save-interval needs --save DIR"),
        (["--append"], "--append needs --json FILE"),
        (["--wait", "2"], "--wait needs --show"),
        (["--show", "--wait", "-1"], "--wait: expected at least 0"),
        (["--line-width", "0"], "--line-width: expected at least 1"),
        (["--progress-every", "soon"], "--progress-every: expected a number, got 'soon'"),
        (["--stats"], "--stats needs --save DIR"),
        (["--stats", "--no-stats", "--save", "{out}"], "--stats and --no-stats exclude each other"),
        (["--stats", "--save", "{out}"], "--stats applies to video and camera sources"),
        (["--json", "{existing}"], "already holds results; pass --append"),
        (["--json", "{page}", "--append"], "--json {page} is an input file"),
        (
            ["--save", "{out}", "--json", "{out}/page.png"],
            "is where --save writes an annotated image",
        ),
        (["--save", "{out}", "--json", "{out}"], "--json {out} is the --save folder"),
        (["--model", "{invalid}"], "cannot load ONNX model"),
        (["--model", "{missing}"], "model file not found"),
    ],
)
def test_command_errors_are_one_line_exit_2(tmp_path, mnist, model, capsys, options, message):
    page = tmp_path / "page.png"
    cv2.imwrite(str(page), digit_page(mnist, 6))
    (tmp_path / "existing.jsonl").write_text('{"source": "kept.png"}\n')
    (tmp_path / "invalid.onnx").write_text("not a model")
    paths = {
        "existing": tmp_path / "existing.jsonl",
        "invalid": tmp_path / "invalid.onnx",
        "missing": tmp_path / "missing.onnx",
        "page": page,
        "out": tmp_path / "out",
    }
    options = [option.format(**paths) for option in options]
    if "--model" not in options:
        options += ["--model", str(model)]
    before = {path: path.read_bytes() for path in tmp_path.iterdir()}
    assert main(["detect", str(page), *options]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("convdet detect: error: ")
    assert message.format(**paths) in err
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == before  # nothing written


@pytest.mark.parametrize(
    ("source", "json", "message"),
    [
        ("clip.avi", "out/clip.avi", "is where --save writes an annotated video"),
        ("clip.avi", "clip.avi", "is an input file"),
        ("list.txt", "list.txt", "is an input file"),
        ("list.txt", "out/page.png", "is where --save writes an annotated image"),
    ],
)
def test_json_never_names_an_input_or_another_output(
    tmp_path, mnist, model, capsys, source, json, message
):
    work = tmp_path / "work"
    work.mkdir()
    write_video(work / "clip.avi", mnist, frames=3)
    cv2.imwrite(str(work / "page.png"), digit_page(mnist, 1))
    (work / "list.txt").write_text("page.png\n")
    before = {path: path.read_bytes() for path in work.iterdir()}
    options = ["--save", str(work / "out"), "--json", str(work / json)]
    status = main(["detect", str(work / source), "--model", str(model), *options, "--append"])
    assert status == 2
    assert error_lines(capsys.readouterr().err) == [
        f"convdet detect: error: --json {work / json} {message}; "
        "choose another file for the records"
    ]
    assert {path: path.read_bytes() for path in work.iterdir()} == before


@pytest.mark.parametrize(
    ("options", "scales"),
    [
        ([], None),
        (["--scales", "auto"], None),
        (["--scales", "1"], (1.0,)),
        (["--scales", "2,1,0.5"], (2.0, 1.0, 0.5)),
    ],
)
def test_scales_default_to_the_pyramid_and_a_list_overrides_it(
    tmp_path, mnist, model, monkeypatch, options, scales
):
    import convdet.runtime as runtime

    seen = []

    class Recording(runtime.Detector):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs["scales"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(runtime, "Detector", Recording)
    cv2.imwrite(str(tmp_path / "page.png"), digit_page(mnist, 3))
    assert main(["detect", str(tmp_path / "page.png"), "--model", str(model), *options]) == 0
    assert seen == [scales]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing-folder", "source not found: missing-folder"),
        ("97", "cannot open camera 97"),
    ],
)
def test_missing_source_or_camera_is_one_line_exit_2(model, capsys, source, message):
    assert main(["detect", source, "--model", str(model)]) == 2
    assert capsys.readouterr().err == f"convdet detect: error: {message}\n"


@pytest.mark.usefixtures("ctrl_c")
@pytest.mark.parametrize(
    ("signum", "expected"), [(signal.SIGKILL, -9), (signal.SIGINT, 130), (signal.SIGTERM, 130)]
)
def test_interrupted_mid_batch_leaves_complete_records(tmp_path, mnist, model, signum, expected):
    folder = tmp_path / "many"
    folder.mkdir()
    page = cv2.imencode(".png", cv2.resize(digit_page(mnist, 7), (128, 96)))[1].tobytes()
    for index in range(400):
        (folder / f"{index:03d}.png").write_bytes(page)
    out = tmp_path / "out.jsonl"
    argv = [str(folder), "--model", str(model), "--json", str(out), "--io-threads", "1"]
    process = detect_process(argv, signum)  # waits on its last image for the signal
    stop_after_records(process, out, signum, records=3)
    _stdout, stderr = (text.decode() for text in process.communicate(timeout=60))
    assert process.returncode == expected, stderr
    rows = records(out)
    assert 3 <= len(rows) < 400, "the run was not interrupted mid-batch"
    in_order = [str(folder / f"{index:03d}.png") for index in range(len(rows))]
    assert [row["source"] for row in rows] == in_order
    if signum != signal.SIGKILL:
        assert stderr.splitlines()[-1] == "convdet detect: interrupted"


def avi_frames_on_disk(path: Path) -> int:
    """How many whole frame chunks ('00dc') the movi list of the AVI at `path` holds, walking
    chunk sizes (what a killed writer left on disk, whatever its headers say); 0 if not AVI."""
    data = path.read_bytes()
    movi = data.find(b"movi")
    if not data.startswith(b"RIFF") or movi < 0:
        return 0
    position, frames = movi + 4, 0
    while position + 8 <= len(data):
        (size,) = struct.unpack("<I", data[position + 4 : position + 8])
        end = position + 8 + size
        if end > len(data):
            break
        frames += data[position : position + 4] == b"00dc"
        position = end + (size & 1)
    return frames


def played_frames(path: Path) -> int:
    """How many frames a player (OpenCV's FFmpeg reader) decodes from the video at `path`."""
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_video_saved_by_a_stopped_run_plays_the_frames_written(tmp_path, model, signum):
    """A killed `detect clip.mp4 --save DIR` leaves a video that plays every frame on disk;
    SIGTERM and Ctrl-C still close it whole (its index counts the frames recorded)."""
    source = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    noise = np.random.default_rng(0).integers(0, 256, (10, 120, 160, 3), np.uint8)
    for frame in noise:  # noise: large JPEG frames, so the writer flushes within seconds
        writer.write(frame)
    writer.release()
    saved, out = tmp_path / "saved", tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "convdet", "detect", str(source), "--model", str(model)]
    command += ["--loop", "0", "--save", str(saved), "--json", str(out)]  # endless
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    videos: list[Path] = []
    while time.monotonic() < deadline and process.poll() is None:
        videos = list(saved.glob("clip.*"))
        if videos and videos[0].stat().st_size > 400_000:  # past the first buffer flush
            break
        time.sleep(0.05)
    process.send_signal(signum)
    _stdout, stderr = process.communicate(timeout=30)
    assert len(videos) == 1 and videos[0].stat().st_size > 400_000, stderr
    played = played_frames(videos[0])
    if signum == signal.SIGKILL:
        assert process.returncode == -9
        on_disk = avi_frames_on_disk(videos[0])
        assert played >= max(on_disk, 10), f"{videos[0].name}: {played} of {on_disk} played"
    else:
        assert process.returncode == 130, stderr
        rows = len(records(out))
        capture = cv2.VideoCapture(str(videos[0]))
        counted = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        # the signal may land between a frame's record and its video frame
        assert played == counted and played in (rows - 1, rows) and played >= 10


# A LiteRT-only board: an import hook refuses onnxruntime, and any OpenCV window call exits 99.
BOARD = """
import os, sys
from importlib.abc import MetaPathFinder

import cv2

class NoOnnxRuntime(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

def window(*_args, **_kwargs):
    os._exit(99)

sys.meta_path.insert(0, NoOnnxRuntime())
for name in ("imshow", "namedWindow", "waitKey", "pollKey", "destroyWindow", "destroyAllWindows"):
    setattr(cv2, name, window)
"""
RUN_CLI = """
from convdet.cli import main, printable
from convdet.runtime.jsonl import JsonlSink
status = main(sys.argv[1:])
assert "onnxruntime" not in sys.modules, "onnxruntime was imported"
sys.exit(status)
"""
# A camera that gives frame 0 at once, then one frame per line on stdin; end of stdin ends it.
STDIN_CAMERA = """
import numpy as np
import convdet.runtime.sources

class Camera:
    grabbed = 0
    def grab(self):
        self.grabbed += 1
        return self.grabbed == 1 or bool(sys.stdin.readline())
    def retrieve(self):
        return True, np.zeros((120, 160, 3), np.uint8)
    def release(self):
        pass

convdet.runtime.sources.open_capture = lambda target: Camera()
"""


def test_litert_only_board_runs_tflite_and_the_default_model(tmp_path, mnist, models_dir):
    from convdet.runtime.shipped import DEFAULT_ARCH

    page = tmp_path / "page.png"
    cv2.imwrite(str(page), cv2.resize(digit_page(mnist, 7), (128, 96)))
    tflite = f"{DEFAULT_ARCH}_int8.tflite"
    stdout = {}
    for name, argv in {
        "info": ["info", str(models_dir / tflite)],
        "default": ["detect", str(page), "--json", "-"],
        "int8": ["detect", str(page), "--model", tflite, "--json", "-"],
        "fp32": ["detect", str(page), "--model", "basic_fp32.tflite", "--json", "-"],
    }.items():
        command = [sys.executable, "-c", BOARD + RUN_CLI, *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{name}: {done.stderr}"
        stdout[name] = done.stdout
    assert "format: tflite" in stdout["info"]
    for name in ("default", "int8", "fp32"):
        assert [row["width"] for row in parse_records(stdout[name])] == [128]
    same = unstamped(stdout["default"]) == unstamped(stdout["int8"])
    assert same, "the default model is not the int8 TFLite one"


def read_line(process: subprocess.Popen, timeout: float = 60.0) -> dict:
    """The next stdout line of a running process as a record (fails if none comes in time)."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else b""
    if not line:
        process.kill()
        pytest.fail(f"no record on stdout within {timeout} s: {process.communicate()[1]!r}")
    return parse_records(line.decode())[0]


def test_headless_live_stream_flushes_each_record_to_stdout():
    command = [sys.executable, "-c", BOARD + STDIN_CAMERA + RUN_CLI, "detect", "0"]
    command += ["--model", "basic_int8.tflite", "--json", "-"]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        first = read_line(process)
        assert process.poll() is None, "the record came only when the run ended"
        process.stdin.write(b"next frame\n")
        process.stdin.flush()
        second = read_line(process)
        rest, stderr = process.communicate(timeout=60)  # closing stdin ends the stream
    assert [first["frame"], second["frame"]] == [0, 1]
    assert rest == b"", "stdout carries something besides records"
    assert process.returncode == 1, stderr
    assert b"0 stopped delivering frames after 2 frames" in stderr


SIGTERM_WHILE_LOADING = """
import os, signal, sys
import convdet.runtime as runtime

class Loading:
    def __init__(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # the service is stopped while the model loads

runtime.Detector = Loading
from convdet.cli import main
sys.exit(main(["detect", sys.argv[1], "--json", sys.argv[2]]))
"""


def test_sigterm_while_the_model_loads_ends_like_ctrl_c(tmp_path, mnist):
    page = tmp_path / "page.png"
    cv2.imwrite(str(page), digit_page(mnist, 1))
    child = subprocess.run(
        [sys.executable, "-c", SIGTERM_WHILE_LOADING, str(page), str(tmp_path / "out.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 130, child.stderr
    assert child.stderr == "convdet detect: interrupted\n"
