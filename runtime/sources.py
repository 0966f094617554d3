"""SOURCE resolution for `convdet detect`: what an argument names (a camera, a stream, a
video, an image, a folder, a glob or a list file) as one source, and several as one batch.

The sources themselves live in their own modules: `convdet.runtime.images` (image files and
batches), `convdet.runtime.video` (video files), `convdet.runtime.live` (cameras and streams),
`convdet.runtime.folders` (what a folder or glob holds), on the `Frame`, `Source` and errors
of `convdet.runtime.frames`. Their names used elsewhere are importable from here too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlsplit

from convdet.runtime.folders import folder_files, glob_files, has_magic
from convdet.runtime.frames import Frame, ImageError, Source, SourceError, StreamStopped
from convdet.runtime.images import (
    DEFAULT_MAX_PIXELS,
    ImageBatch,
    image_header,
    load_image,
    not_regular,
    open_regular,
    prefetched,
    unreadable,
)
from convdet.runtime.live import (
    STREAM_SCHEMES,
    LiveSource,
    is_camera,
    is_video_device,
    open_capture,
)
from convdet.runtime.paths import in_run_folders
from convdet.runtime.video import (
    VIDEO_SUFFIXES,
    VideoSource,
    ends_mid_packet,
    quiet_opencv,
    read_ahead,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "LIST_SUFFIXES",
    "MAX_LIST_BYTES",
    "Frame",
    "ImageBatch",
    "ImageError",
    "ListError",
    "LiveSource",
    "Source",
    "SourceError",
    "StreamStopped",
    "VideoSource",
    "ends_mid_packet",
    "image_header",
    "is_camera",
    "is_video_device",
    "listed_files",
    "load_image",
    "open_capture",
    "prefetched",
    "quiet_opencv",
    "read_ahead",
    "resolve_source",
    "resolve_sources",
]

LIST_SUFFIXES = frozenset({".txt", ".lst"})
# The largest list file read: about a million paths of 64 bytes, far beyond any batch a list
# names by hand or script, while a runaway or forged file is refused instead of filling memory.
MAX_LIST_BYTES = 64 << 20


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
        handle, size = open_regular(list_file)
    except ImageError as error:
        raise ListError(list_file, str(error)) from None
    try:
        with handle:  # refused from its size unread; read at most the cap should it grow
            data = b"" if size > MAX_LIST_BYTES else handle.read(MAX_LIST_BYTES + 1)
    except OSError as error:
        raise ListError(list_file, unreadable(error)) from None
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


def _one_input(
    path: Path, why: str | None = None
) -> tuple[list[tuple[Path, PurePath]], dict[Path, str]]:
    """The files and failures of a batch whose one input is `path` (kept as its base name for
    --save); with `why`, an input that fails saying so: how a SOURCE that cannot be used is
    one failed input among several, so the others still run."""
    return [(path, PurePath(path.name))], {} if why is None else {path: why}


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
    # Cameras and streams open through this module's `open_capture` (tests stand in theirs).
    if spec.isdigit() or is_video_device(spec):
        target = int(spec) if spec.isdigit() else spec
        return LiveSource(
            target,
            vid_stride=vid_stride,
            opener=open_capture,
            size=camera_size,
            fps=camera_fps,
            max_pixels=max_pixels,
        )
    if urlsplit(spec).scheme.lower() in STREAM_SCHEMES:
        return LiveSource(spec, vid_stride=vid_stride, opener=open_capture, max_pixels=max_pixels)
    path = Path(spec)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path, vid_stride=vid_stride, loops=loops, max_pixels=max_pixels)
    unlisted: dict[Path, str] = {}
    hint = ""
    if path.is_dir():
        files, unlisted = folder_files(path, recursive=recursive)
        hint = "" if recursive else " (use --recursive to look in subfolders)"
    elif path.suffix.lower() in LIST_SUFFIXES and os.path.lexists(path):
        try:
            files = listed_files(path)  # refuses a FIFO or device, a dangling link
        except ListError as error:
            if alone:
                raise
            why = f"list file not read: {error.reason}; its images are skipped"
            files, unlisted = _one_input(path, why)
            exclude = None  # named on its own, as an image is
    elif path.is_file() or (os.path.lexists(path) and not alone):
        files, unlisted = _one_input(path)  # what is no regular file fails as it is read
        exclude = None  # an image named on its own is read wherever it is
    elif os.path.lexists(path):
        raise SourceError(f"{spec}: {not_regular(path)}")
    elif has_magic(spec):
        files, unlisted = glob_files(spec)
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
        files, unlisted = _one_input(path, f"no images{hint}")
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
