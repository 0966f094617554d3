"""Video files as a source: `VideoSource` decodes in a thread a few frames ahead of the
detector and ends with an error item when the file is empty or cut short; also what video
files and live captures share (OpenCV kept quiet, a frame size over --max-pixels refused).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path, PurePath
from queue import Empty, Queue
from typing import Any, TypeVar

import cv2
from convdet.runtime.frames import Frame, Source, SourceError
from convdet.runtime.images import DEFAULT_MAX_PIXELS
from convdet.runtime.paths import opencv_path

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
# Containers whose index declares the frame count (OpenCV estimates it from the duration for
# the others), so a file that ends before its count is known to be cut.
COUNTED_VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".m4v", ".mov"})
# Matroska and WebM declare a Duration (OpenCV's frame count is that times the rate): a file
# whose frames end well before it is cut. Well: by more than CUT_SLACK_SECONDS (and two
# frames), as the Duration covers every track and an audio track may outlast the video.
TIMED_VIDEO_SUFFIXES = frozenset({".mkv", ".webm"})
CUT_SLACK_SECONDS = 1.0
# MPEG transport and program streams declare no length at all; their packets do, so a file
# that ends inside its last packet is cut.
PACKET_VIDEO_SUFFIXES = frozenset({".ts", ".mpg", ".mpeg"})
READ_AHEAD = 4  # decoded video frames waiting for the detector

T = TypeVar("T")

FFMPEG_LOG_VARIABLES = ("OPENCV_FFMPEG_LOGLEVEL", "OPENCV_FFMPEG_DEBUG")
FFMPEG_QUIET = "-8"  # AV_LOG_QUIET


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines (decoder and capture warnings) and FFmpeg's ('File ended
    prematurely', 'Error at MB'); we report errors ourselves. FFmpeg's level is read once, when
    the first capture or writer opens, and kept: unless the user set one of
    FFMPEG_LOG_VARIABLES (to debug a video), it is quiet from then on."""
    if not any(name in os.environ for name in FFMPEG_LOG_VARIABLES):
        os.environ[FFMPEG_LOG_VARIABLES[0]] = FFMPEG_QUIET
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def refuse_large_capture(
    get: Callable[[int], float], release: Callable[[], None], what: str, max_pixels: int
) -> None:
    """SourceError naming `what` (after `release`) when an opened capture's frame size, as its
    properties (`get`) say, exceeds `max_pixels`: video files and live sources alike."""
    width, height = int(get(cv2.CAP_PROP_FRAME_WIDTH)), int(get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width * height > max_pixels:
        release()
        raise SourceError(
            f"{what}: {width}x{height} frames are {width * height} pixels, "
            f"more than --max-pixels {max_pixels}"
        )


def read_ahead(items: Iterable[T], depth: int = READ_AHEAD) -> Generator[T, None, None]:
    """Iterate `items` in a thread that runs up to `depth` items ahead of the consumer, so
    decoding overlaps inference; an exception in the thread is raised here."""
    queue: Queue[Any] = Queue(depth)
    finished = object()
    failure: list[BaseException] = []
    stop = threading.Event()

    def fill() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                queue.put(item)
        except Exception as error:  # handed to the consumer, raised there
            failure.append(error)
        finally:
            queue.put(finished)

    thread = threading.Thread(target=fill, name="convdet-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not finished:
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        while thread.is_alive():  # unblock a pending put if the consumer left early
            with contextlib.suppress(Empty):
                queue.get(timeout=0.05)


def video_file_backend() -> int:
    """The OpenCV backend that opens video files: FFmpeg where OpenCV has it, which reads every
    container VIDEO_SUFFIXES names and is quiet (see `quiet_opencv`). Left to choose, OpenCV
    tries its other backends on a file FFmpeg refused, and its own MJPEG reader prints lines
    of its own on stderr ('Unexpected element. Expected: LIST.') for a broken AVI."""
    return cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY


class VideoSource(Source):
    """Frames of a video file, every `vid_stride`-th one, with their index in the file.

    `loops` plays the file that many times (0: endlessly), reopening it for each pass, with
    indices counting on across passes: a demo that never ends, or a long run for soak tests.
    A frame size over `max_pixels` (from the capture's properties) is refused before decoding.
    A file without a single frame, or one cut short (see `_cut`: fewer frames than an AVI or
    MP4 index declares, an end well before a Matroska or WebM Duration, an MPEG stream ending
    inside a packet), ends with an error item saying so, after the frames it has.
    """

    kind = "video"

    def __init__(
        self,
        path: Path,
        *,
        vid_stride: int = 1,
        loops: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.path = Path(path)
        self.max_pixels = max_pixels
        self.name = str(path)
        self.vid_stride = vid_stride
        self.loops = loops
        self.frame_count = 0  # frames the file declares, 0 when unknown
        self._capture: Any = None
        self._reader: Generator[Frame, None, None] | None = None

    def _open(self) -> Any:
        name = opencv_path(self.path)
        if name is None:
            raise SourceError(f"cannot open video {self.path}: OpenCV needs a UTF-8 file name")
        with quiet_opencv():
            capture = cv2.VideoCapture(name, video_file_backend())
        if not capture.isOpened():
            raise SourceError(f"cannot open video {self.path}")
        refuse_large_capture(capture.get, capture.release, f"video {self.path}", self.max_pixels)
        return capture

    def __enter__(self) -> VideoSource:
        self._capture = self._open()
        self.frame_count = max(int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        count = self.frame_count * self.loops
        self.total = -(-count // self.vid_stride) if count > 0 else None
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or None
        return self

    def close(self) -> None:
        if self._reader is not None:  # stop the decoding thread before releasing its capture
            self._reader.close()
        if self._capture is not None:
            self._capture.release()

    def __iter__(self) -> Generator[Frame, None, None]:
        """The frames, decoded in a thread up to READ_AHEAD frames ahead of the consumer."""
        self._reader = read_ahead(self._decoded())
        return self._reader

    def _decoded(self) -> Iterator[Frame]:
        relpath = PurePath(self.path.name)
        index = 0
        for played in itertools.count() if self.loops == 0 else range(self.loops):
            if played:
                self._capture.release()
                self._capture = self._open()
            start, end = index, 0.0  # end: the latest frame's time in the file, in ms
            while self._capture.grab():
                end = max(end, self._capture.get(cv2.CAP_PROP_POS_MSEC))
                if index % self.vid_stride == 0:
                    ok, image = self._capture.retrieve()
                    if not ok:
                        break
                    yield Frame(self.name, index, image, None, relpath, self.path)
                index += 1
            # An empty or cut video is a failed input, as an empty or truncated image is in a
            # batch: an error item, which detect reports in one line, records and counts as
            # failed (exit status 1), while the frames read before the cut keep their records.
            read = index - start
            if not read:  # nothing to replay: never spin on an empty file
                if not played:
                    yield Frame(
                        self.name, None, None, "no frames in this video", relpath, self.path
                    )
                return
            cut = self._cut(read, end / 1000)
            if cut is not None:
                yield Frame(self.name, index, None, f"{cut}, the file is cut", relpath, self.path)
                return

    def _cut(self, read: int, end: float) -> str | None:
        """How a pass that read `read` frames, the last at `end` seconds, shows the file is cut
        short, or None when it does not: fewer frames than a counted container's index
        declares, an end well before a Matroska or WebM Duration, or an MPEG stream's last
        packet cut off. Other containers (and these without what they declare) play as whole."""
        suffix = self.path.suffix.lower()
        if suffix in COUNTED_VIDEO_SUFFIXES and read < self.frame_count:
            return f"ended after {read} of {self.frame_count} frames"
        if suffix in TIMED_VIDEO_SUFFIXES and self.frame_count and self.fps:
            declared, played = self.frame_count / self.fps, end + 1 / self.fps
            if declared - played > max(CUT_SLACK_SECONDS, 2 / self.fps):
                return (
                    f"ended after {read} frames, at {played:.1f} s of the {declared:.1f} s "
                    "its container declares"
                )
        if suffix in PACKET_VIDEO_SUFFIXES and ends_mid_packet(self.path):
            return f"ended after {read} frames, inside its last MPEG packet"
        return None


TS_PACKETS = ((188, 0), (192, 4))  # (packet size, offset of its 0x47 sync byte): TS, M2TS
PS_TAIL = 1 << 16  # bytes of a program stream searched for its last pack


def ends_mid_packet(path: Path) -> bool:
    """Whether an MPEG transport stream (.ts) or program stream (.mpg, .mpeg) ends inside a
    packet, which a whole stream never does: the last three transport packets must each start
    with their sync byte, the program stream's last pack must run to the end of the file.
    False when the tail cannot be read or parsed (nothing to say), or when the file ends on a
    packet boundary, which a cut may do too."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(size - PS_TAIL, 0))
            tail = file.read()
    except OSError:
        return False
    if path.suffix.lower() == ".ts":
        return size >= 188 and not any(
            all(tail[-packet * k + offset] == 0x47 for k in range(1, min(3, size // packet) + 1))
            for packet, offset in TS_PACKETS
        )
    pack = tail.rfind(b"\x00\x00\x01\xba")
    return pack >= 0 and _program_stream_end(tail, pack) > len(tail)


def _program_stream_end(data: bytes, pos: int) -> int:
    """Where the pack at `pos` and the packets after it end by their own lengths (past
    len(data) when the file ends inside one); len(data) when they cannot be parsed."""
    if pos + 14 > len(data):
        return len(data) + 1
    if data[pos + 4] >> 6 == 1:  # MPEG-2: 14 bytes and up to 7 of stuffing
        pos += 14 + (data[pos + 13] & 7)
    elif data[pos + 4] >> 4 == 2:  # MPEG-1: 12 bytes
        pos += 12
    else:
        return len(data)
    while pos < len(data):
        if pos + 4 > len(data):
            return len(data) + 1
        if data[pos : pos + 4] == b"\x00\x00\x01\xb9":  # the program end code
            return pos + 4
        if data[pos : pos + 3] != b"\x00\x00\x01" or data[pos + 3] <= 0xBA:
            return len(data)  # not a packet where one should start: no claim
        if pos + 6 > len(data):
            return len(data) + 1
        pos += 6 + int.from_bytes(data[pos + 4 : pos + 6], "big")
    return pos
