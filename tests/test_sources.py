"""Frame sources: header checks before decoding, bad files as error items, prefetch order,
video frame indices and loops, SOURCE resolution, and the live latest-frame policy with
stand-in cameras."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from itertools import islice
from pathlib import Path, PurePath

import cv2
import numpy as np
import pytest
from convdet.runtime.errors import ConvdetError
from convdet.runtime.sources import (
    ImageBatch,
    ImageError,
    ListError,
    LiveSource,
    SourceError,
    StreamStopped,
    VideoSource,
    image_header,
    load_image,
    prefetched,
    read_ahead,
    resolve_source,
)


def digit_page(
    mnist: dict[str, np.ndarray], index: int, size: tuple[int, int] = (48, 64)
) -> np.ndarray:
    """A small uint8 page (light background, dark digit) holding MNIST test digit `index`."""
    page = np.full(size, 255, np.uint8)
    top, left = (size[0] - 28) // 2, (size[1] - 28) // 2
    page[top : top + 28, left : left + 28] = 255 - mnist["x_test"][index]
    return page


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A tiny PNG whose (valid) header claims a huge image: a decompression bomb's shape."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def encoded(image: np.ndarray, ext: str) -> bytes:
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


# name -> expected error text (None: a good image). The folder used by the batch tests below
# and by the `convdet detect` tests.
MIXED_FILES = {
    "digit.png": None,
    "digit16.png": None,
    "rgba.png": None,
    "photo.jpg": None,
    "sub/deeper/nested.png": None,
    "corrupt.png": "corrupt",
    "empty.png": "empty file",
    "text.jpg": "not an image",
    "truncated.jpg": "truncated",
    "bomb.png": "60000x60000",
}


def write_mixed_folder(folder: Path, mnist: dict[str, np.ndarray]) -> Path:
    """Good images (8-bit, 16-bit, RGBA, JPEG, nested) and bad files, as in MIXED_FILES."""
    page = digit_page(mnist, 0)
    colour = cv2.cvtColor(digit_page(mnist, 1), cv2.COLOR_GRAY2BGR)
    png = encoded(page, ".png")
    jpeg = encoded(colour, ".jpg")
    corrupt = bytearray(png)
    idat = corrupt.index(b"IDAT")
    corrupt[idat + 8 : idat + 40] = bytes(32)  # zeroed compressed data, CRC now wrong too
    contents = {
        "digit.png": png,
        "digit16.png": encoded(page.astype(np.uint16) * 257, ".png"),
        "rgba.png": encoded(cv2.cvtColor(page, cv2.COLOR_GRAY2BGRA), ".png"),
        "photo.jpg": jpeg,
        "sub/deeper/nested.png": encoded(digit_page(mnist, 2), ".png"),
        "corrupt.png": bytes(corrupt),
        "empty.png": b"",
        "text.jpg": b"these are not the pixels you are looking for\n",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "bomb.png": bomb_png(),
    }
    for name, data in contents.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def mixed(tmp_path: Path, mnist: dict[str, np.ndarray]) -> Path:
    return write_mixed_folder(tmp_path / "mixed", mnist)


@pytest.mark.parametrize(("name", "error"), sorted(MIXED_FILES.items()))
def test_load_image_accepts_good_files_and_says_why_bad_ones_fail(mixed, name, error):
    if error is None:
        image = load_image(mixed / name)
        assert image.shape[:2] == (48, 64)
    else:
        with pytest.raises(ImageError, match=error):
            load_image(mixed / name)


def test_load_image_keeps_depth_and_alpha(mixed):
    assert load_image(mixed / "digit16.png").dtype == np.uint16
    assert load_image(mixed / "rgba.png").shape == (48, 64, 4)
    assert load_image(mixed / "digit.png").ndim == 2


def test_load_image_reports_missing_file_and_max_pixels(mixed):
    with pytest.raises(ImageError, match="unreadable"):
        load_image(mixed / "nope.png")
    with pytest.raises(ImageError, match="more than --max-pixels 1000"):
        load_image(mixed / "digit.png", max_pixels=1000)  # 64x48 = 3072 pixels


@pytest.mark.parametrize(
    ("ext", "fmt", "channels"),
    [
        (".png", "png", 1),
        (".jpg", "jpeg", 3),
        (".bmp", "bmp", 3),
        (".webp", "webp", 3),
        (".tiff", "tiff", 1),
        (".pgm", "pnm", 1),
        (".ppm", "pnm", 3),
    ],
)
def test_image_header_reads_size_without_decoding(ext, fmt, channels):
    image = np.zeros((37, 53) if channels == 1 else (37, 53, 3), np.uint8)
    data = encoded(image, ext)
    assert image_header(data) == (fmt, 53, 37)
    truncated = {"jpeg": data[:3] + bytes(8), "pnm": data[:5]}.get(fmt, data[:12])
    with pytest.raises(ImageError, match=f"truncated or corrupt {fmt.upper()} header"):
        image_header(truncated)


def test_prefetched_keeps_order_and_reads_ahead():
    calls: list[int] = []

    def slow_square(value: int) -> int:
        calls.append(value)
        time.sleep(0.01)
        return value * value

    results = prefetched(slow_square, range(12), workers=2)
    assert next(results) == 0
    deadline = time.monotonic() + 2
    while len(calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(calls) >= 4, "nothing was read ahead of the consumer"
    assert [0, *results] == [value * value for value in range(12)]
    assert list(prefetched(slow_square, range(5), workers=0)) == [0, 1, 4, 9, 16]


@pytest.mark.parametrize("workers", [0, 3])
def test_image_batch_yields_every_file_once_with_errors_as_items(mixed, workers):
    source = resolve_source(str(mixed), recursive=True, workers=workers)
    assert isinstance(source, ImageBatch) and source.total == len(MIXED_FILES)
    with source:
        frames = list(source)
    by_name = {frame.relpath.as_posix(): frame for frame in frames}
    assert sorted(by_name) == sorted(MIXED_FILES)
    for name, error in MIXED_FILES.items():
        frame = by_name[name]
        assert frame.index is None and frame.path == mixed / name
        if error is None:
            assert frame.error is None and frame.image is not None
        else:
            assert frame.image is None and error in frame.error


def test_resolve_folder_glob_and_list(mixed, tmp_path, monkeypatch):
    flat = resolve_source(str(mixed))
    assert len(flat.files) == len(MIXED_FILES) - 1  # the nested file needs --recursive
    nested = resolve_source(str(mixed / "**" / "*.png"))
    assert (mixed / "sub/deeper/nested.png", PurePath("sub/deeper/nested.png")) in nested.files
    listing = tmp_path / "list.txt"
    listing.write_text("# digits to check\nmixed/digit.png\n\n  mixed/sub/deeper/nested.png\n")
    listed = resolve_source(str(listing))
    assert listed.files == [
        (tmp_path / "mixed/digit.png", PurePath("mixed/digit.png")),
        (tmp_path / "mixed/sub/deeper/nested.png", PurePath("mixed/sub/deeper/nested.png")),
    ]
    excluded = resolve_source(str(mixed), recursive=True, exclude=mixed / "sub")
    assert all("sub" not in relpath.parts for _path, relpath in excluded.files)
    monkeypatch.chdir(mixed)
    assert [str(relpath) for _path, relpath in resolve_source("digit*.png").files] == [
        "digit.png",
        "digit16.png",
    ]


def test_resolve_skips_the_save_folder_and_its_run_folders(tmp_path, mnist):
    page = encoded(digit_page(mnist, 0), ".png")
    names = ["a.png", "out/b.png", "out-2/c.png", "out-x/d.png", "outer/e.png"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(page)
    (tmp_path / "list.txt").write_text("\n".join(names) + "\n")
    kept = ["a.png", "out-x/d.png", "outer/e.png"]
    for spec in (str(tmp_path), str(tmp_path / "**" / "*.png"), str(tmp_path / "list.txt")):
        source = resolve_source(spec, recursive=True, exclude=tmp_path / "out")
        assert sorted(relpath.as_posix() for _path, relpath in source.files) == kept, spec
    single = resolve_source(str(tmp_path / "out/b.png"), exclude=tmp_path / "out")
    assert [path for path, _relpath in single.files] == [tmp_path / "out/b.png"]
    with pytest.raises(SourceError, match=r"no images in .* outside --save .*out and its numbered"):
        resolve_source(str(tmp_path / "out" / "*.png"), exclude=tmp_path / "out")


def test_resolve_errors_name_the_source(tmp_path):
    with pytest.raises(SourceError, match=r"source not found: .*missing"):
        resolve_source(str(tmp_path / "missing"))
    (tmp_path / "empty" / "inner").mkdir(parents=True)
    with pytest.raises(SourceError, match="--recursive"):
        resolve_source(str(tmp_path / "empty"))
    with pytest.raises(SourceError, match="no images"):
        resolve_source(str(tmp_path / "*.png"))


def test_resolve_live_sources_masks_passwords():
    assert isinstance(resolve_source("0"), LiveSource)
    stream = resolve_source("rtsp://admin:secret@10.0.0.5/live")
    assert isinstance(stream, LiveSource)
    assert stream.name == "rtsp://admin:***@10.0.0.5/live"


def write_video(
    path: Path, mnist: dict[str, np.ndarray], frames: int = 10, fourcc: str = "MJPG"
) -> Path:
    """A video (MJPG unless `fourcc` says otherwise) at 10 fps whose frame i shows MNIST test
    digit i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 48))
    assert writer.isOpened()
    for index in range(frames):
        writer.write(cv2.cvtColor(digit_page(mnist, index), cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


@pytest.mark.parametrize(
    ("stride", "loops", "indices"),
    [(1, 1, list(range(10))), (3, 1, [0, 3, 6, 9]), (4, 3, list(range(0, 30, 4)))],
)
def test_video_source_yields_frame_indices(tmp_path, mnist, stride, loops, indices):
    video = write_video(tmp_path / "clip.avi", mnist)
    source = resolve_source(str(video), vid_stride=stride, loops=loops)
    assert isinstance(source, VideoSource)
    with source:
        assert source.total == len(indices)
        frames = list(source)
    assert [frame.index for frame in frames] == indices
    assert all(frame.image.shape == (48, 64, 3) and frame.source == str(video) for frame in frames)


def test_video_source_loops_endlessly_with_zero(tmp_path, mnist):
    video = write_video(tmp_path / "clip.avi", mnist)
    threads = threading.active_count()
    with resolve_source(str(video), loops=0) as source:
        assert source.total is None
        frames = list(islice(source, 25))
    assert threading.active_count() == threads  # closing stopped the decoding thread
    assert [frame.index for frame in frames] == list(range(25))
    assert np.array_equal(frames[20].image, frames[0].image)


def test_video_source_that_cannot_be_opened(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video")
    with pytest.raises(SourceError, match="cannot open video"), resolve_source(str(fake)):
        pass


class StandInCamera:
    """Produces `frames` frames of `shape`, one per `period` seconds (pixel value = frame number
    mod 256), then fails: returns False from grab(), or raises `failure` if given."""

    def __init__(
        self,
        frames: int,
        period: float = 0.0,
        failure: Exception | None = None,
        shape: tuple[int, ...] = (4, 4),
    ):
        self.frames, self.period, self.failure, self.shape = frames, period, failure, shape
        self.grabbed = 0
        self.released = False

    def grab(self) -> bool:
        if self.grabbed >= self.frames:
            if self.failure is not None:
                raise self.failure
            return False
        time.sleep(self.period)
        self.grabbed += 1
        return True

    def retrieve(self) -> tuple[bool, np.ndarray]:
        return True, np.full(self.shape, (self.grabbed - 1) % 256, np.uint8)

    def release(self) -> None:
        self.released = True


def live(camera: StandInCamera, stride: int = 1) -> LiveSource:
    return LiveSource(0, vid_stride=stride, opener=lambda _target: camera)


def test_live_source_keeps_only_the_latest_frame():
    camera = StandInCamera(frames=80, period=0.002)
    seen, lags = [], []
    stopped = pytest.raises(StreamStopped, match="0 stopped delivering frames after 80")
    with stopped, live(camera) as source:
        for frame in source:
            lags.append(camera.grabbed - 1 - frame.index)
            seen.append(frame)
            time.sleep(0.02)  # "inference" ten times slower than the camera
    indices = [frame.index for frame in seen]
    assert indices == sorted(set(indices)) and len(indices) < 40
    assert all(int(frame.image[0, 0]) == frame.index for frame in seen)
    assert max(lags) <= 3, f"processed frames lagged the camera by {max(lags)} frames"
    assert source.dropped == 80 - len(seen)
    assert camera.released


def test_live_source_vid_stride_and_driver_failure():
    camera = StandInCamera(frames=9, failure=RuntimeError("USB device unplugged"))
    frames = []
    unplugged = pytest.raises(StreamStopped, match="USB device unplugged")
    with unplugged, live(camera, stride=3) as source:
        for frame in source:
            frames.append(frame.index)
            time.sleep(0.01)  # slow enough that the stand-in finishes first
    assert set(frames) <= {0, 3, 6} and frames[-1] == 6


def test_live_source_stops_cleanly_when_the_consumer_stops():
    camera = StandInCamera(frames=10_000, period=0.001)
    with live(camera) as source:
        for frame in source:
            if frame.index >= 5:
                break
    assert camera.released and camera.grabbed < 10_000
    assert not source._thread.is_alive()


def test_camera_or_stream_that_cannot_be_opened_names_it():
    with pytest.raises(SourceError, match=r"^cannot open camera 97$"):
        resolve_source("97").__enter__()
    with pytest.raises(SourceError, match=r"cannot open stream rtsp://u:\*\*\*@127.0.0.1:9/x"):
        resolve_source("rtsp://u:pw@127.0.0.1:9/x").__enter__()


def test_truncated_png_is_refused_before_decoding(mixed):
    data = (mixed / "digit.png").read_bytes()
    (mixed / "cut.png").write_bytes(data[: len(data) - 20])
    with pytest.raises(ImageError, match="truncated PNG"):
        load_image(mixed / "cut.png")


def test_read_ahead_keeps_order_and_raises_errors() -> None:
    assert list(read_ahead(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(read_ahead(failing()))
    before = threading.active_count()
    for item in read_ahead(iter(range(1000)), depth=2):
        if item == 5:
            break
    assert threading.active_count() == before  # the reader thread ended with the consumer


def test_image_header_reads_what_imagesize_misreads() -> None:
    # a GIF's 16-bit sides are unsigned (imagesize reads them signed), an OS/2 BMP's core
    # header has 16-bit sides (imagesize reads a Windows header's 32-bit ones)
    gif = b"GIF89a" + struct.pack("<HH", 65535, 40000) + b"\xf7\x00\x00"
    assert image_header(gif) == ("gif", 65535, 40000)
    row = (3 * 3 + 3) // 4 * 4
    os2 = (
        b"BM"
        + struct.pack("<IHHI", 26 + 2 * row, 0, 0, 26)
        + struct.pack("<IHHHH", 12, 3, 2, 1, 24)
    )
    os2 += bytes(2 * row)
    assert image_header(os2) == ("bmp", 3, 2)
    assert cv2.imdecode(np.frombuffer(os2, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2] == (2, 3)


def test_source_errors_are_convdet_errors_with_their_builtin_bases() -> None:
    for error, builtin in [
        (SourceError, OSError),
        (StreamStopped, OSError),
        (ListError, OSError),
        (ImageError, ValueError),
    ]:
        assert issubclass(error, ConvdetError) and issubclass(error, builtin)


def test_each_source_says_its_unit_and_whether_it_is_live(tmp_path) -> None:
    batch = ImageBatch([(tmp_path / "a.png", PurePath("a.png"))])
    video = VideoSource(tmp_path / "clip.avi")
    live = LiveSource(0, opener=lambda _target: StandInCamera(1))
    assert [(source.unit, source.live) for source in (batch, video, live)] == [
        ("images", False),
        ("frames", False),
        ("frames", True),
    ]
