"""Image files as a source: the header check that refuses a decompression bomb before any
pixels are allocated, the decoding, and `ImageBatch`, which decodes ahead of the consumer in a
thread pool and turns per-file problems into error items, so one bad file never stops a batch.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import struct
import zlib
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import cv2
import imagesize
import numpy as np
from convdet.runtime.frames import Frame, ImageError, Source
from convdet.runtime.native_stderr import native_lines

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
# 40 megapixels: any real scan or photo of handwriting, while a forged header cannot make a
# decoder allocate gigabytes (a 16-bit 4-channel image this size is already 320 MB).
DEFAULT_MAX_PIXELS = 40_000_000
# Bytes read before the header is checked: every header we parse fits unless a JPEG carries
# over 1 MiB of EXIF/ICC segments or a TIFF keeps its IFD near the end (read whole, capped).
HEADER_BYTES = 1 << 20
HEADER_SLACK = 16 << 20  # metadata allowed beyond the pixels in max_file_bytes
PREFETCH_PER_WORKER = 2

# The formats whose size is checked before decoding, by their magic bytes: imagesize reads
# the sizes but names no format, which the messages and the decoder's own checks need.
_FORMATS: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("png", lambda d: d[:8] == b"\x89PNG\r\n\x1a\n"),
    ("jpeg", lambda d: d[:3] == b"\xff\xd8\xff"),
    ("bmp", lambda d: d[:2] == b"BM"),
    ("gif", lambda d: d[:6] in (b"GIF87a", b"GIF89a")),
    ("webp", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP"),
    ("tiff", lambda d: d[:4] in (b"II*\x00", b"MM\x00*")),
    ("pnm", lambda d: re.match(rb"P[1-6]\s", d[:3]) is not None),
)


def _format(data: bytes) -> str | None:
    """The format `data` starts as, by its magic bytes; None for none of `_FORMATS`."""
    return next((name for name, matches in _FORMATS if matches(data)), None)


def _size(kind: str, data: bytes) -> tuple[int, int]:
    """Width and height as the header declares them (negative when imagesize cannot tell)."""
    if kind == "gif":  # imagesize reads these 16-bit sides as signed: 65535 would be -1
        return struct.unpack("<HH", data[6:10])
    if kind == "bmp" and data[14:18] == struct.pack("<I", 12):
        # An OS/2 core header's 16-bit sides, which imagesize reads as Windows' 32-bit ones.
        return struct.unpack("<HH", data[18:22])
    return imagesize.get(io.BytesIO(data), exif_rotation=False)  # (-1, -1) when unreadable


def image_header(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) read from the file header alone, before any decoding.

    Knowing the size first is what guards against decompression bombs: a small file whose
    header claims 60000x60000 is refused without allocating its pixels.
    """
    kind = _format(data)
    if kind is None:
        raise ImageError("not an image (unrecognised file header)")
    try:
        width, height = _size(kind, data)
    except struct.error as error:  # cut inside the sides read here
        raise ImageError(f"truncated or corrupt {kind.upper()} header") from error
    if width < 0 or height < 0:
        raise ImageError(f"truncated or corrupt {kind.upper()} header")
    return kind, int(width), int(height)


def _check_png_chunks(data: bytes) -> None:
    """Raise ImageError unless every chunk's CRC matches and IEND is reached.

    Cheap (no inflating), and it keeps corrupt files away from libpng, which would print its
    own error lines besides ours. Written here: no library on a board checks chunks without
    decoding them.
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


# A marker inside a scan's entropy-coded data: 0xFF followed by neither a stuffed 0x00, a
# restart marker (RST0..7) nor another 0xFF (fill before the marker).
_SCAN_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def _jpeg_complete(data: bytes) -> bool:
    """True when the JPEG's markers reach its end-of-image marker: bytes after it (padding, a
    phone's appended video, a trailer) are allowed, a file cut before it is not.

    The markers are walked as a decoder reads them: segments skipped by their lengths (so an
    EXIF thumbnail's end marker, inside one, is not the file's), a scan's entropy-coded data
    up to the next marker. Written here: libjpeg fills a cut file's missing rows with grey,
    and no library on a board checks a JPEG's end without decoding it.
    """
    pos = 2
    while pos + 1 < len(data) and data[pos] == 0xFF:  # else no marker where one must start
        marker = data[pos + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
            if marker == 0xDA:  # start of scan: its entropy-coded data runs to the next marker
                found = _SCAN_MARKER.search(data, pos)
                pos = len(data) if found is None else found.start()
    return False


def max_file_bytes(max_pixels: int) -> int:
    """The largest file accepted for images of at most `max_pixels`: room for uncompressed
    samples of the widest kind (float32 RGBA) plus 16 MiB of metadata, so a huge or sparse
    file is refused from its size without being read."""
    return 16 * max_pixels + HEADER_SLACK


NOT_REGULAR = "not a regular file (a folder, device or FIFO)"


def unreadable(error: OSError | ValueError) -> str:
    """Why a path could not be opened or looked at, as records say it."""
    return f"unreadable: {getattr(error, 'strerror', None) or error}"


def open_regular(path: Path) -> tuple[BinaryIO, int]:
    """`path` opened for reading and its size; ImageError unless it is a regular file (a
    device such as /dev/zero or a FIFO would be read forever or block)."""
    try:
        # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        raise ImageError(unreadable(error)) from error
    mode = os.fstat(descriptor)
    if not stat.S_ISREG(mode.st_mode):  # checked before fdopen, which refuses a folder itself
        os.close(descriptor)
        raise ImageError(NOT_REGULAR)
    return os.fdopen(descriptor, "rb"), mode.st_size


def not_regular(path: Path) -> str:
    """Why `path`, which exists as a name but is no regular file, cannot be read (the reason
    a batch gives it), found without opening it: opening a device may act on it."""
    try:
        os.stat(path)
    except (OSError, ValueError) as error:  # a dangling link, a symlink loop
        return unreadable(error)
    return NOT_REGULAR


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one image file as stored (depth and channels kept), or raise ImageError saying why.

    The header and the size it declares are checked from the first bytes before the rest is
    read (never more than `max_file_bytes`), so a huge, sparse or forged file costs no memory;
    JPEGs get their EXIF orientation applied (they have no alpha to keep), other formats are
    read unchanged.
    """
    handle, size = open_regular(Path(path))
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
        raise ImageError(unreadable(error)) from error
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
        if complete or _format(head) is None:
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
