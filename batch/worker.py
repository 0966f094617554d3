"""The Ray Data actor of a distributed batch: one Detector per actor, and for each input of a
batch the JSON record the runtime's own `record_for` gives, returned to the driver, which
writes them (`convdet.batch.parts`): workers need no access to the output's disk."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from convdet.batch.inputs import is_object_store
from convdet.runtime.images import max_file_bytes, unreadable
from convdet.runtime.options import PipelineOptions, load_detector
from convdet.runtime.records import read_frame, record_for
from convdet.runtime.sources import DEFAULT_MAX_PIXELS, Frame, quiet_opencv


class DetectWorker:
    """A Ray Data callable class: loads the detector `options` describe once, then for each
    batch (columns index, source, path, error) returns each input's index and its record as
    JSON text."""

    def __init__(self, options: PipelineOptions) -> None:
        self.options = options
        self.detector = load_detector(options.model)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """The records of one batch of inputs, in its order."""
        with quiet_opencv():
            records = [
                record_for(
                    self.detector, self.frame(str(source), str(path), str(error)), self.options
                )
                for source, path, error in zip(
                    batch["source"], batch["path"], batch["error"], strict=True
                )
            ]
        return {
            "index": [int(index) for index in batch["index"]],
            "record": [json.dumps(record, allow_nan=False) for record in records],
        }

    def frame(self, source: str, path: str, error: str) -> Frame:
        """The input `source` read from `path` (a local path or an object-store URI) as a batch
        reads it, or failed with `error` when its SOURCE already said why."""
        if error:
            return Frame(source, None, None, error)
        if not is_object_store(path):
            return replace(read_frame(path, self.options.max_pixels), source=source)
        try:
            with fetched(path, self.options.max_pixels or DEFAULT_MAX_PIXELS) as local:
                return replace(read_frame(local, self.options.max_pixels), source=source)
        except OSError as failure:
            return Frame(source, None, None, unreadable(failure))


@contextlib.contextmanager
def fetched(uri: str, max_pixels: int) -> Iterator[Path]:
    """The object at `uri` copied to a temporary local file with its extension, removed
    afterwards: at most one byte more than an image within `max_pixels` may have, so the
    reader refuses a larger object from its size, as it would the file."""
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    with tempfile.TemporaryDirectory(prefix="convdet-") as folder:
        local = Path(folder, "input" + PurePosixPath(path).suffix)
        with filesystem.open_input_stream(path) as stream, open(local, "wb") as out:
            out.write(stream.read(max_file_bytes(max_pixels) + 1))
        yield local
