"""What every frame source shares: the `Frame` items it yields, the `Source` protocol that
detect and the pipeline type against, and the errors sources raise.

A module of its own so that the image, video and live sources and SOURCE resolution
(`convdet.runtime.sources`) all build on it without importing one another.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal, Protocol

import numpy as np
from convdet.runtime.errors import ConvdetError


class SourceError(ConvdetError, OSError):
    """A SOURCE that cannot be used at all: missing, empty, or a camera that does not open."""


class StreamStopped(ConvdetError, OSError):
    """A live source that stopped delivering frames mid-run."""


class ImageError(ConvdetError, ValueError):
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


class Source(Protocol):
    """A source as detect uses it: a context manager iterating `Frame`s, with what progress
    lines, summaries and outputs need. The image batch, video file and live sources subclass
    it for the defaults and the context manager."""

    # images: a batch of files; video: a video file; live: a camera or stream.
    kind: Literal["images", "video", "live"]
    name: str  # how messages and records name the source (stream passwords masked)
    total: int | None = None  # items expected (for a progress bar), None when unknown
    fps: float | None = None  # frames per second of the input, when it has one
    dropped: int = 0  # live frames replaced by a newer one before they were processed

    @property
    def unit(self) -> str:
        """What progress lines and summaries call the items: images or frames."""
        return "images" if self.kind == "images" else "frames"

    @property
    def live(self) -> bool:
        """Whether frames come from a camera or stream in real time, the newest replacing
        one not yet taken (counted in `dropped`)."""
        return self.kind == "live"

    def __enter__(self) -> Source:
        """Open what the source reads (a capture, its reading thread)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the source when its `with` block ends, however it ends."""
        self.close()

    def close(self) -> None:
        """Release what the source holds (captures, threads); safe to call twice."""

    def __iter__(self) -> Iterator[Frame]:
        """The frames, or one error item per input that cannot be read."""
        ...
