"""Cameras and streams as a source: `LiveSource` reads in a thread that keeps only the newest
frame, so latency stays about one frame when inference is slower than the camera; how such a
source is named in messages (stream passwords masked) and opened.
"""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np
from convdet.runtime.frames import Frame, Source, SourceError, StreamStopped
from convdet.runtime.images import DEFAULT_MAX_PIXELS
from convdet.runtime.paths import opencv_path
from convdet.runtime.video import quiet_opencv, refuse_large_capture

STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt"})


class Capture(Protocol):
    """The part of `cv2.VideoCapture` a live source uses (tests pass stand-in cameras)."""

    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...
    def set(self, prop: int, value: float) -> bool: ...


def display_name(target: int | str) -> str:
    """How a camera or stream is named in messages and records: URL passwords are masked."""
    if isinstance(target, int):
        return str(target)
    parts = urlsplit(target)
    if parts.password is None:
        return target
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def is_video_device(spec: str) -> bool:
    """Whether `spec` is a camera's device path: a character device named video* (/dev/video0,
    or a link to one such as /dev/v4l/by-id/...)."""
    path = Path(spec)
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(mode) and "video" in (path.name[:5], path.resolve().name[:5])


def is_camera(target: int | str) -> bool:
    """Whether a live source's `target` is a camera (an index or a device path), not a stream."""
    return isinstance(target, int) or is_video_device(target)


def live_what(target: int | str) -> str:
    """A live source as messages name it: 'camera 0', 'camera /dev/video2' or 'stream URL'
    (its password masked)."""
    return f"camera {target}" if is_camera(target) else f"stream {display_name(target)}"


def open_capture(target: int | str) -> cv2.VideoCapture:
    """Open a webcam index, camera device path or stream URL with OpenCV, or raise SourceError
    naming it."""
    what = live_what(target)
    if isinstance(target, str) and opencv_path(target) is None:
        raise SourceError(f"cannot open {what}: OpenCV needs a UTF-8 URL")
    try:
        with quiet_opencv():
            capture = cv2.VideoCapture(target)
    except (cv2.error, TypeError, OverflowError) as error:  # e.g. an index beyond C int
        raise SourceError(f"cannot open {what}") from error
    if not capture.isOpened():
        raise SourceError(f"cannot open {what}")
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # honoured by some backends; the thread does the rest
    return capture


class LiveSource(Source):
    """A webcam or stream read in a thread that keeps only the newest frame.

    When inference is slower than the camera, frames in between are dropped (and counted)
    instead of queueing, so what is processed is never more than about one frame old.
    A capture that stops delivering raises StreamStopped from the iteration. `size` (width,
    height) and `fps` are asked of the capture when it opens (cameras; the driver may pick the
    nearest mode it has, which the frames then show). Frames over `max_pixels` are refused as
    video files' are: from the capture's properties when it opens (SourceError), and a frame
    that arrives larger (a stream changing its resolution) stops the source with StreamStopped
    before it reaches the detector.
    """

    kind = "live"

    def __init__(
        self,
        target: int | str,
        *,
        vid_stride: int = 1,
        opener: Callable[[int | str], Capture] | None = None,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.target = target
        self.name = display_name(target)
        self.max_pixels = max_pixels
        self.vid_stride = vid_stride
        self.opener = opener or open_capture
        self.requested = {
            cv2.CAP_PROP_FRAME_WIDTH: None if size is None else size[0],
            cv2.CAP_PROP_FRAME_HEIGHT: None if size is None else size[1],
            cv2.CAP_PROP_FPS: fps,
        }
        self.read_count = 0  # frames grabbed from the device, strided or not
        self._capture: Capture | None = None
        self._latest: Frame | None = None
        self._ended = False
        self._failure = ""
        self._refused = ""  # why a frame over max_pixels stopped the source
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LiveSource:
        self._capture = self.opener(self.target)
        for prop, value in self.requested.items():
            if value is not None:
                self._capture.set(prop, value)
        get = getattr(self._capture, "get", lambda _prop: 0.0)  # stand-in cameras may lack it
        try:
            refuse_large_capture(
                get, self._capture.release, live_what(self.target), self.max_pixels
            )
        except SourceError:
            self._capture = None
            raise
        fps = get(cv2.CAP_PROP_FPS)
        self.fps = fps / self.vid_stride if fps and fps > 0 else None
        self._thread = threading.Thread(target=self._read_loop, name="convdet-capture", daemon=True)
        self._thread.start()
        return self

    def _read_loop(self) -> None:
        capture = self._capture
        assert capture is not None
        try:
            while not self._stop.is_set() and capture.grab():
                index = self.read_count
                self.read_count += 1
                if index % self.vid_stride:
                    continue
                ok, image = capture.retrieve()
                if not ok or image is None:
                    break
                height, width = image.shape[:2]
                if width * height > self.max_pixels:
                    self._refused = (
                        f"{live_what(self.target)}: frame {index} is {width}x{height}, "
                        f"{width * height} pixels, more than --max-pixels {self.max_pixels}; "
                        "stopped"
                    )
                    break
                with self._changed:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = Frame(self.name, index, image)
                    self._changed.notify_all()
        except Exception as error:  # a driver failure ends the stream like a read failure does
            self._failure = f": {error}"
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._latest is not None or self._ended)
                frame, self._latest = self._latest, None
            if frame is None:
                break
            yield frame
        if self._refused:
            raise StreamStopped(self._refused)
        if not self._stop.is_set():
            raise StreamStopped(
                f"{self.name} stopped delivering frames after {self.read_count} frames"
                f"{self._failure}"
            )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():  # stuck in a driver call: leave the capture to exit
                return
        if self._capture is not None:
            self._capture.release()
            self._capture = None
