"""What users hit first: a misspelt option, --version, several SOURCE arguments (an unquoted
glob), a reader that closes stdout early, camera device paths and camera size/FPS options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from convdet.runtime.sources import LiveSource, SourceError, is_video_device, resolve_sources
from test_detect_cli import unstamped
from test_sources import StandInCamera

from convdet.cli import main


@pytest.fixture
def pages(tmp_path: Path) -> Path:
    """A folder of four small pages with a bright square each (something to detect)."""
    folder = tmp_path / "small"
    folder.mkdir()
    for index in range(4):
        page = np.zeros((48, 64), np.uint8)
        page[10 : 10 + 20, 8 + 8 * index : 28 + 8 * index] = 255
        cv2.imwrite(str(folder / f"p{index}.png"), page)
    return folder


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["detect", "x.png", "--cof", "0.5"], "(did you mean --conf?)"),
        (["detect", "x.png", "--jsno", "-"], "(did you mean --json?)"),
        (["evaluate", "scenes", "--grupoing=peaks"], "(did you mean --grouping?)"),
    ],
)
def test_a_misspelt_option_gets_the_closest_one(capsys, argv, suggestion) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: convdet {argv[0]} ")
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"convdet {argv[0]}: error: unrecognized arguments: ")
    assert last.endswith(suggestion)


def test_an_unknown_word_gets_no_suggestion(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["info", "deep.onnx", "--zzzzzz"])
    assert "did you mean" not in capsys.readouterr().err


def test_version(capsys) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"convdet {version('convdet')}"


def test_several_sources_give_the_records_of_one_glob(pages, tmp_path, capsys) -> None:
    files = sorted(str(path) for path in pages.glob("*.png"))
    globbed, listed = tmp_path / "glob.jsonl", tmp_path / "files.jsonl"
    assert main(["detect", str(pages / "*.png"), "--model", "basic", "--json", str(globbed)]) == 0
    assert main(["detect", *files, "--model", "basic", "--json", str(listed)]) == 0
    assert unstamped(listed.read_text()) == unstamped(globbed.read_text())  # run ids differ
    assert [json.loads(line)["source"] for line in listed.read_text().splitlines()] == files
    mixed = tmp_path / "mixed.jsonl"
    assert main(["detect", files[0], str(pages), "--model", "basic", "--json", str(mixed)]) == 0
    sources = [json.loads(line)["source"] for line in mixed.read_text().splitlines()]
    assert sources == [files[0], *files]
    capsys.readouterr()


def test_a_video_or_camera_must_be_the_only_source(pages) -> None:
    with pytest.raises(SourceError, match=r"^0 is a camera or stream, which must be the only"):
        resolve_sources([str(pages), "0"])


def test_a_closed_stdout_ends_the_run_quietly(pages) -> None:
    command = [sys.executable, "-m", "convdet", "detect", str(pages), "--model", "basic"]
    for argv in ([*command, "--json", "-"], command):
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            process.stdout.close()  # as `| head` does once it has read enough
            stderr = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0, stderr
        assert "Broken pipe" not in stderr and "Traceback" not in stderr
        assert "error" not in stderr


def test_a_camera_device_path_is_a_camera(tmp_path) -> None:
    device = tmp_path / "video7"
    device.symlink_to("/dev/null")  # a character device named like a camera
    assert is_video_device(str(device)) and not is_video_device("/dev/null")
    assert not is_video_device(str(tmp_path))
    source = resolve_sources([str(device)], camera_size=(320, 240), camera_fps=15.0)
    assert isinstance(source, LiveSource) and source.target == str(device)


class SettableCamera(StandInCamera):
    """A stand-in camera that records the properties asked of it."""

    def __init__(self) -> None:
        super().__init__(frames=1, shape=(240, 320, 3))
        self.asked: dict[int, float] = {}

    def set(self, prop: int, value: float) -> bool:
        self.asked[prop] = value
        return True


def test_camera_size_and_fps_are_asked_of_the_capture() -> None:
    camera = SettableCamera()
    source = LiveSource(0, opener=lambda _target: camera, size=(1280, 720), fps=15.0)
    with source:
        pass
    assert camera.asked == {
        cv2.CAP_PROP_FRAME_WIDTH: 1280,
        cv2.CAP_PROP_FRAME_HEIGHT: 720,
        cv2.CAP_PROP_FPS: 15.0,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--camera-size", "640"], "--camera-size: expected WIDTHxHEIGHT like 640x480"),
        (["--camera-size", "0x480"], "--camera-size: expected sides of 1 to 16384 px"),
        (["--camera-fps", "0"], "--camera-fps: expected at least 0.1"),
        (["--camera-fps", "30"], "--camera-size and --camera-fps apply to cameras"),
    ],
)
def test_camera_options_are_checked(pages, capsys, options, message) -> None:
    assert main(["detect", str(pages), "--model", "basic", *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"convdet detect: error: {message}"), err
    assert len(err.strip().splitlines()) == 1
