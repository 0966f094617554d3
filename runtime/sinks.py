"""Where `convdet detect` puts results: JSON Lines, annotated images and videos, a window.

Sinks are context managers. Files are written so that an interrupted or killed run leaves only
complete outputs: each JSON record is appended whole (a write that fails part-way, e.g. on a
full disk, is cut off again), each image is written to a temporary name and renamed. Savers
never write outside their folder or over an input.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any, TextIO

import cv2
import numpy as np
from convdet.runtime.detections import Detections
from convdet.runtime.errors import ConvdetError, DataError
from convdet.runtime.paths import opencv_path
from convdet.runtime.reading import Line

ErrorHandler = Callable[[str, str], None]  # (what failed, why), called from writer threads


class SaveError(ConvdetError, ValueError):
    """An output that must not be written (outside the folder, over an input)."""


def detection_record(
    source: str,
    frame: int | None,
    shape: Sequence[int],
    detections: Detections,
    labels: Sequence[str],
    lines: Sequence[Line],
) -> dict[str, Any]:
    """The JSON Lines record of one image or frame (schema in README.md), with the written
    `lines` read from its detections (text, box, detection indices, score)."""
    return {
        "source": source,
        "frame": frame,
        "width": int(shape[1]),
        "height": int(shape[0]),
        "detections": detections.to_records(labels),
        "lines": [line.to_record() for line in lines],
    }


def yolo_labels(detections: Detections, shape: Sequence[int], scores: bool = False) -> str:
    """A YOLO label file of one image or frame: a line `class_id cx cy w h` per detection,
    normalized to 0..1 by the frame's width and height (and with `scores` the score as a
    sixth column, as ultralytics' --save-conf writes it); empty without detections."""
    height, width = shape[:2]
    size = np.array([width, height], np.float64)
    xyxy = detections.xyxy.astype(np.float64)
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2 / size
    sides = (xyxy[:, 2:] - xyxy[:, :2]) / size
    lines = []
    for index, class_id in enumerate(detections.class_id.tolist()):
        values = [*centres[index], *sides[index]] + ([detections.score[index]] if scores else [])
        lines.append(" ".join([str(class_id), *(f"{float(v):.6g}" for v in values)]) + "\n")
    return "".join(lines)


def failure_record(source: str, frame: int | None, error: str) -> dict[str, Any]:
    """The JSON Lines record of a file or frame that could not be processed, saying why, so a
    reader of the records alone sees every input (schema in README.md)."""
    return {"source": source, "frame": frame, "error": error}


def utc_time(compact: bool = False) -> str:
    """The wall-clock time now in ISO 8601 UTC with milliseconds, '2026-12-01T16:40:00.123Z'
    (compact: '20261201T164000.123Z'), which places live records in time."""
    now = datetime.now(timezone.utc)
    stamp = "%Y%m%dT%H%M%S." if compact else "%Y-%m-%dT%H:%M:%S."
    return now.strftime(stamp) + f"{now.microsecond // 1000:03d}Z"


def run_id() -> str:
    """An id of this run, its start and the process id ('20261201T164000.123Z-4242'), so the
    records of one run, and a restart between two, show in an appended file."""
    return f"{utc_time(compact=True)}-{os.getpid()}"


class RecordError(ConvdetError, OSError):
    """A JSON record that could not be written whole (disk full, I/O error); the file was cut
    back to the records before it."""


