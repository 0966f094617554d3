"""Where a detection run writes, decided and checked before the model loads (`plan_targets`),
and what a resumed batch has left to do (`resume`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from convdet.runtime.jsonl import unrecorded
from convdet.runtime.options import OptionError, OutputOptions
from convdet.runtime.paths import fresh_folder
from convdet.runtime.savers import VIDEO_SUFFIX, AnnotatedImageSaver, SaveError, file_id
from convdet.runtime.sources import ImageBatch, VideoSource, is_video_device

if TYPE_CHECKING:
    from convdet.runtime.sources import Source


@dataclass(frozen=True)
class Targets:
    """Where one run writes: the --json file, the --save folder and, for a video or camera
    without --save-interval, the video in it, the --coco file; and the files no saver may write
    over: the inputs and the --json file (frame names come only as frames do, so this guard,
    not a check beforehand, keeps them off the records)."""

    json: str | None
    folder: Path | None
    video: Path | None
    protect: list[Path]
    coco: Path | None = None


def batch_files(source: Source) -> list[tuple[Path, PurePath]]:
    """The (path, relative path) of each file of an image batch; none for other sources."""
    return source.files if isinstance(source, ImageBatch) else []


def live_name(name: str) -> str:
    """A file name for a live source: camera0, video0 for /dev/video0, or `stream` for URLs."""
    if name.isdigit():
        return f"camera{name}"
    return Path(name).name if is_video_device(name) else "stream"


def plan_targets(options: OutputOptions, specs: Sequence[str], source: Source) -> Targets:
    """The run's Targets for the SOURCE `specs` resolved as `source`: a fresh --save folder when
    the one named holds results, taking a --json or --coco FILE inside it along; OptionError
    when --json or --coco names an input or a file --save writes, --coco an existing file or
    the --json one, or --append a --json FILE that had to move."""
    inputs = [path for path, _relpath in batch_files(source)]
    inputs += [Path(spec) for spec in specs if Path(spec).is_file()]  # videos, lists
    inputs += [] if options.coco_images is None else [Path(options.coco_images)]
    save = options.save
    folder = None if save is None else fresh_folder(save)
    given = options.json
    json = given if given in (None, "-") else _moved(given, save, folder)
    if options.append and json != given:
        raise OptionError(
            f"--append: --json {given} is inside --save {save}, which holds earlier results, "
            f"so this run saves to {folder}; to append, give a --json FILE outside {save}"
        )
    coco = None if options.coco is None else Path(_moved(options.coco, save, folder))
    video = None
    if folder is not None and source.kind != "images" and options.save_interval is None:
        # MJPG in AVI, for video files as for cameras: each frame is a whole JPEG chunk on
        # disk as soon as the writer's buffer flushes, so a killed run (SIGKILL, power loss)
        # leaves a file that plays up to its last flushed frame. OpenCV's MP4 (mp4v) keeps
        # its index (moov) for the end, so a killed MP4 does not open at all, and its FFmpeg
        # writer cannot be told to fragment (OPENCV_FFMPEG_WRITER_OPTIONS reaches the codec,
        # not the muxer). The name stays the input's stem: clip.mp4 -> DIR/clip.avi.
        stem = source.path.stem if isinstance(source, VideoSource) else live_name(source.name)
        video = folder / f"{stem}{VIDEO_SUFFIX}"
    if coco is not None:
        _check_output("--coco", coco, inputs, folder, video, source)
        if json not in (None, "-") and coco.resolve() == Path(json).resolve():
            raise OptionError(f"--coco {coco} is the --json file; choose another file")
        if os.path.lexists(coco):
            raise OptionError(f"--coco {coco} already exists; choose another file")
    if json in (None, "-"):
        return Targets(json, folder, video, inputs, coco)
    _check_output("--json", Path(json), inputs, folder, video, source)
    return Targets(json, folder, video, [*inputs, Path(json)], coco)


def _moved(path: str, save: Path | None, folder: Path | None) -> str:
    """`path`, or when it lies inside the --save folder `save` and the run saves to a fresh
    `folder` instead (as `save` holds results), the same place inside `folder`."""
    if save is None or folder == save or not Path(path).resolve().is_relative_to(save.resolve()):
        return path
    return str(folder / Path(path).resolve().relative_to(save.resolve()))


def _check_output(
    option: str,
    output: Path,
    inputs: list[Path],
    folder: Path | None,
    video: Path | None,
    source: Source,
) -> None:
    """Refuse an `option` FILE (--json, --coco) that is an input, the --save folder, or a file
    --save writes (an annotated image or video), before anything is written."""
    found = file_id(output)
    if found is not None and found in {file_id(path) for path in inputs}:
        raise OptionError(
            f"{option} {output} is an input file; choose another file for the records"
        )
    if folder is None or not output.resolve().is_relative_to(folder.resolve()):
        return
    relative = PurePath(output.resolve().relative_to(folder.resolve()))
    if relative == PurePath():
        raise OptionError(f"{option} {output} is the --save folder; choose a file for the records")
    if video is not None:
        saved = {PurePath(video.name)}
    else:
        saved = set()
        for _path, relpath in batch_files(source):
            with contextlib.suppress(SaveError):  # refused paths are reported when saved
                saved.add(AnnotatedImageSaver.output_relpath(relpath))
    if relative in saved:
        what = "video" if video is not None else "image"
        raise OptionError(
            f"{option} {output} is where --save writes an annotated {what}; "
            "choose another file for the records"
        )


def resume(
    source: ImageBatch, json: str, retry_failed: bool
) -> tuple[str, set[str] | None, ImageBatch]:
    """For --resume: the line saying how much of the batch `source` the --json FILE already
    holds, the earlier failures run again (None without `retry_failed`), and the batch kept
    to the inputs still to do."""
    inputs = [str(path) for path, _relpath in source.files]
    pending, failed = unrecorded(json, inputs, retry_failed)
    rest = source.only(pending)
    line = resume_line(json, source.total, rest.total, len(failed) if retry_failed else None)
    return line, failed if retry_failed else None, rest


def resume_line(json: str, total: int, left: int, retried: int | None) -> str:
    """The line a resumed batch of `total` inputs starts with: how many the --json FILE `json`
    holds, the `left` to go and (with --retry-failed) how many of those are `retried`."""
    line = f"resuming: {total - left} of {total} inputs already in {json}, {left} to go"
    if retried is not None:
        line += f" ({retried} of them failed before and are retried)"
    return line
