"""Hostile input: huge, sparse, endless and NUL-named files, oversized videos, forged model
metadata and extreme scales each end as one error line (or a result), never a traceback or
gigabytes of memory, and a batch goes on past them."""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from convdet.runtime.annotate import as_bgr
from convdet.runtime.backends import open_backend
from convdet.runtime.detector import Detector
from convdet.runtime.modelinfo import ModelContractError, ModelInfo
from convdet.runtime.sources import (
    MAX_LIST_BYTES,
    ImageBatch,
    ImageError,
    LiveSource,
    SourceError,
    StreamStopped,
    ends_mid_packet,
    load_image,
    resolve_source,
)
from test_backends import tiny_onnx
from test_preprocess import mnist_scene
from test_sources import StandInCamera, png_chunk, write_video

from convdet.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOOD_METADATA = ModelInfo(
    (*"0123456789", "background"), background=10, stride=8, window=28, cell_offset=6.0
).to_metadata()


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk declaring `width` x `height` 8-bit gray pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)


def sparse(path: Path, head: bytes, size: int = 3 << 30) -> Path:
    """A file of `size` bytes that takes no disk space: `head`, then a hole."""
    with path.open("wb") as file:
        file.write(head)
        file.truncate(size)
    return path


CAPPED_LOADS = """
import resource, sys
from pathlib import Path
from convdet.runtime.sources import load_image
with open("/proc/self/status") as status:
    vm = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm * 1024 + (512 << 20),) * 2)
for name in sys.argv[1:]:
    try:
        load_image(Path(name))
    except Exception as error:
        print(type(error).__name__, error)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_huge_sparse_and_endless_files_are_refused_within_a_memory_cap(tmp_path) -> None:
    zeros = sparse(tmp_path / "zeros.png", b"")
    declared = sparse(tmp_path / "declared.png", png_header(4000, 3000))
    within = sparse(tmp_path / "within.png", png_header(100, 100))
    names = [str(zeros), str(declared), str(within), "/dev/zero"]
    done = subprocess.run(
        [sys.executable, "-c", CAPPED_LOADS, *names],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    too_big = (
        f"ImageError {3 << 30} bytes, more than an image within --max-pixels 40000000 "
        f"needs ({16 * 40_000_000 + (16 << 20)})"
    )
    assert done.stdout.splitlines() == [
        "ImageError not an image (unrecognised file header)",
        too_big,  # 12 megapixels declared, but 3 GB is more than such an image can hold
        too_big,
        "ImageError not a regular file (a folder, device or FIFO)",
    ]


def test_the_declared_size_is_checked_before_the_rest_is_read(tmp_path) -> None:
    big = sparse(tmp_path / "big.png", png_header(8000, 8000), size=200 << 20)
    with pytest.raises(ImageError, match="8000x8000 is 64000000 pixels, more than --max-pixels"):
        load_image(big)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    errors: list[str] = []

    def load() -> None:
        try:
            load_image(fifo)
        except ImageError as error:
            errors.append(str(error))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=5)
    if thread.is_alive():  # a reader blocked in open(): a writer releases it
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=5)
        pytest.fail("load_image waited on a FIFO")
    assert errors == ["not a regular file (a folder, device or FIFO)"]


def test_a_list_with_a_device_a_nul_byte_and_a_folder_goes_on_to_its_good_files(tmp_path) -> None:
    # (/dev/zero, read forever without the check, is tried under a memory cap above)
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.zeros((48, 64), np.uint8))
    (tmp_path / "folder.png").mkdir()  # fdopen raised IsADirectoryError, ending the batch
    listing = tmp_path / "list.txt"
    listing.write_text("/dev/null\nbad\x00name.png\nfolder.png\ngood.png\n", encoding="utf-8")
    source = resolve_source(str(listing))
    assert isinstance(source, ImageBatch)
    frames = list(source)
    assert [frame.error for frame in frames] == [
        "not a regular file (a folder, device or FIFO)",
        "unreadable: embedded null byte",
        "not a regular file (a folder, device or FIFO)",
        None,
    ]
    assert frames[3].image.shape == (48, 64)


def test_a_list_file_over_the_cap_or_not_regular_or_utf8_is_one_line_naming_it(
    tmp_path, model, monkeypatch, capsys
) -> None:
    huge = sparse(tmp_path / "huge.txt", b"page.png\n", size=MAX_LIST_BYTES + 1)
    fifo = tmp_path / "pipe.lst"
    os.mkfifo(fifo)  # read as a list, it would wait for a writer forever
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")  # ... and this one would never end at all
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"page.png\nna\xefve.png\n")
    not_regular = "not a regular file (a folder, device or FIFO)"
    for listing, why in [
        (
            huge,
            f"{MAX_LIST_BYTES + 1} bytes, more than the 67108864 a list may have (about a "
            "million paths)",
        ),
        (fifo, not_regular),
        (zero, not_regular),
        (latin, "not UTF-8 (a bad byte at offset 11)"),
    ]:
        assert main(["detect", str(listing), "--model", str(model)]) == 2
        assert capsys.readouterr().err == f"convdet detect: error: list file {listing}: {why}\n"
    cv2.imwrite(str(tmp_path / "page.png"), np.zeros((48, 64), np.uint8))
    monkeypatch.setattr("convdet.runtime.sources.MAX_LIST_BYTES", 100)
    at_cap = tmp_path / "at_cap.txt"
    at_cap.write_text("page.png\n" + "#" * 91, encoding="utf-8")  # 100 bytes: read
    assert [frame.error for frame in resolve_source(str(at_cap))] == [None]
    at_cap.write_text("page.png\n" + "#" * 92, encoding="utf-8")
    with pytest.raises(SourceError, match=r"at_cap\.txt: 101 bytes, more than the 100 a list"):
        resolve_source(str(at_cap))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def detect_failing_between(
    page: Path, failing: dict[str, str], last: str, model: Path, capsys
) -> None:
    """`convdet detect PAGE *FAILING LAST --json`, LAST giving PAGE's record again: exit 1, each
    of `failing` (SOURCE -> its error) named in one line on stderr, counted, and recorded in
    order between PAGE's two good records."""
    out = page.parent / "out.jsonl"
    sources = [str(page), *failing, last]
    assert main(["detect", *sources, "--model", str(model), "--json", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err == "".join(
        f"convdet detect: {spec}: {line}\n" for spec, line in failing.items()
    )
    assert captured.out.startswith(f"2 images processed; {len(failing)} failed;"), captured.out
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(row["source"], row.get("error")) for row in rows] == [
        (str(page), None),
        *failing.items(),
        (str(page), None),
    ]


def test_a_list_file_that_cannot_be_read_among_several_sources_is_that_sources_failure(
    tmp_path, model, monkeypatch, capsys
) -> None:
    cv2.imwrite(str(tmp_path / "page.png"), np.zeros((48, 64), np.uint8))
    good = tmp_path / "good.txt"
    good.write_text("page.png\n", encoding="utf-8")
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to("nowhere.txt")  # stopped the whole batch, exit status 2
    fifo = tmp_path / "pipe.lst"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"page.png\nna\xefve.png\n")
    huge = sparse(tmp_path / "huge.txt", b"page.png\n", size=MAX_LIST_BYTES + 1)
    locked = tmp_path / "locked.txt"
    locked.write_text("page.png\n", encoding="utf-8")
    real_open = os.open

    def refusing_open(path: object, *args: object) -> int:  # chmod 000 does not stop root
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    not_regular = "not a regular file (a folder, device or FIFO)"
    failures = {
        dangling: "unreadable: No such file or directory",
        fifo: not_regular,
        zero: not_regular,
        latin: "not UTF-8 (a bad byte at offset 11)",
        huge: f"{MAX_LIST_BYTES + 1} bytes, more than the 67108864 a list may have (about a "
        "million paths)",
        locked: "unreadable: Permission denied",
    }
    why = {
        str(path): f"list file not read: {reason}; its images are skipped"
        for path, reason in failures.items()
    }
    assert len(why) == 6
    detect_failing_between(tmp_path / "page.png", why, str(good), model, capsys)
    assert main(["detect", str(dangling), "--model", str(model)]) == 2  # alone: nothing to run
    assert capsys.readouterr().err == (
        f"convdet detect: error: list file {dangling}: {failures[dangling]}\n"
    )


