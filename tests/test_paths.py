"""Paths shared by sources and sinks: names OpenCV may be given, fresh --save folders and the
run folders sources skip."""

from __future__ import annotations

from pathlib import Path, PurePath

import pytest
from convdet.runtime.paths import fresh_folder, in_run_folders, opencv_path


def test_opencv_path_refuses_names_that_are_not_utf8():
    assert opencv_path(PurePath("runs/café.png")) == "runs/café.png"
    assert opencv_path("bad\udcffname.avi") is None  # byte 0xff, as Python decodes it


def test_fresh_folder_is_the_first_unused_of_the_numbered_names(tmp_path):
    out = tmp_path / "out"
    assert fresh_folder(out) == out  # missing
    out.mkdir()
    assert fresh_folder(out) == out  # empty
    (out / "page.png").touch()
    assert fresh_folder(out) == tmp_path / "out-2"
    (tmp_path / "out-2").mkdir()
    (tmp_path / "out-2" / "clip.mp4").touch()
    (tmp_path / "out-3").write_text("a file, not a folder")
    (tmp_path / "out-4").symlink_to(tmp_path / "nowhere")  # a dangling link is not unused
    assert fresh_folder(out) == tmp_path / "out-5"


def test_fresh_folder_numbers_the_folder_dot_means(tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    (here / "page.png").touch()
    monkeypatch.chdir(here)
    assert fresh_folder(Path(".")) == tmp_path / "here-2"


@pytest.mark.parametrize(
    ("relpath", "inside"),
    [
        ("out/page.png", True),
        ("out/sub/page.png", True),
        ("out-2/page.png", True),
        ("out-17/sub/page.png", True),
        ("out-x/page.png", False),
        ("outer/page.png", False),
        ("page.png", False),
        ("other/out/page.png", False),
    ],
)
def test_in_run_folders(tmp_path, relpath, inside):
    assert in_run_folders(tmp_path / "out")(tmp_path / relpath) is inside


def test_in_run_folders_follows_a_linked_save_folder(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    inside = in_run_folders(tmp_path / "link")
    assert inside(tmp_path / "real" / "page.png") and inside(tmp_path / "link-2" / "page.png")
    assert not inside(tmp_path / "real-2" / "page.png")
