"""Frame sources for `convdet detect`: image batches, video files, webcams and streams.

A source is a context manager and an iterable of `Frame` items. Image batches decode ahead of
the consumer in a thread pool and turn per-file problems into error items, so one bad file
never stops a batch. Live sources read in a thread that keeps only the newest frame, so
latency stays about one frame when inference is slower than the camera.
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import os
import re
import stat
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable, Container, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice, takewhile
from pathlib import Path, PurePath
from queue import Empty, Queue
from typing import Any, BinaryIO, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np
from convdet.runtime.native_stderr import native_lines
from convdet.runtime.paths import in_run_folders, opencv_path

IMAGE_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".bmp",
        ".dib",
        ".gif",
        ".webp",
        ".tif",
        ".tiff",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
    }
)
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
LIST_SUFFIXES = frozenset({".txt", ".lst"})
# The largest list file read: about a million paths of 64 bytes, far beyond any batch a list
# names by hand or script, while a runaway or forged file is refused instead of filling memory.
MAX_LIST_BYTES = 64 << 20
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt"})
# 40 megapixels: any real scan or photo of handwriting, while a forged header cannot make a
# decoder allocate gigabytes (a 16-bit 4-channel image this size is already 320 MB).
DEFAULT_MAX_PIXELS = 40_000_000
# Bytes read before the header is checked: every header we parse fits unless a JPEG carries
# over 1 MiB of EXIF/ICC segments or a TIFF keeps its IFD near the end (read whole, capped).
HEADER_BYTES = 1 << 20
HEADER_SLACK = 16 << 20  # metadata allowed beyond the pixels in max_file_bytes
PREFETCH_PER_WORKER = 2
READ_AHEAD = 4  # decoded video frames waiting for the detector

T = TypeVar("T")


class SourceError(OSError):
    """A SOURCE that cannot be used at all: missing, empty, or a camera that does not open."""


class StreamStopped(OSError):
    """A live source that stopped delivering frames mid-run."""


class ImageError(ValueError):
    """One image file that cannot be used; the message says why (without the file name)."""


@dataclass(frozen=True)
class Frame:
    """One item of a source: an image or video frame, or why a file could not be read.

    `relpath` is where the file sits below its source root (mirrored by --save); `path` is
    the file itself (so outputs never overwrite it).
    """

    source: str
    index: int | None
    image: np.ndarray | None
    error: str | None = None
    relpath: PurePath | None = None
    path: Path | None = None


class Capture(Protocol):
    """The part of `cv2.VideoCapture` a live source uses (tests pass stand-in cameras)."""

    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...
    def set(self, prop: int, value: float) -> bool: ...


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


# --- image files -------------------------------------------------------------------------


# A marker inside a scan's entropy-coded data: 0xFF followed by neither a stuffed 0x00, a
# restart marker (RST0..7) nor another 0xFF (fill before the marker).
_SCAN_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


def _jpeg_markers(data: bytes) -> Iterator[tuple[int, int]]:
    """Each marker of a JPEG after its SOI, with where it starts, read as a decoder reads them:
    segments skipped by their lengths (so an EXIF thumbnail's markers, inside one, are not the
    file's), a scan's entropy-coded data up to the next marker. Ends where the data ends;
    ImageError where no marker is found where one must start."""
    pos = 2
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            raise ImageError("corrupt JPEG (no marker where one must start)")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        yield marker, pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD9:  # markers without a length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # start of scan: its entropy-coded data runs to the next marker
            found = _SCAN_MARKER.search(data, pos)
            pos = len(data) if found is None else found.start()


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the first SOF marker, walking segment lengths (no decoding)."""
    for marker, pos in _jpeg_markers(data):
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
    raise ImageError("truncated JPEG header")


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which the PNG format requires to come first."""
    if data[12:16] != b"IHDR":
        raise ImageError("corrupt PNG header")
    return struct.unpack(">II", data[16:24])


def _bmp_size(data: bytes) -> tuple[int, int]:
    """Width and height from the DIB header (OS/2 16-bit fields or Windows signed 32-bit ones)."""
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height means top-down rows


def _tiff_size(data: bytes) -> tuple[int, int]:
    """ImageWidth (256) and ImageLength (257) from the first IFD of a classic TIFF."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    size: dict[int, int] = {}
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag, kind = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in (256, 257):
            short = kind == 3  # SHORT values sit in the first 2 bytes of the 4-byte field
            field = data[entry + 8 : entry + (10 if short else 12)]
            (size[tag],) = struct.unpack(order + ("H" if short else "I"), field)
    return size[256], size[257]


def _webp_size(data: bytes) -> tuple[int, int]:
    """Canvas size from the VP8X, VP8L or VP8 chunk header."""
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise ImageError("corrupt WebP header")


def _pnm_size(data: bytes) -> tuple[int, int]:
    """Width and height: the first two header tokens after the magic, comments removed."""
    tokens = re.sub(rb"#[^\n]*", b" ", data[2:1024]).split()
    return int(tokens[0]), int(tokens[1])


# (format, magic-byte test, size reader): the formats whose size we can check before decoding.
_HEADER_READERS: tuple[tuple[str, Callable[[bytes], bool], Callable[[bytes], Any]], ...] = (
    ("png", lambda d: d[:8] == b"\x89PNG\r\n\x1a\n", _png_size),
    ("jpeg", lambda d: d[:3] == b"\xff\xd8\xff", _jpeg_size),
    ("bmp", lambda d: d[:2] == b"BM", _bmp_size),
    ("gif", lambda d: d[:6] in (b"GIF87a", b"GIF89a"), lambda d: struct.unpack("<HH", d[6:10])),
    ("webp", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp_size),
    ("tiff", lambda d: d[:4] in (b"II*\x00", b"MM\x00*"), _tiff_size),
    ("pnm", lambda d: re.match(rb"P[1-6]\s", d[:3]) is not None, _pnm_size),
)


def image_header(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) read from the file header alone, before any decoding.

    Knowing the size first is what guards against decompression bombs: a small file whose
    header claims 60000x60000 is refused without allocating its pixels.
    """
    for name, matches, size in _HEADER_READERS:
        if matches(data):
            try:
                width, height = size(data)
            except (struct.error, IndexError, KeyError, ValueError) as error:
                raise ImageError(f"truncated or corrupt {name.upper()} header") from error
            return name, int(width), int(height)
    raise ImageError("not an image (unrecognised file header)")


def _check_png_chunks(data: bytes) -> None:
    """Raise ImageError unless every chunk's CRC matches and IEND is reached.

    Cheap (no inflating), and it keeps corrupt files away from libpng, which would print its
    own error lines besides ours.
    """
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        body = data[pos + 4 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(crc) < 4:
            break
        if zlib.crc32(body) != struct.unpack(">I", crc)[0]:
            kind = body[:4].decode("latin-1")
            raise ImageError(f"corrupt PNG data (chunk {kind!r} fails its checksum)")
        if body[:4] == b"IEND":
            return
        pos += 12 + length
    raise ImageError("truncated PNG (no IEND chunk)")


def _jpeg_complete(data: bytes) -> bool:
    """True when the JPEG's markers reach its end-of-image marker: bytes after it (padding, a
    phone's appended video, a trailer) are allowed, a file cut before it is not."""
    try:
        return any(marker == 0xD9 for marker, _pos in _jpeg_markers(data))
    except ImageError:
        return False


def max_file_bytes(max_pixels: int) -> int:
    """The largest file accepted for images of at most `max_pixels`: room for uncompressed
    samples of the widest kind (float32 RGBA) plus 16 MiB of metadata, so a huge or sparse
    file is refused from its size without being read."""
    return 16 * max_pixels + HEADER_SLACK


NOT_REGULAR = "not a regular file (a folder, device or FIFO)"


def _unreadable(error: OSError | ValueError) -> str:
    """Why a path could not be opened or looked at, as records say it."""
    return f"unreadable: {getattr(error, 'strerror', None) or error}"


def _open_regular(path: Path) -> tuple[BinaryIO, int]:
    """`path` opened for reading and its size; ImageError unless it is a regular file (a
    device such as /dev/zero or a FIFO would be read forever or block)."""
    try:
        # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        raise ImageError(_unreadable(error)) from error
    mode = os.fstat(descriptor)
    if not stat.S_ISREG(mode.st_mode):  # checked before fdopen, which refuses a folder itself
        os.close(descriptor)
        raise ImageError(NOT_REGULAR)
    return os.fdopen(descriptor, "rb"), mode.st_size


def _not_regular(path: Path) -> str:
    """Why `path`, which exists as a name but is no regular file, cannot be read (the reason
    a batch gives it), found without opening it: opening a device may act on it."""
    try:
        os.stat(path)
    except (OSError, ValueError) as error:  # a dangling link, a symlink loop
        return _unreadable(error)
    return NOT_REGULAR


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one image file as stored (depth and channels kept), or raise ImageError saying why.

    The header and the size it declares are checked from the first bytes before the rest is
    read (never more than `max_file_bytes`), so a huge, sparse or forged file costs no memory;
    JPEGs get their EXIF orientation applied (they have no alpha to keep), other formats are
    read unchanged.
    """
    handle, size = _open_regular(Path(path))
    try:
        with handle:
            if size == 0:
                raise ImageError("empty file (0 bytes)")
            head = handle.read(HEADER_BYTES)
            header = _header_or_none(head, complete=len(head) == size)
            limit = max_file_bytes(max_pixels)
            if size > limit:
                raise ImageError(
                    f"{size} bytes, more than an image within --max-pixels {max_pixels} "
                    f"needs ({limit})"
                )
            if header is not None:
                _check_pixels(header, max_pixels)
            data = head + handle.read(limit + 1 - len(head))
    except OSError as error:
        raise ImageError(_unreadable(error)) from error
    if len(data) > limit:  # the file grew while it was read
        raise ImageError(f"more than {limit} bytes, the most --max-pixels {max_pixels} allows")
    if header is None:  # a header longer than HEADER_BYTES (large EXIF or a late TIFF IFD)
        header = image_header(data)
        _check_pixels(header, max_pixels)
    return _decode(data, header[0])


def _header_or_none(head: bytes, complete: bool) -> tuple[str, int, int] | None:
    """`image_header(head)`, or None when a known format's header runs past `head` and more
    of the file follows (read in full, within the size cap, before trying again)."""
    try:
        return image_header(head)
    except ImageError:
        if complete or not any(matches(head) for _name, matches, _size in _HEADER_READERS):
            raise
        return None


def _check_pixels(header: tuple[str, int, int], max_pixels: int) -> None:
    """ImageError when the header declares more than `max_pixels` pixels, or none: a zero
    side, which decoders report in lines of their own (libpng's 'Image width is zero')."""
    kind, width, height = header
    if width <= 0 or height <= 0:
        raise ImageError(f"corrupt {kind.upper()} header (declares {width}x{height} pixels)")
    if width * height > max_pixels:
        raise ImageError(
            f"{width}x{height} is {width * height} pixels, more than --max-pixels {max_pixels}"
        )


def _refuse_large_capture(
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


# libjpeg's warnings (OpenCV keeps its default message handler, which prints them itself):
# "Corrupt JPEG data: premature end of data segment" is the only sign of a file cut short and
# closed with an end marker, whose missing rows it fills with grey.
LIBJPEG_LINE = re.compile(
    r"(Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters|Inconsistent "
    r"progression sequence|Warning: |Unsupported marker|Bogus |Huffman table)"
)


def _decode(data: bytes, kind: str) -> np.ndarray:
    """The pixels of a whole file whose header passed; ImageError for corrupt data or a
    decoder that runs out of memory."""
    if kind == "png":
        _check_png_chunks(data)
    if kind == "jpeg" and not _jpeg_complete(data):
        raise ImageError("truncated JPEG (no end-of-image marker)")
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if kind == "jpeg" else cv2.IMREAD_UNCHANGED
    lines = native_lines(LIBJPEG_LINE) if kind == "jpeg" else contextlib.nullcontext([])
    try:
        with lines as warnings:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as error:
        raise ImageError(f"corrupt {kind.upper()} data") from error
    except MemoryError as error:
        raise ImageError(f"not enough memory to decode this {kind.upper()}") from error
    cut = [line for line in warnings if "premature end" in line.lower()]
    if cut:  # the decoder ran out of data and filled the rest of the image with grey
        raise ImageError(f"truncated JPEG (libjpeg: {cut[0]})")
    if image is None or image.size == 0:
        raise ImageError(f"corrupt or truncated {kind.upper()} data")
    return image


# --- sources -----------------------------------------------------------------------------


class Source:
    """Base of all sources: a context manager yielding `Frame`s, with counters for summaries."""

    kind = ""
    name = ""
    total: int | None = None  # items expected (for a progress bar), None when unknown
    fps: float | None = None  # frames per second of the input, when it has one
    dropped = 0  # live frames replaced by a newer one before they were processed

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what the source holds (captures, threads); safe to call twice."""

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError


def prefetched(function: Callable[[Any], Any], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """`map(function, items)` computed ahead in `workers` threads, results in order.

    workers=0 computes each item when it is asked for (no overlap).
    """
    if workers <= 0:
        yield from map(function, items)
        return
    pending: deque[Future[Any]] = deque()
    remaining = iter(items)
    with ThreadPoolExecutor(workers, thread_name_prefix="convdet-read") as pool:
        try:
            ahead = islice(remaining, PREFETCH_PER_WORKER * workers)
            pending.extend(pool.submit(function, item) for item in ahead)
            while pending:
                result = pending.popleft().result()
                pending.extend(pool.submit(function, item) for item in islice(remaining, 1))
                yield result
        finally:
            for future in pending:
                future.cancel()


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


class ImageBatch(Source):
    """Image files decoded ahead of inference; unreadable files become error items, and so do
    the `unlisted` entries of `files` (subfolders that could not be listed and list files that
    could not be read, path -> why)."""

    kind = "images"

    def __init__(
        self,
        files: list[tuple[Path, PurePath]],
        *,
        name: str = "",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        workers: int = 4,
        unlisted: dict[Path, str] | None = None,
    ) -> None:
        self.files = files
        self.name = name
        self.total = len(files)
        self.max_pixels = max_pixels
        self.workers = workers
        self.unlisted = unlisted or {}

    def _read(self, file: tuple[Path, PurePath]) -> Frame:
        path, relpath = file
        if path in self.unlisted:
            return Frame(str(path), None, None, self.unlisted[path], relpath, path)
        try:
            image = load_image(path, self.max_pixels)
        except (ImageError, MemoryError) as error:
            return Frame(str(path), None, None, str(error), relpath, path)
        return Frame(str(path), None, image, None, relpath, path)

    def only(self, sources: Container[str]) -> ImageBatch:
        """This batch kept to the files whose source string (`str(path)`, as their records
        name them) is in `sources`, in order: what `detect --resume` has left to do."""
        return ImageBatch(
            [file for file in self.files if str(file[0]) in sources],
            name=self.name,
            max_pixels=self.max_pixels,
            workers=self.workers,
            unlisted={path: why for path, why in self.unlisted.items() if str(path) in sources},
        )

    def __iter__(self) -> Iterator[Frame]:
        return prefetched(self._read, self.files, self.workers)


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
        _refuse_large_capture(capture.get, capture.release, f"video {self.path}", self.max_pixels)
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
            _refuse_large_capture(
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


# --- resolving SOURCE --------------------------------------------------------------------


def _cannot_list(error: OSError) -> str:
    """The error record of a folder that could not be listed."""
    return f"cannot list this folder ({error.strerror or error}); its images are skipped"


def folder_files(
    folder: Path, *, recursive: bool = False
) -> tuple[list[tuple[Path, PurePath]], dict[Path, str]]:
    """Entries of `folder` (and below with `recursive`, not following links to folders) with
    image names, sorted, and the subfolders that could not be listed, each with why: a batch
    takes them among its files as failures, so images skipped for want of permission are never
    silent. OSError when `folder` itself cannot be listed."""
    unlisted: dict[Path, str] = {}

    def refused(error: OSError) -> None:
        if Path(error.filename) == folder:
            raise error
        unlisted[Path(error.filename)] = _cannot_list(error)

    walk = os.walk(folder, onerror=refused)
    # os.walk's `names` are all that is not a folder: regular files, and FIFOs, devices,
    # dangling links and symlink loops with image names, which become their own failures
    # (read as a list's entries are) instead of vanishing. A folder named x.png is a folder:
    # descended into with --recursive, left out without, as any subfolder is; nothing in it is
    # wrong, so it is no failure.
    levels = walk if recursive else islice(walk, 1)
    candidates = (Path(root, name) for root, _, names in levels for name in names)
    images = [path for path in candidates if path.suffix.lower() in IMAGE_SUFFIXES]
    files = sorted((path, path.relative_to(folder)) for path in [*images, *unlisted])
    return files, unlisted


def glob_files(pattern: str) -> tuple[list[tuple[Path, PurePath]], dict[Path, str]]:
    """Entries matching `pattern` (`**` descends), relative to its fixed leading folder, and
    the folders the match had to list but could not, each with why (as `folder_files`: pathlib's
    glob skips those silently). Entries that are not folders match, as in `folder_files`."""
    parts = PurePath(pattern).parts
    fixed = list(takewhile(lambda part: not _has_magic(part), parts[:-1]))
    root = Path(*fixed) if fixed else Path()
    unlisted: dict[Path, str] = {}
    found = set(_globbed(root, parts[len(fixed) :], unlisted))
    files = sorted((path, path.relative_to(root)) for path in [*found, *unlisted])
    return files, unlisted


def _globbed(folder: Path, parts: Sequence[str], unlisted: dict[Path, str]) -> Iterator[Path]:
    """Paths below `folder` matching the glob `parts`, as pathlib matches them: a part before
    the last matches folders (links to folders too), `**` any folders in between (never through
    a link, so a link loop cannot make it endless), the last part what is not a folder.
    Folders that cannot be listed go to `unlisted`."""
    part, rest = parts[0], parts[1:]
    if part == "**":
        if rest:  # a trailing ** matches folders alone, never an input
            yield from _globbed(folder, rest, unlisted)
            for entry in _entries(folder, unlisted):
                if _is_folder(entry) and not entry.is_symlink():
                    yield from _globbed(Path(entry.path), parts, unlisted)
        return
    if _has_magic(part):
        named = [entry for entry in _entries(folder, unlisted) if fnmatch.fnmatch(entry.name, part)]
        candidates = [(Path(entry.path), _is_folder(entry)) for entry in named]
    else:
        path = folder / part
        candidates = [(path, path.is_dir())] if os.path.lexists(path) else []
    for path, is_folder in candidates:
        if rest and is_folder:
            yield from _globbed(path, rest, unlisted)
        elif not rest and not is_folder:
            yield path


def _entries(folder: Path, unlisted: dict[Path, str]) -> list[os.DirEntry[str]]:
    """The entries of `folder`: none where there is no such folder (nothing matches there),
    and none, with why kept in `unlisted`, where it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        unlisted[folder] = _cannot_list(error)
        return []


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """Whether `entry` is a folder or a link to one; False for a dangling link or a loop."""
    try:
        return entry.is_dir()
    except OSError:
        return False


class ListError(SourceError):
    """A list file that cannot be read; `reason` says why without naming the file."""

    def __init__(self, list_file: Path, reason: str) -> None:
        super().__init__(f"list file {list_file}: {reason}")
        self.reason = reason


def listed_files(list_file: Path) -> list[tuple[Path, PurePath]]:
    """Paths named one per line in a UTF-8 text file (relative ones to the file's folder).

    Blank lines and lines starting with `#` are skipped, and so is a byte order mark before the
    first line (Windows editors write one); lines may end in CRLF. The relative path kept for
    --save is the line as written; the saver makes it safe. ListError naming the file when it
    cannot be opened or read, is not a regular file (a FIFO or device would block or never
    end), holds more than MAX_LIST_BYTES or is not UTF-8.
    """
    try:
        handle, size = _open_regular(list_file)
    except ImageError as error:
        raise ListError(list_file, str(error)) from None
    try:
        with handle:  # refused from its size unread; read at most the cap should it grow
            data = b"" if size > MAX_LIST_BYTES else handle.read(MAX_LIST_BYTES + 1)
    except OSError as error:
        raise ListError(list_file, _unreadable(error)) from None
    if max(size, len(data)) > MAX_LIST_BYTES:
        raise ListError(
            list_file,
            f"{max(size, len(data))} bytes, more than the {MAX_LIST_BYTES} a list may have "
            "(about a million paths)",
        )
    try:
        text = data.decode("utf-8-sig")  # a BOM (as Windows editors save) is no name
    except UnicodeDecodeError as error:
        raise ListError(list_file, f"not UTF-8 (a bad byte at offset {error.start})") from None
    files = []
    for line in text.splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            files.append((list_file.parent / entry, PurePath(entry)))
    return files


def _has_magic(text: str) -> bool:
    return re.search(r"[*?[]", text) is not None


def resolve_source(
    spec: str,
    *,
    recursive: bool = False,
    vid_stride: int = 1,
    loops: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 4,
    exclude: Path | None = None,
    camera_size: tuple[int, int] | None = None,
    camera_fps: float | None = None,
    alone: bool = True,
) -> Source:
    """The source SOURCE names: a webcam index or device path (/dev/video0), a stream URL, a
    video, an image, a folder, a glob or a text file listing images. Raises SourceError when
    it names nothing usable. `max_pixels` applies to images, videos and live sources (see
    VideoSource, LiveSource), `loops`
    to video files, `camera_size` (width, height) and `camera_fps` to cameras (see LiveSource).
    `exclude` is the --save folder: a folder, glob or list skips files in it and in its
    numbered run folders (earlier runs' outputs). An empty SOURCE is refused: as a path it
    would mean the current folder, which the user never named. A path that exists but is no
    regular file (/dev/zero, a FIFO, a dangling link, a symlink loop) is refused saying why
    when it is the only SOURCE (`alone`: the run would have nothing to do), and is that input's
    failure among several, as it is in the folder or glob a shell expanded into them; so is a
    list file that cannot be read (ListError alone, one failed input among several: the other
    SOURCEs still run), and an empty folder or list or a glob matching nothing (SourceError
    alone: the run would have nothing to do; among several, a batch whose one input fails
    saying it holds no images).
    """
    if not spec:
        raise SourceError("empty SOURCE ''; name an image, folder, glob, list, video or camera")
    if spec.isdigit() or is_video_device(spec):
        target = int(spec) if spec.isdigit() else spec
        return LiveSource(
            target,
            vid_stride=vid_stride,
            size=camera_size,
            fps=camera_fps,
            max_pixels=max_pixels,
        )
    if urlsplit(spec).scheme.lower() in STREAM_SCHEMES:
        return LiveSource(spec, vid_stride=vid_stride, max_pixels=max_pixels)
    path = Path(spec)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path, vid_stride=vid_stride, loops=loops, max_pixels=max_pixels)
    unlisted: dict[Path, str] = {}
    if path.is_dir():
        files, unlisted = folder_files(path, recursive=recursive)
        hint = "" if recursive else " (use --recursive to look in subfolders)"
    elif path.suffix.lower() in LIST_SUFFIXES and os.path.lexists(path):
        try:
            files, hint = listed_files(path), ""  # refuses a FIFO or device, a dangling link
        except ListError as error:
            if alone:
                raise
            files, hint = [(path, PurePath(path.name))], ""
            unlisted = {path: f"list file not read: {error.reason}; its images are skipped"}
            exclude = None  # named on its own, as an image is
    elif path.is_file() or (os.path.lexists(path) and not alone):
        files, hint = [(path, PurePath(path.name))], ""
        exclude = None  # an image named on its own is read wherever it is
    elif os.path.lexists(path):
        raise SourceError(f"{spec}: {_not_regular(path)}")
    elif _has_magic(spec):
        (files, unlisted), hint = glob_files(spec), ""
    else:
        raise SourceError(f"source not found: {spec}")
    if exclude is not None:
        saved = in_run_folders(exclude)
        kept = [file for file in files if not saved(file[0])]
        if files and not kept:
            hint = f" outside --save {exclude} and its numbered run folders"
        files = kept
    if not files and alone:
        raise SourceError(f"no images in {spec}{hint}")
    if not files:
        files, unlisted = [(path, PurePath(path.name))], {path: f"no images{hint}"}
    return ImageBatch(files, name=spec, max_pixels=max_pixels, workers=workers, unlisted=unlisted)


def resolve_sources(specs: Sequence[str], **options: Any) -> Source:
    """The source several SOURCE arguments name together (`options` as for `resolve_source`):
    one is that source; several images, folders, globs and lists (an unquoted glob the shell
    expanded) are one batch of all their images, in the order given. A video, camera or
    stream must be the only SOURCE: its outputs (a saved video, live statistics) are one
    stream's."""
    sources = [resolve_source(spec, **options, alone=len(specs) == 1) for spec in specs]
    if len(sources) == 1:
        return sources[0]
    batches: list[ImageBatch] = []
    for spec, source in zip(specs, sources, strict=True):
        if not isinstance(source, ImageBatch):
            what = "video" if source.kind == "video" else "camera or stream"
            raise SourceError(
                f"{spec} is a {what}, which must be the only SOURCE; "
                "several SOURCEs may be images, folders, globs and lists"
            )
        batches.append(source)
    return ImageBatch(
        [file for batch in batches for file in batch.files],
        name=" ".join(specs),
        max_pixels=batches[0].max_pixels,
        workers=batches[0].workers,
        unlisted={path: why for batch in batches for path, why in batch.unlisted.items()},
    )
