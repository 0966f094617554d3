"""Files `convdet detect --save` writes: annotated images, label files and videos, in the
background and never outside their folder or over an input.

Each file is written to a temporary name beside it and renamed (`write_atomic`), so an
interrupted or killed run leaves only complete images; an AVI video is playable up to its last
flushed frame. Writing runs in background threads, so encoding and disk overlap inference;
their failures reach an `on_error` handler with the output path instead of ending the run.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePath
from typing import Any

import cv2
import numpy as np
from convdet.runtime.errors import ConvdetError
from convdet.runtime.paths import opencv_path

ErrorHandler = Callable[[str, str], None]  # (what failed, why), called from writer threads


class SaveError(ConvdetError, ValueError):
    """An output that must not be written (outside the folder, over an input)."""


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
