"""Figures for `convdet benchmark`: latency, full-pipeline FPS, memory, import time and footprint
of the shipped detectors, next to the machine's matmul limit, the Keras baseline and sliding
windows, in one run (`run_benchmark`).

numpy, OpenCV and the runtime's backends only. The Keras baseline's predict is handed in by the
command as a `KerasFactory`, so importing or running this module never imports TensorFlow. Each
kind of figure is measured in its own module: `latency` (models; dense, sparse and temporal),
`video_modes` (the pipeline end to end in each mode), `keras_baseline`, `windows`, `memory`;
`report` prints them.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from convdet.data.digits import load_mnist_npz
from convdet.measure.frames import (
    SPARSE_STYLES,
    scene_frames,
    style_frame,
    video_frames,
    write_video,
)
from convdet.measure.keras_baseline import (
    KerasBaselineRow,
    KerasFactory,
    KerasPredict,
    measure_keras_baseline,
)
from convdet.measure.latency import ModelRow, SparseRow, latencies, measure_model, measure_sparse
from convdet.measure.memory import DetectRun, detect_run
from convdet.measure.timing import matmul_flops, model_flops
from convdet.measure.video_modes import PAGE_STYLE, VideoModesRow, measure_video_modes
from convdet.measure.windows import WindowsRow, measure_windows
from convdet.runtime.detector import Detector
from convdet.runtime.shipped import DEFAULT_ARCH

SIZES = ((320, 240), (640, 480), (1280, 720))
REFERENCE_SIZE = (640, 480)  # the size of the sparse table and the memory run, when measured
VARIANTS = (".onnx", "_fp32.tflite", "_fp16.tflite", "_int8.tflite")  # shipped files per arch

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """What to measure and how often; `workdir` receives the test videos and outputs."""

    models: tuple[Path, ...]
    workdir: Path
    sizes: tuple[tuple[int, int], ...] = SIZES
    repeat: int = 30
    warmup: int = 5
    threads: int | None = None
    frames: int = 60  # frames of each test video
    video: Path | None = None  # frames come from this video (resized) instead of scenes
    data: Path | None = None  # MNIST npz for generated scenes
    matmul_side: int = 2048
    sparse_styles: tuple[str, ...] = ()  # frame styles of the sparse and temporal table


@dataclass
class Figures:
    """Everything one benchmark run measured; `--json` writes `to_json()`:

    `machine` (cpu, cpus, load_average, versions), `settings`, `import_runtime_s`,
    `matmul_gflops`, `models` (ModelRow fields + `times_bound`, one per file and size),
    `keras_baseline` (KerasBaselineRow fields + `speedup`), `windows` (WindowsRow fields +
    `speedup`), `sparse` (SparseRow fields + `speedup` per mode), `video_modes` (VideoModesRow
    fields + `speedup`, each mode's pipeline FPS over the Keras baseline's), `detect_run`
    (DetectRun) and `notes` (why figures are missing). Times are in ms unless the key says
    `_s`; timings are {median_ms, p90_ms}.
    """

    machine: dict[str, Any]
    settings: dict[str, Any]
    import_runtime_s: float
    matmul_gflops: float
    models: list[ModelRow] = field(default_factory=list)
    keras_baseline: list[KerasBaselineRow] = field(default_factory=list)
    windows: list[WindowsRow] = field(default_factory=list)
    sparse: list[SparseRow] = field(default_factory=list)
    video_modes: list[VideoModesRow] = field(default_factory=list)
    detect_run: DetectRun | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready figures (paths as strings): the fields, each row with its derived ratios."""
        figures = asdict(self)
        for key, rows in (
            ("models", self.models),
            ("keras_baseline", self.keras_baseline),
            ("windows", self.windows),
            ("sparse", self.sparse),
            ("video_modes", self.video_modes),
        ):
            for row, record in zip(rows, figures[key], strict=True):
                for ratio in ("times_bound", "speedup"):
                    if hasattr(row, ratio):
                        record[ratio] = getattr(row, ratio)
        return json.loads(json.dumps(figures, default=str))


