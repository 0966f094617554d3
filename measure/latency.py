"""Timing of the detectors: latency, draw time and pipeline FPS of each model file at each frame
size, and dense, sparse and temporal inference side by side on one frame per style."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import cycle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from convdet.data.motion import moving_digit_video
from convdet.measure.matching import agreeing_detections
from convdet.measure.pipeline_fps import pipeline_fps
from convdet.measure.timing import Timing, time_calls, time_in_turns
from convdet.runtime.annotate import BoxAnnotator, GridAnnotator
from convdet.runtime.detections import Detections
from convdet.runtime.detector import Detector, Result
from convdet.runtime.field import model_field
from convdet.runtime.sparse import SparseInference

if TYPE_CHECKING:
    from convdet.measure.benchmark import Settings

PIPELINE_RUNS = 2  # passes over the test video, the best counts (a burst of load hits one)
CAMERA_NOISE = 2.0  # camera noise (sigma, in grey codes) of the "noisy" temporal video
MODES = ("dense", "sparse", "temporal", "noisy")  # the sparse table's columns, in order


def best_fps(run: Callable[[], float]) -> float:
    """The best frame rate of PIPELINE_RUNS passes of `run` over a video."""
    return max(run() for _ in range(PIPELINE_RUNS))


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
    fps = best_fps(lambda: pipeline_fps(detector, video, settings.workdir))
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
        pipeline_fps=fps,
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
    keras_ms: float | None  # the Keras baseline's predict at this size (same architecture)

    @property
    def speedup(self) -> dict[str, float]:
        """Dense inference time over each mode's."""
        dense = self.infer["dense"].median_ms
        return {mode: dense / timing.median_ms for mode, timing in self.infer.items()}


def detections_agreement(expected: list[Detections], found: list[Detections]) -> float:
    """Dice of two runs' detections over the same frames, matched by the evaluation's rule
    (same class, centre inside the box); 1.0 when neither found any."""
    matched = total = 0
    for first, second in zip(expected, found, strict=True):
        matched += agreeing_detections(first, second)
        total += len(first) + len(second)
    return 2 * matched / total if total else 1.0


def sparse_coverage(detector: Detector, frame: np.ndarray) -> float:
    """The share of `frame`'s scale-1 input that sparse inference runs through the model of
    `detector` (1.0 when its receptive field is unknown)."""
    receptive = model_field(detector.backend)
    if receptive is None:
        return 1.0
    background = float(detector.preprocessor.background)
    inference = SparseInference(detector.backend.run, receptive, detector.info.stride, background)
    prepared, _ = detector.preprocessor.prepare(frame)
    inference(detector.preprocessor.model_input(prepared)[0, :, :, 0])
    return inference.last_coverage


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
    return SparseRow(
        style=style,
        model=model.name,
        size=(frame.shape[1], frame.shape[0]),
        coverage=sparse_coverage(detectors["dense"], frame),
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
