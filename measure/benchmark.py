"""Figures for `convdet benchmark`: latency, full-pipeline FPS, memory, import time and footprint
of the shipped detectors, next to the machine's matmul limit, the seed's path and sliding windows.

numpy, OpenCV and the runtime's backends only. The seed's Keras path is handed in by the command
as a callable (`SeedFactory`), so importing or running this module never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import cycle
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from convdet.data.motion import moving_digit_video
from convdet.data.scenes import STYLES, SceneParams, generate_scenes
from convdet.measure.evaluate import agreeing_detections
from convdet.runtime.annotate import BoxAnnotator, GridAnnotator, class_colors
from convdet.runtime.backends import session_options
from convdet.runtime.detections import Detections
from convdet.runtime.detector import Detector, Result
from convdet.runtime.field import model_field
from convdet.runtime.grid import windows_for_cells
from convdet.runtime.shipped import DEFAULT_ARCH
from convdet.runtime.sparse import SparseInference

SIZES = ((320, 240), (640, 480), (1280, 720))
TARGET_SIZE = (640, 480)  # where the targets are stated
VARIANTS = (".onnx", "_fp32.tflite", "_fp16.tflite", "_int8.tflite")  # shipped files per arch
WINDOW_BATCH = 512  # sliding windows per classifier call
VIDEO_FPS = 25.0
ROUNDS = 5  # latency rounds taken in turn over all models of one size
PIPELINE_RUNS = 2  # passes over the test video, the best counts (a burst of load hits one)

K = TypeVar("K")
SeedPredict = Callable[[np.ndarray], np.ndarray]  # (1, H, W, 1) float32 -> (1, gh, gw, C)
SeedFactory = Callable[[str, str], SeedPredict]  # (arch, pooling) -> predict
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


@dataclass(frozen=True)
class Timing:
    """Median and 90th percentile of repeated calls, in milliseconds."""

    median_ms: float
    p90_ms: float


def time_in_turns(
    functions: dict[K, Callable[[], object]], warmup: int, repeat: int, rounds: int = ROUNDS
) -> dict[K, Timing]:
    """Time `repeat` calls of each function after `warmup` untimed ones, in `rounds` rounds
    taken in turn, so that bursts of outside load hit all of them alike: on a shared machine
    the ratios between them hold much better than their absolute values."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    per_round = -(-max(repeat, 1) // rounds)
    samples: dict[K, list[float]] = {key: [] for key in functions}
    for _ in range(min(rounds, max(repeat, 1))):
        for key, function in functions.items():
            for _ in range(per_round):
                start = time.perf_counter()
                function()
                samples[key].append((time.perf_counter() - start) * 1e3)
    return {
        key: Timing(float(np.median(ms)), float(np.percentile(ms, 90)))
        for key, ms in samples.items()
    }


def time_calls(function: Callable[[], object], warmup: int, repeat: int) -> Timing:
    """Time `repeat` calls of `function` after `warmup` untimed ones."""
    return time_in_turns({0: function}, warmup, repeat, rounds=1)[0]


