"""SOURCE as a distributed batch's inputs: local images, folders, globs and lists resolved as
`convdet detect` resolves them (same inputs, same order, same failures), and object-store
prefixes (s3://, gs://, ...) listed through pyarrow's filesystems; and what --resume leaves
to do (`pending`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from convdet.runtime.errors import ConvdetError
from convdet.runtime.images import IMAGE_SUFFIXES
from convdet.runtime.jsonl import unrecorded
from convdet.runtime.sources import ImageBatch, SourceError, resolve_source

# Filesystems pyarrow opens from a URI (S3, Google Cloud Storage, HDFS, Azure; file:// for a
# local or mounted one): credentials and regions come from each machine's environment.
OBJECT_STORE_SCHEMES = frozenset({"s3", "gs", "gcs", "hdfs", "abfs", "abfss", "file"})
REFUSED = (
    "--engine ray runs image batches (images, folders, globs, lists, object-store prefixes), "
    "not {what}; run it without --engine ray"
)


class BatchError(ConvdetError, ValueError):
    """A SOURCE or output a distributed batch cannot take, said in one line."""


@dataclass
class Inputs:
    """A batch's inputs in order: `sources` (as records name them), `paths` (where a worker
    reads each: an absolute path or a URI) and `errors` (why an input fails before it is read,
    '' for none); `local` is the local files as one batch, for the output checks."""

    sources: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    local: ImageBatch = field(default_factory=lambda: ImageBatch([]))

    def add(self, source: str, path: str, error: str = "") -> None:
        """One more input."""
        self.sources.append(source)
        self.paths.append(path)
        self.errors.append(error)


def is_object_store(spec: str) -> bool:
    """Whether SOURCE `spec` is an object-store URI (s3://bucket/prefix, gs://..., file://)."""
    return urlsplit(spec).scheme.lower() in OBJECT_STORE_SCHEMES and "://" in spec


def resolve_inputs(specs: Sequence[str], *, recursive: bool, max_pixels: int) -> Inputs:
    """The inputs SOURCE `specs` name, each SOURCE in turn; BatchError for a video, camera or
    stream, SourceError (as `convdet detect`) for a SOURCE naming nothing usable."""
    inputs = Inputs()
    alone = len(specs) == 1
    local = []
    for spec in specs:
        if is_object_store(spec):
            for uri in object_store_files(spec, recursive, alone):
                inputs.add(uri, uri)
            continue
        source = resolve_source(
            spec, recursive=recursive, max_pixels=max_pixels, workers=0, alone=alone
        )
        if not isinstance(source, ImageBatch):
            what = "a video" if source.kind == "video" else "a camera or stream"
            raise BatchError(REFUSED.format(what=f"{what} ({spec})"))
        for path, _relpath in source.files:
            inputs.add(str(path), os.path.abspath(path), source.unlisted.get(path, ""))
        local.append(source)
    inputs.local = ImageBatch([file for batch in local for file in batch.files])
    return inputs


def object_store_files(spec: str, recursive: bool, alone: bool) -> list[str]:
    """The image URIs an object-store SOURCE names: itself when it is one object, else the
    images under the prefix (below it too with `recursive`), sorted. SourceError when there
    are none and it is the only SOURCE; among several, it is one input failing at its read."""
    from pyarrow import fs

    scheme = urlsplit(spec).scheme.lower()
    try:
        filesystem, path = fs.FileSystem.from_uri(spec)
        info = filesystem.get_file_info(path)
        if info.type == fs.FileType.File:
            return [spec]
        listed = []
        if info.type == fs.FileType.Directory:
            selector = fs.FileSelector(path, recursive=recursive)
            listed = filesystem.get_file_info(selector)
    except (OSError, ValueError) as error:
        raise SourceError(f"{spec}: {error}") from None
    images = sorted(
        entry.path
        for entry in listed
        if entry.type == fs.FileType.File and PurePosixPath(entry.path).suffix in IMAGE_SUFFIXES
    )
    if not images and alone:
        raise SourceError(f"no images in {spec}")
    return [f"{scheme}://{image}" for image in images] or [spec]


def pending(inputs: Inputs, json: str, retry_failed: bool) -> tuple[list[int], set[str]]:
    """For --resume: the positions of the inputs the --json FILE `json` has no record for, and
    the earlier failures among them run again (with `retry_failed`: an input whose records are
    all errors is not done), as `convdet detect --resume` decides."""
    left, failed = unrecorded(json, inputs.sources, retry_failed)
    return [i for i, source in enumerate(inputs.sources) if source in left], failed