def test_an_empty_folder_list_or_glob_among_several_sources_is_that_sources_failure(
    tmp_path, model, capsys
) -> None:
    cv2.imwrite(str(tmp_path / "page.png"), np.zeros((48, 64), np.uint8))
    empty = tmp_path / "empty"
    (empty / "inner").mkdir(parents=True)
    (empty / "inner" / "deep.png").write_bytes((tmp_path / "page.png").read_bytes())
    nothing = tmp_path / "nothing.txt"
    nothing.write_text("# no entries\n\n", encoding="utf-8")
    unmatched = str(tmp_path / "*.jpg")
    why = {
        str(empty): "no images (use --recursive to look in subfolders)",
        str(nothing): "no images",
        unmatched: "no images",
    }
    # each stopped the whole batch: "no images in ...", exit status 2
    page = tmp_path / "page.png"
    detect_failing_between(page, why, str(page), model, capsys)
    for spec in why:  # alone: the run would have nothing to do
        assert main(["detect", spec, "--model", str(model)]) == 2
        err = capsys.readouterr().err
        assert err == f"convdet detect: error: no images in {spec}{why[spec][len('no images') :]}\n"


def test_a_symlink_loop_with_save_is_one_line_not_a_traceback(tmp_path, model, capsys) -> None:
    (tmp_path / "a.png").symlink_to("b.png")
    (tmp_path / "b.png").symlink_to("a.png")  # Path.resolve() raised RuntimeError on these
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\n", encoding="utf-8")
    save = ["--model", str(model), "--save", str(tmp_path / "out")]
    assert main(["detect", str(listing), *save]) == 1
    why = "unreadable: Too many levels of symbolic links"
    assert capsys.readouterr().err == f"convdet detect: {tmp_path / 'a.png'}: {why}\n"
    assert main(["detect", str(tmp_path / "a.png"), *save]) == 2  # alone: the run has nothing
    assert capsys.readouterr().err == f"convdet detect: error: {tmp_path / 'a.png'}: {why}\n"


def test_a_video_over_max_pixels_is_refused_before_decoding(tmp_path, mnist) -> None:
    video = write_video(tmp_path / "clip.avi", mnist, frames=2)
    with (
        pytest.raises(SourceError, match=r"64x48 frames are 3072 pixels, more than --max-pix"),
        resolve_source(str(video), max_pixels=1000),
    ):
        pass
    with resolve_source(str(video), max_pixels=3072) as source:
        assert len(list(source)) == 2


class GrowingCamera(StandInCamera):
    """A stand-in camera whose properties say `declared` (width, height; a capture's `get`)
    and whose frames are (48, 64, 3) until frame `grows_at`, then (3000, 4000, 3)."""

    def __init__(self, declared: tuple[int, int] = (64, 48), grows_at: int = 10**9) -> None:
        super().__init__(frames=50, period=0.001, shape=(48, 64, 3))
        self.declared, self.grows_at = declared, grows_at

    def get(self, prop: int) -> float:
        sizes = {
            cv2.CAP_PROP_FRAME_WIDTH: self.declared[0],
            cv2.CAP_PROP_FRAME_HEIGHT: self.declared[1],
        }
        return float(sizes.get(prop, 0))

    def set(self, prop: int, value: float) -> bool:
        return True

    def retrieve(self) -> tuple[bool, np.ndarray]:
        big = self.grabbed > self.grows_at
        return True, np.zeros((3000, 4000, 3) if big else self.shape, np.uint8)