def machine() -> dict[str, Any]:
    """CPU, core count, load and library versions: what the figures depend on."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    versions["opencv"] = cv2.__version__
    with contextlib.suppress(ModuleNotFoundError):  # a LiteRT-only board has no onnxruntime
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        versions["ai-edge-litert"] = version("ai-edge-litert")
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu
        )
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "versions": versions,
    }


def import_seconds(runs: int = 3) -> float:
    """Wall time of `from convdet import Detector` (what a program embedding the detector
    imports) in a fresh interpreter, the best of `runs` (the least disturbed by other load,
    files in the page cache as after any first start)."""
    script = (
        "import time; t = time.perf_counter(); from convdet import Detector; "
        "print(time.perf_counter() - t)"
    )
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return min(times)


def run_benchmark(
    settings: Settings, keras_factory: KerasFactory | None, progress: Progress
) -> Figures:
    """Measure every model of `settings` at every size, the Keras baseline (when
    `keras_factory` is given) and sliding windows (when `<arch>_classifier.onnx` ships beside
    an ONNX model)."""
    settings.workdir.mkdir(parents=True, exist_ok=True)
    progress("import time and the float32 matmul limit")
    figures = Figures(
        machine=machine(),
        settings={key: value for key, value in asdict(settings).items() if key != "workdir"},
        import_runtime_s=import_seconds(),
        matmul_gflops=matmul_flops(settings.matmul_side) / 1e9,
    )
    predictors: dict[str, KerasPredict] = {}
    videos = {}
    for width, height in settings.sizes:
        progress(f"{width}x{height}: test video")
        frames = (
            video_frames(settings.video, (width, height), settings.frames)
            if settings.video is not None
            else scene_frames(settings.data, (width, height), settings.frames)
        )
        video = videos[width, height] = write_video(
            frames, settings.workdir / f"input_{width}x{height}.avi"
        )
        detectors = [Detector(path, threads=settings.threads) for path in settings.models]
        progress(f"{width}x{height}: latency of {len(detectors)} models, in turns")
        infer, detect = latencies(detectors, frames, settings)
        for index, (path, detector) in enumerate(zip(settings.models, detectors, strict=True)):
            progress(f"{width}x{height}: {path.name}")
            reference = path.with_name(f"{detector.info.arch}.onnx")
            stride = detector.info.stride  # the runtime pads frames to a multiple of it
            padded = (-(-height // stride) * stride, -(-width // stride) * stride)
            flops = model_flops(reference, *padded) if reference.is_file() else None
            machine_flops = figures.matmul_gflops * 1e9
            timings = (infer[index], detect[index])
            row = measure_model(detector, timings, frames, video, settings, flops, machine_flops)
            figures.models.append(row)
            if path.suffix != ".onnx":
                continue
            classifier = path.with_name(f"{row.arch}_classifier.onnx")
            if classifier.is_file():
                progress(f"{width}x{height}: sliding windows with {classifier.name}")
                figures.windows.append(
                    measure_windows(classifier, detector, frames[0], settings, flops)
                )
            if keras_factory is not None:
                progress(f"{width}x{height}: the Keras baseline for {row.arch}")
                if row.arch not in predictors:
                    predictors[row.arch] = keras_factory(row.arch, detector.info.pooling)
                figures.keras_baseline.append(
                    measure_keras_baseline(
                        predictors[row.arch], detector, frames, video, row, settings
                    )
                )
    size = REFERENCE_SIZE if REFERENCE_SIZE in videos else settings.sizes[0]
    tables = table_inputs(settings)
    if tables is not None:
        figures.sparse = sparse_rows(settings, size, tables, figures.keras_baseline, progress)
        figures.video_modes = video_modes_rows(settings, size, tables, predictors, progress)
    figures.notes += missing_notes(figures, keras_factory is not None)
    model = _default_onnx(settings.models) or settings.models[0]
    progress(f"peak memory of convdet detect on the {size[0]}x{size[1]} video")
    figures.detect_run = detect_run(videos[size], model, settings.workdir, settings.threads)
    return figures


def _default_onnx(models: tuple[Path, ...]) -> Path | None:
    """`<DEFAULT_ARCH>.onnx` among `models`, else None."""
    return next((path for path in models if path.name == f"{DEFAULT_ARCH}.onnx"), None)


@dataclass(frozen=True)
class TableInputs:
    """What the sparse and video tables are made of: their model (`<DEFAULT_ARCH>.onnx` among
    the models, else the first ONNX one), its architecture, the MNIST test digits their frames
    are drawn from (loaded once for both), and the digit that moves in their videos."""

    model: Path
    arch: str
    images: np.ndarray
    labels: np.ndarray

    @property
    def digit(self) -> np.ndarray:
        """The test digit the temporal frames and the still-page video move (the same in both,
        so the tables compare)."""
        return self.images[5]


def table_inputs(settings: Settings) -> TableInputs | None:
    """The sparse and video tables' inputs; None without an ONNX model or the MNIST data."""
    model = _default_onnx(settings.models) or next(
        (path for path in settings.models if path.suffix == ".onnx"), None
    )
    if model is None or settings.data is None or not settings.data.is_file():
        return None
    _, _, images, labels = load_mnist_npz(settings.data)
    return TableInputs(model, Detector(model, sparse="off").info.arch, images, labels)


