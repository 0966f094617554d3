"""What one detection run does, as checked, frozen values: the meaning of `convdet detect`'s
flags, so the command, the benchmark, the soak test and a distributed batch drive the same
pipeline (`convdet.runtime.pipeline`) without an argparse.Namespace.

Light on imports (no OpenCV): the command builds these before anything heavy loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from convdet.runtime.defaults import DEFAULT_CONF
from convdet.runtime.errors import OptionError

if TYPE_CHECKING:
    from convdet.runtime.detector import Detector

BACKEND_SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}
QUEUE_SIZE = 4  # frames waiting between the reader, the detector and the writer, each way


@dataclass(frozen=True)
class ModelOptions:
    """The detector and what its results keep: --model (a path or a shipped model's name, None
    for the shipped default), --backend, --conf, --scales (None: the pyramid), --invert,
    --threads, --sparse, --temporal, --recheck, and --classes as class ids (None: all)."""

    model: str | None = None
    backend: str = "auto"
    conf: float = DEFAULT_CONF
    scales: tuple[float, ...] | None = None
    invert: str = "auto"
    threads: int | None = None
    sparse: str = "auto"
    temporal: bool = False
    recheck: bool = True
    classes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class DrawOptions:
    """How saved and shown frames are annotated: --grid (cells, heatmap, off), --line-width,
    scores on boxes (not --hide-conf), the legend (not --no-legend), the stats bar in the
    window (not --no-stats) and in saved frames (--stats)."""

    grid: str = "cells"
    line_width: int = 2
    scores: bool = True
    legend: bool = True
    window_stats: bool = True
    saved_stats: bool = False


@dataclass(frozen=True)
class OutputOptions:
    """Where results go: --json FILE or '-' (--append, --resume, --retry-failed), --coco FILE
    (--coco-images GT), --save DIR (--save-interval, --save-crop, --save-txt, --save-conf) and
    --show (--wait seconds per image, None: until a key)."""

    json: str | None = None
    append: bool = False
    resume: bool = False
    retry_failed: bool = False
    coco: str | None = None
    coco_images: str | None = None
    save: Path | None = None
    save_interval: int | None = None
    save_crop: bool = False
    save_txt: bool = False
    save_conf: bool = False
    show: bool = False
    wait: float | None = None


@dataclass(frozen=True)
class PipelineOptions:
    """One run: the model, drawing and outputs, the source's --vid-stride (the saved video's
    rate) and --max-pixels (None: the sources' default), --io-threads (None: the default, 0:
    no reader or writer thread) and the depth of the queues between the stages."""

    model: ModelOptions = field(default_factory=ModelOptions)
    draw: DrawOptions = field(default_factory=DrawOptions)
    outputs: OutputOptions = field(default_factory=OutputOptions)
    vid_stride: int = 1
    max_pixels: int | None = None
    io_threads: int | None = None
    queue_size: int = QUEUE_SIZE


def model_path(model: str | None, backend: str) -> Path | None:
    """The model file to load: `model` (a path, or a shipped model's name), or the shipped
    default for `backend`; None lets the runtime choose its default. OptionError for a model
    the backend does not run."""
    from convdet.runtime.shipped import default_model_path, resolve_model

    if model is None:
        return None if backend == "auto" else default_model_path(backend)
    path = resolve_model(model, backend)
    if backend != "auto" and path.suffix.lower() != BACKEND_SUFFIXES[backend]:
        suffix = BACKEND_SUFFIXES[backend]
        raise OptionError(f"--backend {backend} runs {suffix} models, got {model}")
    return path


def load_detector(options: ModelOptions) -> Detector:
    """The detector `options` describe. `convdet.runtime.Detector` is looked up now, at each
    call, so a test (or an application) that replaces it is obeyed."""
    import convdet.runtime as runtime

    return runtime.Detector(
        model_path(options.model, options.backend),
        conf=options.conf,
        scales=options.scales,
        invert=options.invert,
        threads=options.threads,
        sparse=options.sparse,
        temporal=options.temporal,
        recheck=options.recheck,
    )