def test_a_camera_over_max_pixels_is_refused_when_it_opens(tmp_path, model, monkeypatch, capsys):
    camera = GrowingCamera(declared=(64, 48))
    with pytest.raises(SourceError, match=r"^camera 0: 64x48 frames are 3072 pixels, more than "):
        LiveSource(0, opener=lambda _target: camera, max_pixels=3071).__enter__()
    assert camera.released and camera.grabbed == 0  # refused before a frame was read
    with LiveSource(0, opener=lambda _target: GrowingCamera(), max_pixels=3072) as source:
        assert next(iter(source)).image.shape == (48, 64, 3)
    monkeypatch.setattr("convdet.runtime.sources.open_capture", lambda _target: GrowingCamera())
    out = tmp_path / "out.jsonl"
    command = ["detect", "0", "--model", str(model), "--json", str(out), "--max-pixels", "1000"]
    assert main(command) == 2
    assert capsys.readouterr().err == (
        "convdet detect: error: camera 0: 64x48 frames are 3072 pixels, more than "
        "--max-pixels 1000\n"
    )
    assert not out.exists()


def test_a_live_frame_over_max_pixels_stops_the_source_in_one_line(
    tmp_path, model, monkeypatch, capsys
):
    # properties that say nothing (0x0, as some streams until the first frame), then a frame
    # of 12 megapixels: refused before the detector sees it
    camera, shapes = GrowingCamera((0, 0), grows_at=3), []
    stopped = pytest.raises(StreamStopped, match=r"^camera 0: frame 3 is 4000x3000, 12000000 ")
    with stopped, LiveSource(0, opener=lambda _target: camera, max_pixels=10**6) as source:
        shapes.extend(frame.image.shape for frame in source)
    assert shapes and set(shapes) == {(48, 64, 3)} and camera.released
    monkeypatch.setattr(
        "convdet.runtime.sources.open_capture", lambda _target: GrowingCamera((0, 0), grows_at=3)
    )
    out = tmp_path / "out.jsonl"
    command = ["detect", "rtsp://u:pw@cam/live", "--model", str(model), "--json", str(out)]
    assert main([*command, "--max-pixels", "1000000"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "convdet detect: stream rtsp://u:***@cam/live: frame 3 is 4000x3000, 12000000 pixels, "
        "more than --max-pixels 1000000; stopped\n"
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows and all((row["width"], row["height"]) == (64, 48) for row in rows)
    assert all(row["frame"] < 3 for row in rows)


def test_a_camera_index_beyond_c_int_is_a_source_error() -> None:
    with pytest.raises(SourceError, match=r"^cannot open camera 2147483648$"):
        resolve_source("2147483648").__enter__()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("window", "100000", r"window: expected an integer in 1\.\.512, got 100000"),
        ("stride", "1000000000", r"stride: expected an integer in 1\.\.64, got 1000000000"),
        ("cell_offset", "NaN", r"cell_offset: expected a number in -28\.\.28, got nan"),
        ("input_range", "[0, Infinity]", r"input_range: expected a number in 0\.\.1e\+06"),
        ("input_range", "[1, 1]", r"input_range: expected low < high"),
        ("fixed_input", "[1, 100000]", r"fixed_input: expected an integer in 1\.\.16384"),
        ("classifier_cell", "true", r"classifier_cell: expected an integer"),
        ("classifier_padded", "1", r"classifier_padded: expected true or false, got 1"),
        ("test_accuracy", '{"digit_accuracy": NaN}', r"test_accuracy digit_accuracy: expected"),
        ("classes", '["a", ""]', r"classes: expected names of 1 to 100 characters"),
        ("classes", "[" + ", ".join(['"a"'] * 2000) + "]", r"classes: expected 2 to 1024 names"),
        ("background", "11", r"background: expected an integer in 0\.\.10, got 11"),
    ],
)
def test_metadata_out_of_range_is_refused_naming_the_model(key, value, message) -> None:
    with pytest.raises(ModelContractError, match=rf"^m\.onnx: bad metadata, {message}"):
        ModelInfo.from_metadata({**GOOD_METADATA, key: value}, source="m.onnx")