class JsonlSink:
    """JSON Lines to a file or stdout (`-`), one record per line, each written whole and flushed.

    An existing non-empty file is refused unless `append=True`, so results already written are
    never destroyed. A record is on disk whole or not at all: a write that fails part-way is cut
    off again and raises RecordError. Appending first removes an incomplete last line (left by
    a killed run or an older writer) so every line stays a record; `repaired` is its length.
    """

    def __init__(self, target: str | Path, *, append: bool = False, stdout: TextIO | None = None):
        self.target = str(target)
        self.append = append
        self.stdout = stdout
        self.records = 0
        self.repaired = 0
        self._fd: int | None = None

    def __enter__(self) -> JsonlSink:
        if self.target == "-":
            self.stdout = self.stdout or sys.stdout
            return self
        Path(self.target).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.target, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        size = os.fstat(fd).st_size
        if size and not self.append:
            os.close(fd)
            raise FileExistsError(
                f"{self.target} already holds results; pass --append to add to it "
                "or choose another file"
            )
        self._fd = fd
        complete = _complete_length(fd, size)
        if complete < size:
            os.ftruncate(fd, complete)
            self.repaired = size - complete
        return self

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a single line."""
        line = json.dumps(record, allow_nan=False) + "\n"
        if self._fd is None:
            assert self.stdout is not None, "JsonlSink used outside its `with` block"
            self.stdout.write(line)
            self.stdout.flush()
        else:
            self._write_whole(line.encode("utf-8"))
        self.records += 1

    def _write_whole(self, data: bytes) -> None:
        """Append `data` in as many write() calls as it takes; if one fails, cut off what was
        written, so the file still ends with a complete record."""
        assert self._fd is not None
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as error:
            if written:  # from the end: our bytes are the file's last (O_APPEND)
                os.ftruncate(self._fd, max(os.fstat(self._fd).st_size - written, 0))
            raise RecordError(
                f"{self.target}: {error.strerror or error}; record {self.records + 1} of this "
                "run not written, the file ends with the last complete record"
            ) from error

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        elif self.stdout is not None:
            self.stdout.flush()


def _complete_length(fd: int, size: int, block: int = 1 << 16) -> int:
    """How many of the file's first `size` bytes are whole lines: up to its last newline."""
    end = size
    while end > 0:
        start = max(end - block, 0)
        os.lseek(fd, start, os.SEEK_SET)
        newline = os.read(fd, end - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def unrecorded(
    path: str | Path, inputs: Iterable[str], retry_failed: bool = False
) -> tuple[set[str], set[str]]:
    """Which `inputs` (source strings, as records name them) the JSON Lines file at `path` has
    no record for yet, and which of those have only `error` records (re-run as they are not
    counted done when `retry_failed`), so `detect --resume` runs only the rest.

    The file is read a line at a time and no record is kept: memory is one set of references
    to the input strings (about 50 bytes an input, some 500 MB for 10M inputs, however long
    the file) plus the failed sources retried. A missing file has no records; a last line
    without its newline is skipped, as the --append repair removes it; any other line that is
    not a record with a `source` is a DataError (a ValueError) naming its line."""
    pending = set(inputs)
    failed: set[str] = set()
    try:
        file = open(path, "rb")  # noqa: SIM115 (a `with` below; a missing file has no records)
    except FileNotFoundError:
        return pending, failed
    with file:
        for number, line in enumerate(file, 1):
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
                source = record["source"]
            except (ValueError, TypeError, KeyError):
                source = None
            if not isinstance(source, str):
                raise DataError(
                    f"{path} line {number} is not a convdet record with a source; "
                    "--resume cannot tell which input it was"
                )
            if retry_failed and "error" in record:
                if source in pending:
                    failed.add(source)
            else:
                pending.discard(source)
    return pending, failed & pending


class CocoResults:
    """A COCO results file (a JSON list of {image_id, category_id, bbox [x, y, w, h], score},
    as pycocotools' loadRes reads it), collected in memory and written when the `with` block
    ends, atomically (`write_atomic`), so the file is whole or missing; a write that fails
    goes to `on_error`."""

    def __init__(self, path: Path, *, on_error: ErrorHandler) -> None:
        self.path = Path(path)
        self.on_error = on_error
        self.results: list[dict[str, Any]] = []

    def __enter__(self) -> CocoResults:
        return self

    def add(self, image_id: int, detections: Detections) -> None:
        """The detections of image `image_id`; boxes become [x, y, width, height]."""
        for box, class_id, score in zip(
            detections.xyxy.tolist(),
            detections.class_id.tolist(),
            detections.score.tolist(),
            strict=True,
        ):
            x1, y1, x2, y2 = box
            self.results.append(
                {
                    "image_id": image_id,
                    "category_id": class_id,
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "score": round(score, 4),
                }
            )

    def __exit__(self, *exc: object) -> None:
        try:
            write_atomic(self.path, (json.dumps(self.results) + "\n").encode("utf-8"))
        except OSError as error:
            self.on_error(str(self.path), error.strerror or str(error))


class _Writer:
    """Runs write jobs in background threads (or inline with workers=0), at most `depth` queued.

    Overlaps encoding and disk writes with inference; failures go to `on_error`, not up.
    """

    def __init__(self, workers: int, on_error: ErrorHandler, depth: int = 8) -> None:
        self.on_error = on_error
        self._pool = ThreadPoolExecutor(workers, "convdet-write") if workers > 0 else None
        self._slots = threading.BoundedSemaphore(depth)

    def submit(self, label: str, job: Callable[[], Any]) -> None:
        if self._pool is None:
            self._run(label, job)
            return
        self._slots.acquire()
        future = self._pool.submit(self._run, label, job)
        future.add_done_callback(self._release)

    def _release(self, _future: Future[None]) -> None:
        self._slots.release()

    def _run(self, label: str, job: Callable[[], Any]) -> None:
        try:
            job()
        except (OSError, ValueError, cv2.error) as error:
            self.on_error(label, str(error).strip())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def file_id(path: Path) -> tuple[int, int] | None:
    """What identifies the file at `path` (device, inode) through links, or None if missing
    (or unnameable: a NUL byte in a list entry)."""
    try:
        stat = path.stat()
    except (OSError, ValueError):
        return None
    return stat.st_dev, stat.st_ino


def safe_relative(relpath: PurePath | str) -> PurePath:
    """`relpath` made relative and free of `..` (drive/root and `..`/`.` parts are dropped)."""
    path = PurePath(relpath)
    parts = [part for part in path.parts[1 if path.anchor else 0 :] if part not in (".", "..")]
    if not parts:
        raise SaveError(f"{relpath}: no file name left to save under")
    return PurePath(*parts)


class _OutputFolder:
    """Output paths inside one folder: mirrored, unique within a run, never an input file."""

    def __init__(self, root: Path, protect: Iterable[Path] = ()) -> None:
        self.root = Path(root)
        self._resolved_root = self.root.resolve()
        self._protected = {found for found in map(file_id, protect) if found is not None}
        self._used: set[Path] = set()
        self._lock = threading.Lock()

    def path_for(self, relpath: PurePath | str) -> Path:
        """The output path for `relpath`, mirrored below the folder.

        Raises SaveError when the path would leave the folder (e.g. through a symlink) or land
        on an input file.
        """
        relative = safe_relative(relpath)
        with self._lock:
            path = self._unique(self.root / relative)
            if not path.resolve().is_relative_to(self._resolved_root):
                raise SaveError(f"{path} would be outside {self.root}; not writing it")
            if file_id(path) in self._protected:
                raise SaveError(f"{path} is an input file; not overwriting it")
            self._used.add(path)
        return path

    def _unique(self, path: Path) -> Path:
        """`path`, or `stem_1.ext`, `stem_2.ext`... if another input of this run already used it."""
        candidate, number = path, 0
        while candidate in self._used:
            number += 1
            candidate = path.with_name(f"{path.stem}_{number}{path.suffix}")
        return candidate


def _temporary_name(name: str) -> str:
    """The name `_write_image` writes `name` under before renaming it: hidden, the name's first
    40 characters (at most 160 bytes) and a digest of the whole name, so it stays within the
    255 bytes a file name may have however long `name` is, and two long names sharing their
    first characters never share a temporary file."""
    digest = hashlib.blake2s(os.fsencode(name), digest_size=6).hexdigest()
    return f".{name[:40]}.{digest}.{os.getpid()}.tmp"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path` and rename it there, so a kill never
    leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(_temporary_name(path.name))
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_image(path: Path, image: np.ndarray) -> None:
    """Encode by extension and write atomically (`write_atomic`)."""
    ok, encoded = cv2.imencode(path.suffix, image)
    if not ok:  # reported under `path` by the writer's on_error
        raise OSError(f"OpenCV could not encode {path.suffix}")
    write_atomic(path, encoded.tobytes())


# Extensions whose OpenCV writer takes one channel only (PGM gray, PBM bits): an annotated
# image of such an input is saved as PNG instead.
GRAY_ONLY_SUFFIXES = frozenset({".pgm", ".pbm"})


class AnnotatedImageSaver:
    """Annotated images under `root`, mirroring each source's relative path.

    Writing happens in background threads; problems are reported through `on_error` with the
    output path. Extensions OpenCV cannot write get `.png` appended.
    """

    def __init__(
        self,
        root: Path,
        *,
        on_error: ErrorHandler,
        protect: Iterable[Path] = (),
        workers: int = 2,
    ) -> None:
        self.folder = _OutputFolder(root, protect)
        self.on_error = on_error
        self.workers = workers
        self.saved = 0
        self._writer: _Writer | None = None

    def __enter__(self) -> AnnotatedImageSaver:
        self._writer = _Writer(self.workers, self.on_error)
        return self

    @staticmethod
    def output_relpath(relpath: PurePath | str) -> PurePath:
        """Where below the folder the image of `relpath` goes: the path made safe, with `.png`
        appended when OpenCV has no writer for its extension or one for gray images alone
        (GRAY_ONLY_SUFFIXES: annotations are in colour), judged on the extension alone, as
        OpenCV must never see a name that is not UTF-8."""
        relative = safe_relative(relpath)
        suffix = relative.suffix
        colour = suffix.lower() not in GRAY_ONLY_SUFFIXES
        if not (suffix.isascii() and colour and cv2.haveImageWriter(f"x{suffix}")):
            relative = relative.with_name(relative.name + ".png")
        return relative

    def save(self, relpath: PurePath | str, image: np.ndarray) -> Path | None:
        """Queue `image` for writing at `root/relpath`; returns the path, None if refused."""
        return self._queue(relpath, self.output_relpath, _write_image, image)

    def save_text(self, relpath: PurePath | str, text: str) -> Path | None:
        """Queue `text` (e.g. a YOLO label file) for writing in UTF-8 at `root/relpath`, made
        safe and kept off inputs like an image; returns the path, None if refused."""
        return self._queue(relpath, PurePath, write_atomic, text.encode("utf-8"))

    def _queue(
        self,
        relpath: PurePath | str,
        place: Callable[[PurePath | str], PurePath],
        write: Callable[[Path, Any], None],
        content: Any,
    ) -> Path | None:
        """Queue `write(path, content)` at the output path of `place(relpath)` (refusals go
        to `on_error` under `relpath`); the path, or None if refused."""
        assert self._writer is not None, "AnnotatedImageSaver used outside its `with` block"
        try:
            path = self.folder.path_for(place(relpath))
        except SaveError as error:
            self.on_error(str(relpath), str(error))
            return None
        self._writer.submit(str(path), lambda: write(path, content))
        self.saved += 1
        return path

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


VIDEO_CODECS = {".avi": "MJPG", ".mp4": "mp4v"}
# The container `convdet detect --save` writes and VideoSaver gives a path without a suffix:
# MJPG in AVI, which a killed run leaves playable up to its last flushed frame.
VIDEO_SUFFIX = ".avi"


def set_avi_rate(path: Path, fps: float) -> None:
    """Rewrite the frame rate in an AVI's headers (main and video stream), so a video whose
    rate is known only at the end plays at it; OSError if the headers are not found."""
    with open(path, "r+b") as file:
        head = file.read(1 << 16)
        main = head.find(b"avih")
        stream = head.find(b"strh")
        if main < 0 or stream < 0 or head[stream + 8 : stream + 12] != b"vids":
            raise OSError(f"{path}: no AVI video header to set the frame rate in")
        file.seek(main + 8)  # dwMicroSecPerFrame
        file.write(struct.pack("<I", round(1e6 / fps)))
        file.seek(stream + 28)  # dwScale, dwRate: rate = dwRate / dwScale frames per second
        file.write(struct.pack("<II", 1000, max(round(fps * 1000), 1)))


class VideoSaver:
    """An annotated video, opened at the first frame's size; `.avi` (MJPG), which a path
    without a suffix gets (VIDEO_SUFFIX, as `convdet detect --save` writes), or `.mp4` (mp4v).

    Frames are encoded in one background thread (order kept). A killed AVI plays up to its
    last flushed frame; a killed MP4 does not open (its index is written only at the end),
    so MP4 is written only when the path asks for it (a player that needs MP4) and is whole
    only once the saver is closed. With `measured=True` (`.avi` only, for
    live sources whose frames come when inference is done) the rate written at the end is the
    one frames were really given at, so the video lasts as long as the run; `fps` is then the
    header's rate until then (what a killed run leaves).
    """

    def __init__(
        self,
        path: Path,
        *,
        fps: float,
        on_error: ErrorHandler,
        protect: Iterable[Path] = (),
        measured: bool = False,
    ) -> None:
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(VIDEO_SUFFIX)
        if path.suffix not in VIDEO_CODECS:
            raise SaveError(f"{path}: video outputs are {' or '.join(VIDEO_CODECS)}")
        if measured and path.suffix != ".avi":
            raise SaveError(f"{path}: a measured frame rate is written into .avi videos only")
        if opencv_path(path) is None:
            raise SaveError(f"{path}: OpenCV cannot write a video whose path is not UTF-8")
        self.path = _OutputFolder(path.parent, protect).path_for(path.name)
        self.fps = fps
        self.measured = measured
        self.on_error = on_error
        self.frames = 0
        self._first = self._last = 0.0  # when the first and the latest frame were given
        self._video: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._writer = _Writer(1, on_error)

    def __enter__(self) -> VideoSaver:
        return self

    def write(self, image: np.ndarray) -> None:
        """Queue one annotated frame (resized to the first frame's size if it differs)."""
        self._writer.submit(str(self.path), lambda: self._append(image))
        self._last = time.monotonic()
        if not self.frames:
            self._first = self._last
        self.frames += 1

    def _append(self, image: np.ndarray) -> None:
        if self._video is None:
            self._size = (image.shape[1], image.shape[0])
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix])
            self._video = cv2.VideoWriter(str(self.path), fourcc, self.fps, self._size)
            if not self._video.isOpened():
                raise OSError(f"OpenCV cannot write {self.path}")
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size)
        self._video.write(image)

    def __exit__(self, *exc: object) -> None:
        self._writer.close()
        if self._video is None:
            return
        self._video.release()
        self._video = None
        if self.measured and self.frames > 1 and self._last > self._first:
            self.fps = (self.frames - 1) / (self._last - self._first)
            try:
                set_avi_rate(self.path, self.fps)
            except OSError as error:
                self.on_error(str(self.path), str(error))


def display_unavailable() -> str | None:
    """Why a window cannot be shown here, or None.

    Linux without DISPLAY/WAYLAND_DISPLAY is refused at once. Otherwise a child process opens
    a window first: OpenCV's Qt backend aborts the whole process (no exception) when DISPLAY
    names an X server it cannot reach, and that must not end a run.
    """
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not display:
        return "no display (DISPLAY is not set)"
    probe = subprocess.run(
        [sys.executable, "-c", "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode == 0:
        return None
    detail = next(
        (
            line
            for line in probe.stderr.splitlines()
            if line.strip() and not line.startswith(("Traceback", " "))
        ),
        "",
    )
    return f"cannot open a window on display {display}" + (f" ({detail})" if detail else "")


def screen_size() -> tuple[int, int] | None:
    """Width and height of the screen a window opens on (X11 or Windows), None if unknown."""
    if sys.platform == "win32":
        metrics = ctypes.windll.user32.GetSystemMetrics  # type: ignore[attr-defined]
        return metrics(0), metrics(1)
    library = ctypes.util.find_library("X11")
    if library is None or not os.environ.get("DISPLAY"):
        return None
    xlib = ctypes.CDLL(library)
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    for name in ("XDefaultScreen", "XCloseDisplay"):
        getattr(xlib, name).argtypes = [ctypes.c_void_p]
    for name in ("XDisplayWidth", "XDisplayHeight"):
        getattr(xlib, name).argtypes = [ctypes.c_void_p, ctypes.c_int]
    display = xlib.XOpenDisplay(None)
    if not display:
        return None
    try:
        screen = xlib.XDefaultScreen(display)
        return xlib.XDisplayWidth(display, screen), xlib.XDisplayHeight(display, screen)
    finally:
        xlib.XCloseDisplay(display)


def fit_window(
    size: tuple[int, int], screen: tuple[int, int] | None, share: float = 0.9
) -> tuple[int, int]:
    """The window size for an image of `size` (width, height): its own, or scaled down with
    its aspect kept to fit `share` of the screen (leaving room for title bar and panels)."""
    if screen is None:
        return size
    scale = min(1.0, share * screen[0] / size[0], share * screen[1] / size[1])
    return max(round(size[0] * scale), 1), max(round(size[1] * scale), 1)


QUIT_KEYS = (ord("q"), 27)  # q, Esc


class Window:
    """An OpenCV window for `--show`; the only place window functions are called.

    Opening raises OSError saying why when no window can be shown (no display, a display that
    cannot be reached, or an OpenCV without GUI support such as opencv-python-headless). The
    window opens with the first image and takes each image's size, fitted to the screen.
    Closing it (title-bar X, Alt+F4) ends showing like q or Esc: OpenCV's Qt backend raises
    on a window the user closed, which here means "closed".
    """

    def __init__(self, title: str = "convdet") -> None:
        self.title = title
        self._size: tuple[int, int] | None = None
        self._screen: tuple[int, int] | None = None

    def __enter__(self) -> Window:
        reason = display_unavailable()
        if reason:
            raise OSError(reason)
        self._screen = screen_size()
        return self

    def show(self, image: np.ndarray, hold: float = 0.0) -> bool:
        """Display `image`, keeping it up to `hold` seconds (math.inf: no limit) until a key
        is pressed; False once the user pressed q or Esc or closed the window."""
        size = (image.shape[1], image.shape[0])
        if self._size is None:  # opened with the first image, so it appears at its size
            cv2.namedWindow(
                self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
            )
        if size != self._size:
            cv2.resizeWindow(self.title, *fit_window(size, self._screen))
            self._size = size
        cv2.imshow(self.title, image)
        deadline = time.monotonic() + hold
        while True:
            key = cv2.waitKey(1 if hold <= 0 else 50)
            if (key & 0xFF) in QUIT_KEYS or self._gone():
                return False
            if key != -1 or time.monotonic() >= deadline:
                return True

    def _gone(self) -> bool:
        """Whether the user closed the window (Qt raises once its last window is gone)."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def __exit__(self, *exc: object) -> None:
        if self._size is not None and not self._gone():
            cv2.destroyWindow(self.title)