def matmul_flops(side: int = 2048, repeat: int = 10) -> float:
    """FLOP/s of the best of `repeat` float32 (side x side) @ (side x side) numpy products: the
    machine's practical dense-compute ceiling, measured on the spot (all cores, numpy's BLAS)."""
    rng = np.random.default_rng(0)
    left = rng.random((side, side), dtype=np.float32)
    right = rng.random((side, side), dtype=np.float32)
    out = left @ right  # warm-up: thread pool, caches
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        np.matmul(left, right, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * side**3 / best


def model_flops(path: Path, height: int, width: int) -> float | None:
    """FLOPs (2 x multiply-adds) of the Conv, MatMul and Gemm nodes of an ONNX model run on one
    height x width input, from onnx shape inference; None when the onnx package is missing."""
    try:
        import onnx
    except ModuleNotFoundError:
        return None
    model = onnx.load(str(path))
    named = {"batch": 1, "height": height, "width": width}
    for dim in model.graph.input[0].type.tensor_type.shape.dim:
        if dim.HasField("dim_param"):
            dim.dim_value = named.get(dim.dim_param, 1)
    graph = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    shapes = {
        value.name: tuple(dim.dim_value for dim in value.type.tensor_type.shape.dim)
        for value in (*graph.input, *graph.value_info, *graph.output)
    }
    shapes.update((tensor.name, tuple(tensor.dims)) for tensor in graph.initializer)
    macs = 0
    for node in graph.node:
        if node.op_type == "Conv":  # weight (out_channels, in_channels / groups, kh, kw)
            reduced = int(np.prod(shapes[node.input[1]][1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            transposed = any(a.name == "transA" and a.i for a in node.attribute)
            reduced = shapes[node.input[0]][0 if transposed else -1]
        else:
            continue
        macs += int(np.prod(shapes[node.output[0]])) * reduced  # out elements x reduced dim
    return 2.0 * macs


# --- inputs ----------------------------------------------------------------------------------


def scene_frames(data: Path, size: tuple[int, int], count: int) -> list[np.ndarray]:
    """`count` BGR frames of MNIST test digits placed by the scene generator at `size` (w, h)."""
    from convdet.data.digits import load_mnist_npz
    from convdet.data.scenes import SceneParams, generate_scenes

    _, _, images, labels = load_mnist_npz(data)
    scenes = generate_scenes(images, labels, SceneParams("mnist", count, seed=7, size=size))
    return [cv2.cvtColor(scene.image, cv2.COLOR_GRAY2BGR) for scene in scenes]


def full_of_digits(images: np.ndarray, size: tuple[int, int], gap: int = 4) -> np.ndarray:
    """A BGR frame of `size` (w, h) tiled with MNIST digits (N, 28, 28) every 28 + `gap` px,
    light on dark: ink in every cell's field, where sparse inference can skip nothing."""
    width, height = size
    side = images.shape[1] + gap
    frame = np.zeros((height, width), np.uint8)
    index = 0
    for top in range(0, height - side + gap + 1, side):
        for left in range(0, width - side + gap + 1, side):
            digit = images[index % len(images)]
            frame[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
            index += 1
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def video_frames(video: Path, size: tuple[int, int], count: int) -> list[np.ndarray]:
    """Up to `count` frames of `video`, resized to `size` (w, h); ValueError if it has none."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    try:
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"{video}: no frames could be read")
    return frames


def write_video(frames: list[np.ndarray], path: Path) -> Path:
    """Write BGR frames as an MJPG .avi (OpenCV's built-in codec) and return the path."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


# --- the runtime's path ----------------------------------------------------------------------


def run_pipeline(detector: Detector, video: Path, out: Path) -> float:
    """Frames per second of decode -> preprocess -> infer -> decode grid -> draw grid and boxes
    -> encode over `video`, decoding and encoding in their own threads (as `convdet detect`
    does); writes `out` (.avi)."""
    from convdet.runtime.sinks import VideoSaver
    from convdet.runtime.sources import VideoSource

    errors: list[str] = []
    annotators = (GridAnnotator(), BoxAnnotator())
    frames = 0
    start = time.perf_counter()
    with (
        VideoSource(video) as source,
        VideoSaver(out, fps=VIDEO_FPS, on_error=lambda what, why: errors.append(why)) as saver,
    ):
        for frame in source:
            if frame.error is not None:  # an empty or cut video
                raise OSError(f"{video}: {frame.error}")
            image = frame.image
            result = detector(image)
            for annotator in annotators:
                image = annotator.annotate(image, result)
            saver.write(image)
            frames += 1
    seconds = time.perf_counter() - start
    if errors:
        raise OSError(f"{out}: {errors[0]}")
    return frames / seconds


@dataclass
class ModelRow:
    """One model file at one frame size: latency, pipeline speed and its distance to the bound."""

    model: str
    arch: str
    engine: str
    precision: str
    threads: int | None
    size: tuple[int, int]
    file_bytes: int
    infer: Timing  # backend call on a prepared input
    detect: Timing  # Detector call: preprocess + infer + grid decoding and grouping
    draw_ms: float  # GridAnnotator + BoxAnnotator on a copy of the frame
    pipeline_fps: float
    gflops: float | None  # per frame
    bound_ms: float | None  # gflops / matmul GFLOP/s
    digit_accuracy: float | None  # from the export report, when it ships beside the model

    @property
    def times_bound(self) -> float | None:
        """How many times the matmul-bound limit the inference takes."""
        return None if self.bound_ms is None else self.infer.median_ms / self.bound_ms


def prepared_input(detector: Detector, frame: np.ndarray) -> np.ndarray:
    """The model input the detector makes of `frame` (a copy, not the reused buffer)."""
    prepared, _ = detector.preprocessor.prepare(frame)
    return detector.preprocessor.model_input(prepared).copy()


def latencies(
    detectors: list[Detector], frames: list[np.ndarray], settings: Settings
) -> tuple[dict[int, Timing], dict[int, Timing]]:
    """Inference and whole-detector latency of each detector (by position) on frames of one
    size, all models measured in turns."""
    infer: dict[int, Callable[[], object]] = {}
    detect: dict[int, Callable[[], object]] = {}
    for index, detector in enumerate(detectors):
        infer[index] = partial(detector.backend.run, prepared_input(detector, frames[0]))
        detect[index] = partial(lambda d, upcoming: d(next(upcoming)), detector, cycle(frames))
    return (
        time_in_turns(infer, settings.warmup, settings.repeat),
        time_in_turns(detect, settings.warmup, settings.repeat),
    )


def measure_model(
    detector: Detector,
    timings: tuple[Timing, Timing],
    frames: list[np.ndarray],
    video: Path,
    settings: Settings,
    flops: float | None,
    machine_flops: float,
) -> ModelRow:
    """Draw time and pipeline FPS of one detector on frames of one size, with its (inference,
    detector) `timings`, in one row."""
    path = detector.model_path
    infer, detect = timings
    result = detector(frames[0])
    annotators = (GridAnnotator(), BoxAnnotator())

    def draw() -> None:
        image = frames[0].copy()
        for annotator in annotators:
            annotator.annotate(image, result)

    draw_ms = time_calls(draw, settings.warmup, settings.repeat).median_ms
    out = settings.workdir / f"out_{path.stem}_{video.stem}.avi"
    pipeline_fps = max(run_pipeline(detector, video, out) for _ in range(PIPELINE_RUNS))
    out.unlink(missing_ok=True)
    height, width = frames[0].shape[:2]
    info = detector.info
    return ModelRow(
        model=path.name,
        arch=info.arch,
        engine="onnxruntime" if path.suffix == ".onnx" else "litert",
        precision=info.precision,
        threads=detector.backend.threads,
        size=(width, height),
        file_bytes=path.stat().st_size,
        infer=infer,
        detect=detect,
        draw_ms=draw_ms,
        pipeline_fps=pipeline_fps,
        gflops=None if flops is None else flops / 1e9,
        bound_ms=None if flops is None else flops / machine_flops * 1e3,
        digit_accuracy=export_accuracy(path, info.arch),
    )


def export_accuracy(path: Path, arch: str) -> float | None:
    """Digit accuracy of `path` as measured by `convdet export` (in `<arch>.export.json`)."""
    report = path.with_name(f"{arch}.export.json")
    if not report.is_file():
        return None
    return json.loads(report.read_text(encoding="utf-8")).get("digit_accuracy", {}).get(path.name)


# --- the seed's path (baseline) --------------------------------------------------------------


def seed_colour_grid(cell_class: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """BASELINE, the seed's colour mapping, kept only to be measured against: one Python call
    per grid cell and channel through `np.vectorize`. The runtime uses GridAnnotator instead."""
    channels = [np.vectorize(lambda c, k=k: colors[c][k])(cell_class) for k in range(3)]
    return np.dstack(channels).astype(np.uint8)


def seed_overlay(
    frame: np.ndarray, cell_class: np.ndarray, stride: int, colors: np.ndarray
) -> np.ndarray:
    """BASELINE: the seed's drawing, the vectorized colour grid scaled up by `stride` and
    blended half and half over the whole frame."""
    colours = seed_colour_grid(cell_class, colors)
    rows, cols = cell_class.shape
    tiles = cv2.resize(colours, (cols * stride, rows * stride), interpolation=cv2.INTER_NEAREST)
    height, width = frame.shape[:2]
    return cv2.addWeighted(frame, 0.5, tiles[:height, :width], 0.5, 0.0)


def seed_input(frame: np.ndarray) -> np.ndarray:
    """BASELINE: the seed's preprocessing, gray / 255 as a (1, H, W, 1) batch."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    return gray[None, ..., None]


def run_seed_pipeline(
    predict: SeedPredict, video: Path, out: Path, stride: int, colors: np.ndarray
) -> float:
    """BASELINE: frames per second of the seed's loop over `video`, one step after the other:
    decode, Keras predict, argmax, np.vectorize colours, blend, encode."""
    capture = cv2.VideoCapture(str(video))
    writer: cv2.VideoWriter | None = None
    frames = 0
    start = time.perf_counter()
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            cell_class = predict(seed_input(frame))[0].argmax(axis=-1)
            image = seed_overlay(frame, cell_class, stride, colors)
            if writer is None:
                size = (image.shape[1], image.shape[0])
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, size)
            writer.write(image)
            frames += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return frames / (time.perf_counter() - start)


@dataclass
class SeedRow:
    """The seed's path for one architecture at one size, with the runtime's figures beside it."""

    arch: str
    size: tuple[int, int]
    predict: Timing
    colour_ms: float  # np.vectorize colour grid + blend
    pipeline_fps: float
    runtime_model: str
    runtime_infer_ms: float
    runtime_grid_ms: float  # GridAnnotator
    runtime_pipeline_fps: float

    @property
    def speedup(self) -> float:
        """Full pipeline: the runtime's FPS over the seed's."""
        return self.runtime_pipeline_fps / self.pipeline_fps


def measure_seed(
    predict: SeedPredict,
    detector: Detector,
    frames: list[np.ndarray],
    video: Path,
    runtime_row: ModelRow,
    settings: Settings,
) -> SeedRow:
    """Time the seed's Keras predict, its colour mapping and its whole loop on the same frames
    as `runtime_row` (the runtime's default-precision model of the same architecture)."""
    batch = seed_input(frames[0])
    predicted = predict(batch)
    cell_class = predicted[0].argmax(axis=-1)
    stride, colors = detector.info.stride, class_colors(len(detector.labels))
    timing = time_calls(lambda: predict(batch), settings.warmup, settings.repeat)
    colour_ms = time_calls(
        lambda: seed_overlay(frames[0], cell_class, stride, colors), 1, settings.repeat
    ).median_ms
    result = detector(frames[0])
    grid = GridAnnotator()
    grid_ms = time_calls(
        lambda: grid.annotate(frames[0].copy(), result), 1, settings.repeat
    ).median_ms
    out = settings.workdir / f"seed_{runtime_row.arch}_{video.stem}.avi"
    runs = range(PIPELINE_RUNS)
    fps = max(run_seed_pipeline(predict, video, out, stride, colors) for _ in runs)
    out.unlink(missing_ok=True)
    return SeedRow(
        arch=runtime_row.arch,
        size=runtime_row.size,
        predict=timing,
        colour_ms=colour_ms,
        pipeline_fps=fps,
        runtime_model=runtime_row.model,
        runtime_infer_ms=runtime_row.infer.median_ms,
        runtime_grid_ms=grid_ms,
        runtime_pipeline_fps=runtime_row.pipeline_fps,
    )


# --- sliding windows -------------------------------------------------------------------------


@dataclass
class WindowsRow:
    """The 28x28 classifier on every cell's window vs the detector on the whole frame."""

    arch: str
    size: tuple[int, int]
    windows: int
    windows_timing: Timing  # cutting the windows + classifier batches
    detector_timing: Timing  # detector inference, same engine and threads
    windows_gflops: float | None
    detector_gflops: float | None
    agreement: float  # all cells: classifier argmax == detector argmax
    digit_agreement: float | None  # cells where either says a digit

    @property
    def speedup(self) -> float:
        """Sliding windows' time over the detector's."""
        return self.windows_timing.median_ms / self.detector_timing.median_ms


def measure_windows(
    classifier: Path,
    detector: Detector,
    frame: np.ndarray,
    settings: Settings,
    detector_flops: float | None,
) -> WindowsRow:
    """Run the classifier ONNX on every stride-spaced window of one prepared frame in batches
    of WINDOW_BATCH and compare labels and time with the detector on the same input."""
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(classifier), session_options(settings.threads), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    batch = prepared_input(detector, frame)
    scores = detector.backend.run(batch)[0]
    rows, cols = scores.shape[:2]

    def classify() -> np.ndarray:
        image, fill = batch[0, :, :, 0], float(detector.preprocessor.background)
        windows = windows_for_cells(image, detector.info, rows, cols, fill)
        chunks = range(0, len(windows), WINDOW_BATCH)
        return np.concatenate(
            [session.run(None, {name: windows[k : k + WINDOW_BATCH]})[0] for k in chunks]
        )

    labels = classify().argmax(axis=-1).reshape(rows, cols)
    grid = scores.argmax(axis=-1)
    warmup, repeat = min(settings.warmup, 1), max(settings.repeat // 10, 1)
    windows_timing = time_calls(classify, warmup, repeat)
    detector_timing = time_calls(lambda: detector.backend.run(batch), warmup, settings.repeat)
    background = detector.info.background
    digit = (labels != background) | (grid != background)
    window_flops = model_flops(classifier, detector.info.window, detector.info.window)
    height, width = frame.shape[:2]
    return WindowsRow(
        arch=detector.info.arch,
        size=(width, height),
        windows=rows * cols,
        windows_timing=windows_timing,
        detector_timing=detector_timing,
        windows_gflops=None if window_flops is None else window_flops * rows * cols / 1e9,
        detector_gflops=None if detector_flops is None else detector_flops / 1e9,
        agreement=float(np.mean(labels == grid)),
        digit_agreement=float(np.mean(labels[digit] == grid[digit])) if digit.any() else None,
    )


# --- sparse inference and temporal reuse ----------------------------------------------------

# Frame styles of the sparse and temporal table: the scene styles, MNIST digits sparsely placed
# ("few": at most FEW_DIGITS), a blank frame and one full of digits. Temporal reuse runs on a
# video of a digit moving over each style's frame, still (pixels elsewhere unchanged) and with
# camera noise of CAMERA_NOISE codes (sigma).
SPARSE_STYLES = (*STYLES, "few", "blank", "full")
FEW_DIGITS = 4
CAMERA_NOISE = 2.0


MODES = ("dense", "sparse", "temporal", "noisy")  # the table's columns, in order


@dataclass
class SparseRow:
    """One frame style through the default model: dense, sparse and temporal, side by side.

    `infer` times the inference stage (Result.timings["infer"]: sparse planning, crops and
    pasting included), `call` the whole Detector call, per mode of MODES: "dense"
    (sparse="off") and "sparse" (auto) on the style's frame, "temporal" in order over a video
    of a digit moving on it, "noisy" over its twin with camera noise. Sparse scores are
    compared with dense ones on the frame and the still video."""

    style: str
    model: str
    size: tuple[int, int]
    coverage: float  # share of the scale-1 input run through the model by sparse inference
    infer: dict[str, Timing]
    call: dict[str, Timing]
    sparse_max_diff: float  # largest |score| difference, sparse vs dense, all frames
    temporal_agreement: float  # detections of temporal vs dense (Dice), still video
    noisy_agreement: float  # the same with camera noise
    keras_ms: float | None  # the seed's Keras predict at this size (same architecture)

    @property
    def speedup(self) -> dict[str, float]:
        """Dense inference time over each mode's."""
        dense = self.infer["dense"].median_ms
        return {mode: dense / timing.median_ms for mode, timing in self.infer.items()}


def style_frame(images: np.ndarray, labels: np.ndarray, style: str, size: tuple[int, int]):
    """One frame of `style` at `size` (w, h): a generated scene, a few MNIST digits, a blank
    frame or a full one."""
    if style == "few":
        params = SceneParams("mnist", 1, seed=7, size=size, max_digits=FEW_DIGITS)
        return next(generate_scenes(images, labels, params)).image
    if style == "blank":
        return np.zeros((size[1], size[0], 3), np.uint8)
    if style == "full":
        return full_of_digits(images, size)
    return next(generate_scenes(images, labels, SceneParams(style, 1, seed=7, size=size))).image


def detections_agreement(expected: list[Detections], found: list[Detections]) -> float:
    """Dice of two runs' detections over the same frames, matched by the evaluation's rule
    (same class, centre inside the box); 1.0 when neither found any."""
    matched = total = 0
    for first, second in zip(expected, found, strict=True):
        matched += agreeing_detections(first, second)
        total += len(first) + len(second)
    return 2 * matched / total if total else 1.0


def measure_sparse(
    model: Path,
    style: str,
    frame: np.ndarray,
    digit: np.ndarray,
    settings: Settings,
    keras_ms: float | None,
) -> SparseRow:
    """Time the MODES on one style's frame in turns (dense and sparse on the frame, temporal
    over the videos of a digit moving on it, in order) and compare their results."""
    still = moving_digit_video(frame, digit, settings.frames, noise=0.0)
    noisy = moving_digit_video(frame, digit, settings.frames, noise=CAMERA_NOISE)
    videos = {"dense": [frame], "sparse": [frame], "temporal": still, "noisy": noisy}
    options = {"dense": {"sparse": "off"}, "sparse": {}, "temporal": {"temporal": True}}
    options["noisy"] = options["temporal"]
    detectors = {mode: Detector(model, threads=settings.threads, **options[mode]) for mode in MODES}
    infer_ms: dict[str, list[float]] = {mode: [] for mode in MODES}

    def call(mode: str, upcoming: Iterator[np.ndarray]) -> None:
        infer_ms[mode].append(detectors[mode](next(upcoming)).timings["infer"])

    runs = {mode: partial(call, mode, cycle(videos[mode])) for mode in MODES}
    calls = time_in_turns(runs, settings.warmup, settings.repeat)
    infer = {
        mode: Timing(
            float(np.median(ms[settings.warmup :])),
            float(np.percentile(ms[settings.warmup :], 90)),
        )
        for mode, ms in infer_ms.items()
    }
    results: dict[str, list[Result]] = {}
    for mode in ("temporal", "noisy"):
        detectors[mode].reset()
        results[mode] = [detectors[mode](image) for image in videos[mode]]
    for mode in ("dense", "sparse"):  # the frame itself, then the still video
        results[mode] = [detectors[mode](image) for image in [frame, *still]]
    reference = [detectors["dense"](image) for image in noisy]
    dense = detectors["dense"]
    receptive = model_field(dense.backend)
    coverage = 1.0
    if receptive is not None:
        background = float(dense.preprocessor.background)
        inference = SparseInference(dense.backend.run, receptive, dense.info.stride, background)
        prepared, _ = dense.preprocessor.prepare(frame)
        inference(dense.preprocessor.model_input(prepared)[0, :, :, 0])
        coverage = inference.last_coverage
    return SparseRow(
        style=style,
        model=model.name,
        size=(frame.shape[1], frame.shape[0]),
        coverage=coverage,
        infer=infer,
        call=calls,
        sparse_max_diff=max(
            float(np.abs(a.scores - b.scores).max())
            for a, b in zip(results["dense"], results["sparse"], strict=True)
        ),
        temporal_agreement=detections_agreement(
            [r.detections for r in results["dense"][1:]],
            [r.detections for r in results["temporal"]],
        ),
        noisy_agreement=detections_agreement(
            [r.detections for r in reference], [r.detections for r in results["noisy"]]
        ),
        keras_ms=keras_ms,
    )


# --- process-level figures -------------------------------------------------------------------


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


@dataclass
class DetectRun:
    """`convdet detect VIDEO --save DIR` in a child process: its peak resident memory."""

    command: list[str]
    model: str
    frames: int
    seconds: float
    peak_rss_mb: float


# Runs `convdet detect` with the given arguments, then reports the process's peak RSS (VmHWM
# belongs to this process image; ru_maxrss would include the parent's memory at fork).
PEAK_RSS_SCRIPT = """
import resource, sys
from convdet.cli import main
status = main(sys.argv[1:])
try:
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"peak_rss_kb {peak}", file=sys.stderr)
sys.exit(status)
"""


def detect_run(video: Path, model: Path, workdir: Path, threads: int | None) -> DetectRun:
    """Run `convdet detect` on `video` with an annotated video output, in a child process, and
    take its peak resident memory."""
    arguments = ["detect", str(video), "--model", str(model), "--save", str(workdir / "detect")]
    arguments += ["--threads", str(threads)] if threads else []
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_SCRIPT, *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    lines = done.stderr.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("peak_rss_kb "):
        raise OSError(f"convdet detect failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    capture = cv2.VideoCapture(str(video))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    peak_mb = int(lines[-1].split()[1]) / 1024
    shown = ["convdet", "detect", video.name, "--model", model.name, "--save", "DIR"]
    return DetectRun([*shown, *arguments[6:]], model.name, frames, seconds, peak_mb)


# --- the whole run ---------------------------------------------------------------------------


@dataclass
class Figures:
    """Everything one benchmark run measured; `--json` writes `to_json()`:

    `machine` (cpu, cpus, load_average, versions), `settings`, `import_runtime_s`,
    `matmul_gflops`, `models` (ModelRow fields + `times_bound`, one per file and size),
    `seed` (SeedRow fields + `speedup`), `windows` (WindowsRow fields + `speedup`),
    `sparse` (SparseRow fields + `speedup` per mode),
    `detect_run` (DetectRun), `notes` (why figures are missing) and `targets` (Target fields +
    `met`). Times are in ms unless the key says `_s`; timings are {median_ms, p90_ms}.
    """

    machine: dict[str, Any]
    settings: dict[str, Any]
    import_runtime_s: float
    matmul_gflops: float
    models: list[ModelRow] = field(default_factory=list)
    seed: list[SeedRow] = field(default_factory=list)
    windows: list[WindowsRow] = field(default_factory=list)
    sparse: list[SparseRow] = field(default_factory=list)
    detect_run: DetectRun | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready figures (paths as strings): the fields, each row with its derived ratios,
        and `targets`."""
        figures = asdict(self)
        for key, rows in (
            ("models", self.models),
            ("seed", self.seed),
            ("windows", self.windows),
            ("sparse", self.sparse),
        ):
            for row, record in zip(rows, figures[key], strict=True):
                for ratio in ("times_bound", "speedup"):
                    if hasattr(row, ratio):
                        record[ratio] = getattr(row, ratio)
        figures["targets"] = [{**asdict(t), "met": t.met} for t in targets(self)]
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


def run_benchmark(
    settings: Settings, seed_factory: SeedFactory | None, progress: Progress
) -> Figures:
    """Measure every model of `settings` at every size, the seed's path (when `seed_factory` is
    given) and sliding windows (when `<arch>_classifier.onnx` ships beside an ONNX model)."""
    settings.workdir.mkdir(parents=True, exist_ok=True)
    progress("import time and the float32 matmul limit")
    figures = Figures(
        machine=machine(),
        settings={key: value for key, value in asdict(settings).items() if key != "workdir"},
        import_runtime_s=import_seconds(),
        matmul_gflops=matmul_flops(settings.matmul_side) / 1e9,
    )
    predictors: dict[str, SeedPredict] = {}
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
            if seed_factory is not None:
                progress(f"{width}x{height}: the seed's path for {row.arch} (Keras)")
                if row.arch not in predictors:
                    predictors[row.arch] = seed_factory(row.arch, detector.info.pooling)
                figures.seed.append(
                    measure_seed(predictors[row.arch], detector, frames, video, row, settings)
                )
    size = TARGET_SIZE if TARGET_SIZE in videos else settings.sizes[0]
    figures.sparse = sparse_rows(settings, size, figures.seed, progress)
    figures.notes += missing_notes(figures, seed_factory is not None)
    model = next(
        (path for path in settings.models if path.name == f"{DEFAULT_ARCH}.onnx"),
        settings.models[0],
    )
    progress(f"peak memory of convdet detect on the {size[0]}x{size[1]} video")
    figures.detect_run = detect_run(videos[size], model, settings.workdir, settings.threads)
    return figures


def sparse_rows(
    settings: Settings, size: tuple[int, int], seed: list[SeedRow], progress: Progress
) -> list[SparseRow]:
    """The sparse and temporal table at `size` for the default model (`<DEFAULT_ARCH>.onnx`
    among the models, else the first ONNX one), one row per SPARSE_STYLES; none without an
    ONNX model or the MNIST data the frames are made of."""
    model = next(
        (path for path in settings.models if path.name == f"{DEFAULT_ARCH}.onnx"),
        next((path for path in settings.models if path.suffix == ".onnx"), None),
    )
    if model is None or settings.data is None or not settings.data.is_file():
        return []
    from convdet.data.digits import load_mnist_npz

    _, _, images, labels = load_mnist_npz(settings.data)
    arch = Detector(model, sparse="off").info.arch
    keras = _find(seed, arch=arch, size=size)
    rows = []
    for style in settings.sparse_styles or SPARSE_STYLES:
        progress(f"{size[0]}x{size[1]}: dense, sparse and temporal on {style} frames")
        frame = style_frame(images, labels, style, size)
        keras_ms = keras.predict.median_ms if keras else None
        rows.append(measure_sparse(model, style, frame, images[5], settings, keras_ms))
    return rows


def missing_notes(figures: Figures, seed: bool) -> list[str]:
    """Why some figures are absent: no onnx package, no classifier ONNX, no ONNX model."""
    notes = []
    if any(row.gflops is None for row in figures.models):
        notes.append("FLOPs and the matmul bound need the onnx package and <arch>.onnx")
    onnx_archs = {row.arch for row in figures.models if row.engine == "onnxruntime"}
    for arch in sorted(onnx_archs - {row.arch for row in figures.windows}):
        notes.append(f"sliding windows skipped for {arch}: no {arch}_classifier.onnx")
    if seed and not onnx_archs:
        notes.append("the seed's path is compared with ONNX models only; none was measured")
    if not figures.sparse:
        notes.append("sparse and temporal figures need an ONNX model and the MNIST data")
    return notes


# --- targets and the printed table -----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, checked on this run's figures (None: not measured)."""

    name: str
    value: float | None
    goal: float
    higher_is_better: bool
    unit: str

    @property
    def met(self) -> bool | None:
        """Whether the figure reaches the goal; None when it was not measured."""
        if self.value is None:
            return None
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal


def _find(rows: list[Any], **wanted: Any) -> Any:
    """The first row whose attributes equal `wanted`, else None."""
    return next((r for r in rows if all(getattr(r, k) == v for k, v in wanted.items())), None)


def targets(figures: Figures) -> list[Target]:
    """The issue's targets for the default model at 640x480."""
    arch, size = DEFAULT_ARCH, TARGET_SIZE
    fp32 = _find(figures.models, model=f"{arch}.onnx", size=size)
    lite32 = _find(figures.models, model=f"{arch}_fp32.tflite", size=size)
    int8 = _find(figures.models, model=f"{arch}_int8.tflite", size=size)
    seed = _find(figures.seed, arch=arch, size=size)
    windows = _find(figures.windows, arch=arch, size=size)
    accuracy_lost = (
        None
        if not (lite32 and int8 and lite32.digit_accuracy and int8.digit_accuracy)
        else 100 * (lite32.digit_accuracy - int8.digit_accuracy)
    )
    run = figures.detect_run
    styles = {row.style: row for row in figures.sparse}

    def ratio(style: str, mode: str) -> float | None:
        row = styles.get(style)
        return None if row is None else row.speedup[mode]

    return [
        Target("full pipeline", fp32 and fp32.pipeline_fps, 150, True, "FPS"),
        Target("pipeline vs the seed's", seed and seed.speedup, 12, True, "x"),
        Target("detector vs sliding windows", windows and windows.speedup, 10, True, "x"),
        Target("label agreement with windows", windows and 100 * windows.agreement, 95, True, "%"),
        Target("fp32 inference / matmul bound", fp32 and fp32.times_bound, 2, False, "x"),
        Target(
            "int8 speed-up over fp32 (LiteRT)",
            lite32 and int8 and lite32.infer.median_ms / int8.infer.median_ms,
            1.5,
            True,
            "x",
        ),
        Target("int8 digit accuracy lost", accuracy_lost, 0.5, False, "points"),
        Target("import runtime", figures.import_runtime_s, 0.3, False, "s"),
        Target("peak RSS of convdet detect", run and run.peak_rss_mb, 150, False, "MB"),
        Target("sparse vs dense, paper frames", ratio("paper", "sparse"), 2, True, "x"),
        Target("sparse vs dense, blank frame", ratio("blank", "sparse"), 20, True, "x"),
        Target("sparse vs dense, full of digits", ratio("full", "sparse"), 0.97, True, "x"),
        Target(
            "temporal vs dense, still notebook page",
            ratio("notebook", "temporal"),
            5,
            True,
            "x",
        ),
        Target(
            f"temporal vs dense, notebook, noise {CAMERA_NOISE:g}",
            ratio("notebook", "noisy"),
            5,
            True,
            "x",
        ),
    ]


def _number(value: float | None, digits: int = 1) -> str:
    """`value` with `digits` decimals, "-" when it was not measured."""
    return "-" if value is None else f"{value:.{digits}f}"


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


Column = tuple[str, Callable[[Any], str]]  # header, cell of a row

MODEL_COLUMNS: tuple[Column, ...] = (
    ("model", lambda r: r.model),
    ("engine", lambda r: f"{r.engine} {r.precision}"),
    ("threads", lambda r: str(r.threads or "default")),
    ("size", lambda r: _size(r.size)),
    ("KB", lambda r: f"{r.file_bytes / 1024:.0f}"),
    ("infer ms", lambda r: _number(r.infer.median_ms, 2)),
    ("p90", lambda r: _number(r.infer.p90_ms, 2)),
    ("detect ms", lambda r: _number(r.detect.median_ms, 2)),
    ("draw ms", lambda r: _number(r.draw_ms, 2)),
    ("pipeline FPS", lambda r: _number(r.pipeline_fps)),
    ("GFLOP", lambda r: _number(r.gflops, 2)),
    ("bound ms", lambda r: _number(r.bound_ms, 2)),
    ("x bound", lambda r: _number(r.times_bound, 2)),
    ("digit acc %", lambda r: _number(r.digit_accuracy and 100 * r.digit_accuracy, 2)),
)
SEED_COLUMNS: tuple[Column, ...] = (
    ("arch", lambda s: s.arch),
    ("size", lambda s: _size(s.size)),
    ("Keras predict ms", lambda s: _number(s.predict.median_ms, 2)),
    ("runtime infer ms", lambda s: _number(s.runtime_infer_ms, 2)),
    ("ratio", lambda s: f"{s.predict.median_ms / s.runtime_infer_ms:.1f}x"),
    ("np.vectorize colours ms", lambda s: _number(s.colour_ms, 2)),
    ("GridAnnotator ms", lambda s: _number(s.runtime_grid_ms, 2)),
    ("seed FPS", lambda s: _number(s.pipeline_fps)),
    ("runtime FPS", lambda s: _number(s.runtime_pipeline_fps)),
    ("ratio", lambda s: f"{s.speedup:.1f}x"),
)
WINDOWS_COLUMNS: tuple[Column, ...] = (
    ("arch", lambda w: w.arch),
    ("size", lambda w: _size(w.size)),
    ("windows", lambda w: str(w.windows)),
    ("windows ms", lambda w: _number(w.windows_timing.median_ms)),
    ("detector ms", lambda w: _number(w.detector_timing.median_ms, 2)),
    ("ratio", lambda w: f"{w.speedup:.1f}x"),
    ("GFLOP windows", lambda w: _number(w.windows_gflops)),
    ("GFLOP detector", lambda w: _number(w.detector_gflops, 2)),
    ("agreement %", lambda w: _number(100 * w.agreement, 2)),
    ("on digit cells %", lambda w: _number(w.digit_agreement and 100 * w.digit_agreement)),
)
SPARSE_COLUMNS: tuple[Column, ...] = (
    ("style", lambda r: r.style),
    ("run %", lambda r: f"{100 * r.coverage:.0f}"),
    ("dense ms", lambda r: _number(r.infer["dense"].median_ms, 2)),
    ("sparse ms", lambda r: _number(r.infer["sparse"].median_ms, 2)),
    ("x", lambda r: f"{r.speedup['sparse']:.2f}"),
    ("max |d|", lambda r: f"{r.sparse_max_diff:.0e}" if r.sparse_max_diff else "0"),
    ("temporal ms", lambda r: _number(r.infer["temporal"].median_ms, 2)),
    ("x", lambda r: f"{r.speedup['temporal']:.2f}"),
    ("agree %", lambda r: _number(100 * r.temporal_agreement, 2)),
    (f"noise {CAMERA_NOISE:g} ms", lambda r: _number(r.infer["noisy"].median_ms, 2)),
    ("x", lambda r: f"{r.speedup['noisy']:.2f}"),
    ("agree %", lambda r: _number(100 * r.noisy_agreement, 2)),
    ("calls ms d/s/t", lambda r: "/".join(f"{r.call[m].median_ms:.1f}" for m in MODES[:3])),
    ("Keras ms", lambda r: _number(r.keras_ms, 1)),
    (
        "Keras/(d, s, t)",
        lambda r: (
            "-"
            if r.keras_ms is None
            else "/".join(f"{r.keras_ms / r.infer[m].median_ms:.1f}" for m in MODES[:3])
        ),
    ),
)
TARGET_COLUMNS: tuple[Column, ...] = (
    (f"target ({DEFAULT_ARCH}, {_size(TARGET_SIZE)})", lambda t: t.name),
    ("measured", lambda t: f"{_number(t.value, 2)} {t.unit}"),
    ("goal", lambda t: f"{'>=' if t.higher_is_better else '<='} {t.goal:g} {t.unit}"),
    ("met", lambda t: {True: "yes", False: "NO", None: "not measured"}[t.met]),
)


def _table(columns: tuple[Column, ...], rows: list[Any]) -> str:
    """Rows as text columns padded to their widest cell, the first left-aligned."""
    cells = [[header for header, _ in columns]]
    cells += [[cell(row) for _, cell in columns] for row in rows]
    widths = [max(len(line[k]) for line in cells) for k in range(len(columns))]
    aligned = (
        [
            cell.ljust(width) if k == 0 else cell.rjust(width)
            for k, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        for line in cells
    )
    return "\n".join("  ".join(line).rstrip() for line in aligned)


def format_report(figures: Figures) -> str:
    """The printed report: machine, per-model table, the seed's path, sliding windows, targets."""
    machine, run = figures.machine, figures.detect_run
    parts = [
        f"{machine['cpus']} CPUs ({machine['cpu']}), load {machine['load_average'][0]:.2f} at "
        "start; " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"import runtime {figures.import_runtime_s:.3f} s; "
        f"float32 matmul (numpy) {figures.matmul_gflops:.1f} GFLOP/s",
    ]
    if run is not None:
        parts.append(
            f"peak RSS {run.peak_rss_mb:.0f} MB: {' '.join(run.command)} "
            f"({run.frames} frames, {run.seconds:.1f} s with start-up)"
        )
    sections = (
        (
            "latency per frame (median, p90 after warm-up), full pipeline FPS",
            MODEL_COLUMNS,
            figures.models,
        ),
        (
            "the seed's path (Keras model.predict, np.vectorize colours) vs the runtime",
            SEED_COLUMNS,
            figures.seed,
        ),
        (
            "sliding windows (the 28x28 classifier ONNX on every cell's window) vs the detector",
            WINDOWS_COLUMNS,
            figures.windows,
        ),
        (
            f"dense, sparse and temporal inference ({DEFAULT_ARCH} or the first ONNX model; "
            "the infer stage of Detector calls, median ms, every pyramid scale; temporal over "
            "a digit moving on the frame, still and with camera noise; agree %: detections "
            "matching dense; whole calls dense/sparse/temporal; Keras predict over each)",
            SPARSE_COLUMNS,
            figures.sparse,
        ),
        ("", TARGET_COLUMNS, targets(figures)),
    )
    for title, columns, rows in sections:
        if rows:
            parts += ["", *([f"{title}:"] if title else []), _table(columns, rows)]
    parts += [f"note: {note}" for note in figures.notes]
    return "\n".join(parts)