def test_forged_metadata_in_an_onnx_file_is_one_error_naming_it(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    path = tiny_onnx(tmp_path / "forged.onnx")
    model = onnx.load(path)
    next(prop for prop in model.metadata_props if prop.key == "window").value = "100000"
    onnx.save(model, path)
    with pytest.raises(ModelContractError, match=r"forged\.onnx: bad metadata, window: expected"):
        open_backend(path)


@pytest.mark.parametrize("dtype", ["DOUBLE", "UINT8"])
def test_onnx_inputs_other_than_float32_are_refused(tmp_path, dtype) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    path = tiny_onnx(tmp_path / "typed.onnx")
    model = onnx.load(path)
    model.graph.input[0].name = "raw"
    model.graph.input[0].type.tensor_type.elem_type = getattr(TensorProto, dtype)
    cast = helper.make_node("Cast", ["raw"], ["image"], to=TensorProto.FLOAT)
    model.graph.node.insert(0, cast)
    onnx.save(model, path)
    shown = {"DOUBLE": "float64", "UINT8": "uint8"}[dtype]
    with pytest.raises(ModelContractError, match=rf"expected a float32 input, got raw {shown} "):
        open_backend(path)


def test_scales_are_bounded_and_tiny_frames_skip_scales_below_one_cell(model) -> None:
    for scales in [(0.001,), (1.0, 100.0)]:
        with pytest.raises(ValueError, match=r"numbers in 0\.05\.\.8, got"):
            Detector(model, scales=scales)
    detector = Detector(model, scales=(0.5, 1.0))
    assert detector.scales_for(240, 320) == (0.5, 1.0)
    assert detector.scales_for(12, 320) == (1.0,)  # 6 px at 0.5: under one 8 px cell
    assert detector.scales_for(1, 1) == (1.0,)  # none fits: the largest still runs
    assert Detector(model, scales=(0.05,)).scales_for(1, 1) == (0.05,)
    for size in [(1, 1), (1, 200), (12, 12)]:
        result = detector(np.zeros(size, np.uint8))
        assert len(result.detections) == 0
    assert len(Detector(model, scales=(0.05,))(np.zeros((1, 1), np.uint8)).detections) == 0


def test_cli_tiny_images_extreme_scales_and_a_huge_camera_index(tmp_path, model, capsys):
    folder = tmp_path / "tiny"
    folder.mkdir()
    cv2.imwrite(str(folder / "dot.png"), np.zeros((1, 1), np.uint8))
    assert main(["detect", str(folder), "--model", str(model), "--scales", "0.5,1"]) == 0
    assert "dot.png: 1x1, no digits" in capsys.readouterr().out
    for scales in ["0.001", "100"]:
        assert main(["detect", str(folder), "--model", str(model), "--scales", scales]) == 2
        assert capsys.readouterr().err == (
            f"convdet detect: error: --scales: expected at least 0.05 and at most 8, got {scales}\n"
        )
    assert main(["detect", "2147483648", "--model", str(model)]) == 2
    assert capsys.readouterr().err == "convdet detect: error: cannot open camera 2147483648\n"


def test_cli_refuses_an_oversized_video_in_one_line(tmp_path, mnist, model, capsys):
    video = write_video(tmp_path / "clip.avi", mnist, frames=2)
    assert main(["detect", str(video), "--model", str(model), "--max-pixels", "1000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3072 pixels, more than --max-pixels 1000" in err


def test_a_frame_failing_in_any_way_is_that_frames_failure(tmp_path, model, monkeypatch, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((50, 60), np.uint8))
    cv2.imwrite(str(folder / "b.png"), np.zeros((48, 64), np.uint8))
    real = Detector.__call__

    def out_of_memory_on_a(self: Detector, frame: np.ndarray):
        if frame.shape == (50, 60):
            raise MemoryError
        return real(self, frame)

    monkeypatch.setattr(Detector, "__call__", out_of_memory_on_a)
    assert main(["detect", str(folder), "--model", str(model)]) == 1
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if "a.png" in line] == [
        f"convdet detect: {folder / 'a.png'}: MemoryError"
    ]
    assert "b.png: 64x48, no digits" in captured.out
    assert "1 image processed; 1 failed" in captured.out


def test_a_header_past_the_first_megabyte_is_still_read(tmp_path) -> None:
    image = np.arange(37 * 53, dtype=np.uint8).reshape(37, 53)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    data = encoded.tobytes()
    comment = b"x" * 60000  # COM segments (each under 64 KiB) before the frame header
    padding = (b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment) * 20
    late = tmp_path / "late.jpg"
    late.write_bytes(data[:2] + padding + data[2:])
    assert late.stat().st_size > 1 << 20
    assert load_image(late).shape[:2] == (37, 53)
    with pytest.raises(ImageError, match="53x37 is 1961 pixels, more than"):
        load_image(late, max_pixels=1000)


@pytest.mark.parametrize("sources", [[""], ["page.png", ""]])
def test_an_empty_source_is_one_line_exit_2_not_the_current_folder(
    tmp_path, model, monkeypatch, capsys, sources
):
    cv2.imwrite(str(tmp_path / "page.png"), np.zeros((48, 64), np.uint8))
    monkeypatch.chdir(tmp_path)  # without the check, "" ran over this folder and exited 0
    assert main(["detect", *sources, "--model", str(model)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "convdet detect: error: empty SOURCE ''; name an image, folder, glob, list, video or "
        "camera\n"
    )
    assert captured.out == ""


def test_threads_beyond_the_bound_are_one_line_exit_2(tmp_path, model, capsys) -> None:
    cv2.imwrite(str(tmp_path / "page.png"), np.zeros((48, 64), np.uint8))
    page = str(tmp_path / "page.png")
    for threads in ["257", "1000000000"]:
        assert main(["detect", page, "--model", str(model), "--threads", threads]) == 2
        error = f"--threads: expected at least 1 and at most 256, got {threads}"
        assert capsys.readouterr().err == f"convdet detect: error: {error}\n"
    assert main(["detect", page, "--model", str(model), "--threads", "256"]) == 0


@pytest.mark.parametrize(
    "name", ["d" * 247 + ".png", "数" * 82 + ".png"], ids=["251-bytes", "250-bytes-utf8"]
)
def test_a_name_near_the_255_byte_limit_is_saved(tmp_path, model, capsys, name) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "page.png"), np.zeros((48, 64), np.uint8))
    (folder / "page.png").rename(folder / name)  # OpenCV's own writer is not the test here
    out = tmp_path / "out"
    assert main(["detect", str(folder), "--model", str(model), "--save", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert [path.name for path in out.iterdir()] == [name]  # saved, no temporary file left


def test_a_video_without_frames_is_a_failed_input(tmp_path, mnist, model, capsys) -> None:
    video = write_video(tmp_path / "empty.avi", mnist, frames=0)
    out = tmp_path / "out.jsonl"
    assert main(["detect", str(video), "--model", str(model), "--json", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"convdet detect: {video}: no frames in this video\n"
    assert captured.out.startswith("0 frames processed; 1 failed;")
    record = json.loads(out.read_text(encoding="utf-8"))
    assert (record["frame"], record["error"]) == (None, "no frames in this video")


@pytest.mark.parametrize(
    ("name", "fourcc", "how"),
    [
        ("clip.avi", "MJPG", "of 40 frames, "),
        ("clip.mkv", "MJPG", r"frames, at [12]\.\d s of the 4\.0 s its container declares, "),
        ("clip.webm", "VP80", r"frames, at [12]\.\d s of the 4\.0 s its container declares, "),
        ("clip.ts", "mp4v", "frames, inside its last MPEG packet, "),
        ("clip.mpg", "mp4v", "frames, inside its last MPEG packet, "),
    ],
)
def test_a_cut_video_keeps_its_frames_and_is_reported_after_them(
    tmp_path, mnist, model, capsys, name, fourcc, how
) -> None:
    whole = write_video(tmp_path / name, mnist, frames=40, fourcc=fourcc)
    assert main(["detect", str(whole), "--model", str(model)]) == 0  # a whole file is no failure
    assert capsys.readouterr().err == ""
    data = whole.read_bytes()
    video = tmp_path / f"cut-{name}"
    video.write_bytes(data[: len(data) // 2 + 101])  # within a packet: played as whole before
    out = tmp_path / f"{name}.jsonl"
    assert main(["detect", str(video), "--model", str(model), "--json", str(out)]) == 1
    err = capsys.readouterr().err
    read = re.fullmatch(
        rf"convdet detect: {re.escape(str(video))}: ended after (\d+) {how}the file is cut\n",
        err,
    )
    assert read is not None, err
    frames = int(read.group(1))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert 0 < frames < 40 and [row["frame"] for row in rows] == list(range(frames + 1))
    assert [row.get("error") for row in rows] == [None] * frames + [err.split(": ", 2)[-1][:-1]]


def test_an_mpeg_stream_cut_on_a_packet_boundary_cannot_be_told_from_a_whole_one(
    tmp_path, mnist
) -> None:
    transport = write_video(tmp_path / "clip.ts", mnist, frames=40, fourcc="mp4v").read_bytes()
    assert len(transport) % 188 == 0 and ends_mid_packet(tmp_path / "clip.ts") is False
    for cut in (188 * 100 + 1, 188 * 100 + 187, len(transport) - 5):
        (tmp_path / "cut.ts").write_bytes(transport[:cut])
        assert ends_mid_packet(tmp_path / "cut.ts"), cut
    (tmp_path / "cut.ts").write_bytes(transport[: 188 * 100])  # as a whole, shorter stream
    assert ends_mid_packet(tmp_path / "cut.ts") is False
    m2ts = b"".join(bytes(4) + transport[i : i + 188] for i in range(0, len(transport), 188))
    (tmp_path / "m2ts.ts").write_bytes(m2ts)  # 192-byte packets (a timestamp before each)
    assert ends_mid_packet(tmp_path / "m2ts.ts") is False
    (tmp_path / "m2ts.ts").write_bytes(m2ts[:-100])
    assert ends_mid_packet(tmp_path / "m2ts.ts")
    program = write_video(tmp_path / "clip.mpg", mnist, frames=40, fourcc="mp4v").read_bytes()
    for data, cut in [
        (program, False),
        (program[:-1], True),
        (program + b"\x00\x00\x01\xb9", False),
    ]:
        (tmp_path / "p.mpg").write_bytes(data)
        assert ends_mid_packet(tmp_path / "p.mpg") is cut
    (tmp_path / "es.mpg").write_bytes(b"\x00\x00\x01\xb3" + bytes(100))  # no packs: no claim
    assert ends_mid_packet(tmp_path / "es.mpg") is False


def refuse_listing(monkeypatch, locked: Path) -> None:
    """Make os.scandir refuse `locked` (chmod 000 does not stop root, so tests do it here)."""
    real = os.scandir

    def scandir(path: object = ".") -> object:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unlistable_subfolder_is_reported_once_and_counted_failed(
    tmp_path, model, monkeypatch, capsys
) -> None:
    folder = tmp_path / "scans"
    locked = folder / "locked"
    locked.mkdir(parents=True)
    for path in [folder / "a.png", locked / "b.png", folder / "z.png"]:
        cv2.imwrite(str(path), np.zeros((48, 64), np.uint8))
    refuse_listing(monkeypatch, locked)
    out = tmp_path / "out.jsonl"
    command = ["detect", str(folder), "--recursive", "--model", str(model), "--json", str(out)]
    assert main(command) == 1
    captured = capsys.readouterr()
    why = "cannot list this folder (Permission denied); its images are skipped"
    assert captured.err == f"convdet detect: {locked}: {why}\n"
    assert captured.out.startswith("2 images processed; 1 failed;")
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(row["source"], row.get("error")) for row in rows] == [
        (str(folder / "a.png"), None),
        (str(locked), why),
        (str(folder / "z.png"), None),
    ]


@pytest.mark.parametrize("pattern", ["**/*.png", "*/*.png"])
def test_a_glob_reports_each_folder_it_cannot_list_once(
    tmp_path, model, monkeypatch, capsys, pattern
) -> None:
    folder = tmp_path / "scans"
    locked = folder / "locked"
    (folder / "open").mkdir(parents=True)
    locked.mkdir()
    for path in [folder / "open" / "a.png", locked / "b.png", folder / "z.png"]:
        cv2.imwrite(str(path), np.zeros((48, 64), np.uint8))
    refuse_listing(monkeypatch, locked)  # pathlib's glob skipped it silently, exit status 0
    out = tmp_path / "out.jsonl"
    assert main(["detect", str(folder / pattern), "--model", str(model), "--json", str(out)]) == 1
    captured = capsys.readouterr()
    why = "cannot list this folder (Permission denied); its images are skipped"
    assert captured.err == f"convdet detect: {locked}: {why}\n"  # ** lists it twice: one line
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    matched = [folder / "open" / "a.png", *([folder / "z.png"] if pattern[:2] == "**" else [])]
    assert [(row["source"], row.get("error")) for row in rows] == sorted(
        [(str(locked), why), *((str(path), None) for path in matched)]
    )
    assert " processed; 1 failed;" in captured.out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_folder_and_glob_entries_that_are_not_files_are_their_own_failures(
    tmp_path, model, capsys
) -> None:
    folder = tmp_path / "scans"
    (folder / "x.png").mkdir(parents=True)  # a folder named like an image stays a folder
    cv2.imwrite(str(folder / "good.png"), np.zeros((48, 64), np.uint8))
    cv2.imwrite(str(folder / "x.png" / "inner.png"), np.zeros((48, 64), np.uint8))
    os.mkfifo(folder / "f.png")
    (folder / "d.png").symlink_to("nowhere.png")
    (folder / "l.png").symlink_to("l.png")
    failures = {
        "d.png": "unreadable: No such file or directory",
        "f.png": "not a regular file (a folder, device or FIFO)",
        "l.png": "unreadable: Too many levels of symbolic links",
    }
    flat = sorted([*failures, "good.png"])  # the three failures were skipped silently before
    deep = [*flat, "x.png/inner.png"]
    for sources, names in [
        ([str(folder)], flat),
        ([str(folder), "--recursive"], deep),
        ([str(folder / "*.png")], flat),
        ([str(folder / "**" / "*.png")], deep),
    ]:
        out = tmp_path / "out.jsonl"
        out.unlink(missing_ok=True)
        assert main(["detect", *sources, "--model", str(model), "--json", str(out)]) == 1
        err = capsys.readouterr().err
        assert err == "".join(
            f"convdet detect: {folder / name}: {why}\n" for name, why in failures.items()
        ), sources
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [(row["source"], row.get("error")) for row in rows] == [
            (str(folder / name), failures.get(name)) for name in names
        ], sources


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_dangling_link_among_several_sources_is_that_inputs_failure(
    tmp_path, model, capsys
) -> None:
    # scans/*.png expanded by the shell: what exists among the files but cannot be read is
    # that file's failure, as in the quoted glob; a name that does not exist is still a typo
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.zeros((48, 64), np.uint8))
    fifo, dangling = tmp_path / "f.png", tmp_path / "d.png"
    os.mkfifo(fifo)
    dangling.symlink_to("nowhere.png")  # stopped the batch: "source not found"
    not_regular = "not a regular file (a folder, device or FIFO)"
    out = tmp_path / "out.jsonl"
    several = [str(dangling), str(fifo), str(good), "/dev/zero"]
    assert main(["detect", *several, "--model", str(model), "--json", str(out)]) == 1
    reasons = ["unreadable: No such file or directory", not_regular, None, not_regular]
    expected = list(zip(several, reasons, strict=True))
    assert capsys.readouterr().err == "".join(
        f"convdet detect: {name}: {why}\n" for name, why in expected if why
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(row["source"], row.get("error")) for row in rows] == expected
    assert main(["detect", str(good), str(tmp_path / "typo.png"), "--model", str(model)]) == 2
    assert capsys.readouterr().err == (
        f"convdet detect: error: source not found: {tmp_path / 'typo.png'}\n"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_lone_source_that_is_no_regular_file_is_refused_saying_why(
    tmp_path, model, capsys
) -> None:
    fifo, dangling = tmp_path / "f.png", tmp_path / "d.png"
    os.mkfifo(fifo)
    dangling.symlink_to("nowhere.png")
    not_regular = "not a regular file (a folder, device or FIFO)"
    missing = "unreadable: No such file or directory"
    for alone, why in [("/dev/zero", not_regular), (fifo, not_regular), (dangling, missing)]:
        assert main(["detect", str(alone), "--model", str(model)]) == 2  # was "source not found"
        assert capsys.readouterr().err == f"convdet detect: error: {alone}: {why}\n"


def test_12_bit_data_in_16_bit_files_detects_as_its_8_bit_version(tmp_path, mnist, model, capsys):
    page = 255 - mnist_scene(mnist["x_test"][4:8])  # dark ink on paper, 8-bit
    twelve = ((page.astype(np.uint32) * 4095 + 127) // 255).astype(np.uint16)  # 0..4095
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a8.png"), page)
    cv2.imwrite(str(folder / "b12.png"), twelve)
    cv2.imwrite(str(folder / "c12.tif"), twelve)
    out = tmp_path / "out.jsonl"
    assert main(["detect", str(folder), "--model", str(model), "--json", str(out)]) == 0
    found = [
        [(d["label"], d["box"], round(d["score"], 2)) for d in json.loads(line)["detections"]]
        for line in out.read_text(encoding="utf-8").splitlines()
    ]
    assert len(found[0]) >= 3 and found[1] == found[0] and found[2] == found[0]  # of 4 digits
    drawn = as_bgr(twelve).astype(int) - cv2.cvtColor(page, cv2.COLOR_GRAY2BGR)
    assert np.abs(drawn).max() <= 1  # annotated frames show 12-bit data as bright too
    full = as_bgr(page.astype(np.uint16) * 257)  # data using all 16 bits: 65535 is white
    np.testing.assert_array_equal(full, cv2.cvtColor(page, cv2.COLOR_GRAY2BGR))


def test_float16_frames_detect_as_float32_and_nan_scales_are_refused(mnist, model) -> None:
    page = cv2.cvtColor(255 - mnist_scene(mnist["x_test"][:4]), cv2.COLOR_GRAY2BGR)
    detector = Detector(model)
    expected = detector(page.astype(np.float32) / 255).detections
    assert len(expected) > 0
    for frame in [page.astype(np.float16) / 255, page[..., 0].astype(np.float16) / 255]:
        found = detector(frame).detections
        np.testing.assert_array_equal(found.class_id, expected.class_id)
        np.testing.assert_allclose(found.xyxy, expected.xyxy, atol=1.0)
    for scales in [[float("nan")], (1.0, float("nan"))]:
        with pytest.raises(ValueError, match=r"^scales: expected 'auto' or one or more numbers"):
            Detector(model, scales=scales)


@pytest.mark.parametrize("where", ["record", "drawing"])
def test_after_ctrl_c_the_summary_counts_the_records_written(
    tmp_path, model, monkeypatch, capsys, where
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(5):
        cv2.imwrite(str(folder / f"{index}.png"), np.zeros((48, 64), np.uint8))
    from convdet.runtime import BoxAnnotator
    from convdet.runtime.jsonl import JsonlSink

    # Ctrl-C lands in the third image's record write, or after it, while its frame is drawn
    target, name = (JsonlSink, "write") if where == "record" else (BoxAnnotator, "annotate")
    real, calls = getattr(target, name), []

    def interrupted(self: object, *args: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(target, name, interrupted)
    out = tmp_path / "out.jsonl"
    command = ["detect", str(folder), "--model", str(model), "--json", str(out)]
    assert main([*command, "--save", str(tmp_path / "saved"), "--io-threads", "0"]) == 130
    written = len(out.read_text(encoding="utf-8").splitlines())
    assert written == (2 if where == "record" else 3)
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith(f"{written} images processed;"), summary


@pytest.mark.usefixtures("ctrl_c")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("third", ["good", "bad"])
def test_a_signal_between_a_record_and_its_count_is_held_until_both_are_done(
    tmp_path, model, monkeypatch, capsys, signum, third
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(5):
        cv2.imwrite(str(folder / f"{index}.png"), np.zeros((48, 64), np.uint8))
    if third == "bad":
        (folder / "2.png").write_bytes(b"not an image")
    from convdet.runtime.jsonl import JsonlSink

    real, calls = JsonlSink.write, []

    def signalled(self: JsonlSink, record: dict) -> None:
        real(self, record)
        calls.append(1)
        if len(calls) == 3:  # the third record is on disk, its count not yet taken
            signal.raise_signal(signum)

    monkeypatch.setattr(JsonlSink, "write", signalled)
    out = tmp_path / "out.jsonl"
    command = ["detect", str(folder), "--model", str(model), "--json", str(out)]
    assert main([*command, "--io-threads", "0"]) == 130
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    summary = capsys.readouterr().out.splitlines()[-1]
    counted = "2 images processed; 1 failed;" if third == "bad" else "3 images processed;"
    assert summary.startswith(counted), summary


@pytest.mark.usefixtures("ctrl_c")
def test_a_second_signal_ends_a_record_write_that_does_not_return(
    tmp_path, model, monkeypatch, capsys
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index}.png"), np.zeros((48, 64), np.uint8))
    from convdet.runtime.jsonl import JsonlSink

    real, calls, returned = JsonlSink.write, [], []

    def blocked(self: JsonlSink, record: dict) -> None:
        calls.append(1)
        if len(calls) == 2:  # a write stuck on a pipe nobody reads: a second Ctrl-C ends it
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
            returned.append(1)
            return
        real(self, record)

    monkeypatch.setattr(JsonlSink, "write", blocked)
    out = tmp_path / "out.jsonl"
    command = ["detect", str(folder), "--model", str(model), "--json", str(out)]
    assert main([*command, "--io-threads", "0"]) == 130
    assert not returned  # ended inside the write, not after it
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("1 image processed;")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


@pytest.mark.parametrize(
    ("name", "keep", "code", "line"),
    [
        ("cut.mkv", 0.5, 1, r"[^\n]+ the file is cut"),  # FFmpeg: "File ended prematurely"
        ("head.avi", 64, 2, "cannot open video"),  # OpenCV's MJPEG reader: "Unexpected element"
    ],
)
def test_no_video_library_prints_lines_of_its_own_on_a_broken_video(
    tmp_path, mnist, model, name, keep, code, line
) -> None:
    video = tmp_path / name
    data = write_video(tmp_path / f"whole{video.suffix}", mnist, frames=40).read_bytes()
    video.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    command = [sys.executable, "-m", "convdet", "detect", str(video), "--model", str(model)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == code
    named = re.escape(str(video))
    assert re.fullmatch(rf"convdet detect: (error: {line} {named}|{named}: {line})\n", done.stderr)


def test_a_jpeg_is_whole_when_its_markers_reach_the_end_marker_whatever_follows(
    tmp_path, mnist
) -> None:
    page = cv2.cvtColor(255 - mnist_scene(mnist["x_test"][:4]), cv2.COLOR_GRAY2BGR)
    baseline = cv2.imencode(".jpg", page)[1].tobytes()
    progressive = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    restarts = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_RST_INTERVAL, 1])[1].tobytes()
    thumbnail = cv2.imencode(".jpg", page[::4, ::4])[1].tobytes()
    app1 = b"Exif\x00\x00" + thumbnail  # a whole JPEG inside a segment, its FF D9 included
    with_thumbnail = baseline[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    with_thumbnail += baseline[2:]
    whole = {
        "baseline": baseline,
        "progressive": progressive,
        "restarts": restarts,
        "thumbnail": with_thumbnail,
        "padded": baseline + b"\x00" * 16,
        "trailer": baseline + b"\x00\x00\x00\x18ftypmp42" + bytes(64),  # a motion photo's video
    }
    for name, data in whole.items():  # the trailer was refused as "truncated"
        (tmp_path / f"{name}.jpg").write_bytes(data)
        assert load_image(tmp_path / f"{name}.jpg").shape == (120, 200, 3), name
    for name, data in whole.items():
        if name in ("padded", "trailer"):
            continue
        for cut in (len(data) // 2, len(data) - 2):
            (tmp_path / "cut.jpg").write_bytes(data[:cut])
            with pytest.raises(ImageError, match=r"^truncated JPEG \(no end-of-image marker\)"):
                load_image(tmp_path / "cut.jpg")


def test_a_list_saved_with_a_byte_order_mark_and_crlf_reads_its_first_entry(tmp_path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 64), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((48, 64), np.uint8))
    listing = tmp_path / "list.txt"
    listing.write_bytes("\ufeffa.png\r\nb.png\r\n".encode())  # as Notepad saves it
    frames = list(resolve_source(str(listing)))
    assert [(Path(frame.source).name, frame.error) for frame in frames] == [
        ("a.png", None),  # was "\ufeffa.png": unreadable, No such file or directory
        ("b.png", None),
    ]


@pytest.mark.parametrize("outputs", [["--save", "out"], ["--json", "out.jsonl", "--append"]])
def test_a_nul_byte_in_a_list_entry_is_that_entrys_failure_with_any_output(
    tmp_path, model, capsys, outputs
) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 64), np.uint8))
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\nb\x00c.png\n", encoding="utf-8")
    (tmp_path / "out.jsonl").write_text("", encoding="utf-8")
    options = [str(tmp_path / option) if "out" in option else option for option in outputs]
    # resolving the --save folder's exclusions and the inputs kept from being overwritten
    # raised "embedded null byte": exit status 2, the batch lost
    assert main(["detect", str(listing), "--model", str(model), *options]) == 1
    assert capsys.readouterr().err == (
        f"convdet detect: {tmp_path / 'b'}\\x00c.png: unreadable: embedded null byte\n"
    )


def test_annotated_pgm_and_pbm_inputs_are_saved_as_png(tmp_path, model, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    gray = np.zeros((48, 64), np.uint8)
    for name, image in [("a.pgm", gray), ("b.PGM", gray), ("c.pbm", gray), ("d.ppm", as_bgr(gray))]:
        (folder / name).write_bytes(cv2.imencode(name[-4:].lower(), image)[1].tobytes())
    out = tmp_path / "out"
    # OpenCV's PGM and PBM writers refuse colour: "OpenCV could not encode .pgm", exit 1
    assert main(["detect", str(folder), "--model", str(model), "--save", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert sorted(path.name for path in out.iterdir()) == [
        "a.pgm.png",
        "b.PGM.png",
        "c.pbm.png",
        "d.ppm",
    ]


def test_an_image_opencv_cannot_encode_is_named_once(tmp_path, model, monkeypatch, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 64), np.uint8))
    monkeypatch.setattr(cv2, "imencode", lambda *_args: (False, None))
    out = tmp_path / "out"
    assert main(["detect", str(tmp_path / "a.png"), "--model", str(model), "--save", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"convdet detect: {out / 'a.png'}: OpenCV could not encode .png\n"  # was named twice
    )


ZERO_SIDED_LOAD = """
import sys
from pathlib import Path
from convdet.runtime.sources import ImageError, load_image, quiet_opencv
with quiet_opencv():
    for name in sys.argv[1:]:
        try:
            load_image(Path(name))
        except ImageError as error:
            print(error)
"""


def test_a_header_declaring_a_zero_side_is_refused_before_the_decoder_speaks(tmp_path) -> None:
    png = cv2.imencode(".png", np.zeros((48, 64), np.uint8))[1].tobytes()
    (tmp_path / "w0.png").write_bytes(png_header(0, 48) + png[33:])
    (tmp_path / "h0.png").write_bytes(png_header(64, 0) + png[33:])
    (tmp_path / "w0.pgm").write_bytes(b"P5\n0 48\n255\n" + bytes(64))
    names = [str(tmp_path / name) for name in ("w0.png", "h0.png", "w0.pgm")]
    done = subprocess.run(  # libpng writes to the file descriptor: only a child shows it
        [sys.executable, "-c", ZERO_SIDED_LOAD, *names],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.stderr == ""  # was "libpng warning: Image width is zero in IHDR" and more
    assert done.stdout.splitlines() == [
        "corrupt PNG header (declares 0x48 pixels)",
        "corrupt PNG header (declares 64x0 pixels)",
        "corrupt PNM header (declares 0x48 pixels)",
    ]


def test_a_frame_error_ending_in_a_newline_is_recorded_without_it(
    tmp_path, model, monkeypatch, capsys
) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 64), np.uint8))

    def failing(self: Detector, frame: np.ndarray):
        raise RuntimeError("Failed to allocate memory for requested buffer of size 576000000\n")

    monkeypatch.setattr(Detector, "__call__", failing)  # as ONNX Runtime words it
    out = tmp_path / "out.jsonl"
    assert main(["detect", str(tmp_path / "a.png"), "--model", str(model), "--json", str(out)]) == 1
    why = "Failed to allocate memory for requested buffer of size 576000000"
    assert capsys.readouterr().err == f"convdet detect: {tmp_path / 'a.png'}: {why}\n"  # not \\n
    assert json.loads(out.read_text(encoding="utf-8"))["error"] == why


def test_a_jpeg_cut_short_and_closed_with_an_end_marker_is_truncated(tmp_path, model, capfd):
    """libjpeg fills the rows it never got with grey and says so only on file descriptor 2: the
    file is a failed input named in convdet's one line, and libjpeg's warnings about files that
    decode whole ("extraneous bytes before marker") are not printed at all."""
    texture = cv2.GaussianBlur(
        (np.random.default_rng(0).random((240, 320, 3)) * 255).astype(np.uint8), (9, 9), 3
    )
    whole = cv2.imencode(".jpg", texture)[1].tobytes()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cut.jpg").write_bytes(whole[: len(whole) // 2] + b"\xff\xd9")
    (folder / "padded.jpg").write_bytes(whole[:-2] + bytes(3) + whole[-2:])
    out = tmp_path / "out.jsonl"
    capfd.readouterr()
    assert main(["detect", str(folder), "--model", str(model), "--json", str(out)]) == 1
    err = capfd.readouterr().err.splitlines()
    assert err == [
        f"convdet detect: {folder / 'cut.jpg'}: truncated JPEG (libjpeg: Corrupt JPEG data: "
        "premature end of data segment)"
    ]
    records = {Path(r["source"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["cut.jpg"]["error"].startswith("truncated JPEG")
    assert "error" not in records["padded.jpg"]


def test_messages_stay_whole_lines_while_native_blocks_take_descriptor_2() -> None:
    """Failure lines come from several threads while others decode under `native_lines`;
    a line written in two parts around such a block came out glued to the next one."""
    script = """
import re, threading
from convdet.progress import Progress
from convdet.runtime.native_stderr import native_lines
done = threading.Event()
def native():
    while not done.is_set():
        with native_lines(re.compile("never")):
            pass
thread = threading.Thread(target=native)
thread.start()
progress = Progress("detect", None, "images", 0)
for number in range(3000):
    progress.message(f"file{number}.png: cannot read")
done.set()
thread.join()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    expected = {f"convdet detect: file{number}.png: cannot read" for number in range(3000)}
    assert set(done.stderr.splitlines()) == expected