def sparse_rows(
    settings: Settings,
    size: tuple[int, int],
    tables: TableInputs,
    keras: list[KerasBaselineRow],
    progress: Progress,
) -> list[SparseRow]:
    """The sparse and temporal table at `size` for the tables' model, one row per
    SPARSE_STYLES, beside the Keras baseline's predict of its architecture when measured."""
    baseline = next((row for row in keras if row.arch == tables.arch and row.size == size), None)
    keras_ms = baseline.predict.median_ms if baseline else None
    rows = []
    for style in settings.sparse_styles or SPARSE_STYLES:
        progress(f"{size[0]}x{size[1]}: dense, sparse and temporal on {style} frames")
        frame = style_frame(tables.images, tables.labels, style, size)
        rows.append(measure_sparse(tables.model, style, frame, tables.digit, settings, keras_ms))
    return rows


def video_modes_rows(
    settings: Settings,
    size: tuple[int, int],
    tables: TableInputs,
    predictors: dict[str, KerasPredict],
    progress: Progress,
) -> list[VideoModesRow]:
    """The end-to-end row at `size` for the tables' model: its pipeline over a video of a still
    page in each mode, beside the Keras baseline's loop when its predictor was made."""
    page = style_frame(tables.images, tables.labels, PAGE_STYLE, size)
    predict = predictors.get(tables.arch)
    progress(f"{size[0]}x{size[1]}: the pipeline on a still page, dense, sparse and temporal")
    return [measure_video_modes(tables.model, page, tables.digit, settings, predict)]


def missing_notes(figures: Figures, keras: bool) -> list[str]:
    """Why some figures are absent: no onnx package, no classifier ONNX, no ONNX model."""
    notes = []
    if any(row.gflops is None for row in figures.models):
        notes.append("FLOPs and the matmul bound need the onnx package and <arch>.onnx")
    onnx_archs = {row.arch for row in figures.models if row.engine == "onnxruntime"}
    for arch in sorted(onnx_archs - {row.arch for row in figures.windows}):
        notes.append(f"sliding windows skipped for {arch}: no {arch}_classifier.onnx")
    if keras and not onnx_archs:
        notes.append("the Keras baseline is compared with ONNX models only; none was measured")
    if not figures.sparse:
        notes.append("sparse and temporal figures need an ONNX model and the MNIST data")
    return notes
