"""Parity of exported detectors with the Keras detector, backend by backend, size by size.

Float models (ONNX in ONNX Runtime and OpenCV DNN, TFLite fp32 in LiteRT) must match Keras to
`FLOAT_TOLERANCE` everywhere. Quantized models are judged by what a user sees: the runtime's
default pipeline must find the same detections (class and place) as with the float model,
INT8_DETECTION_AGREEMENT of them pooled over the parity scenes of DETECTION_SEEDS seeds. Their
argmax on the cells where the float model sees a digit must also agree, pooled over all parity
scenes (one scene holds only 20-50 digit cells, so a single cell would move its own figure by
2-5 points) and at least INT8_SCENE_FLOOR in each scene; and digit accuracy stays within a
bound.

Why detections and not cells decide: the cells that flip under int8 are mostly a digit's
neighbours, whose float scores sit near a tie (digit score 0.5-0.75, top two classes within
0.4). A wide model's int8 file disagreed on 13 of 233 such cells (94.4%) yet found 319 of its
float twin's 321 detections, and its camera F1 was within half a point of float.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from convdet.data.scenes import SceneParams, generate_scenes
from convdet.measure.matching import agreeing_detections
from convdet.runtime.backends import open_backend
from convdet.runtime.classifier_cell import classifier_cell_scores
from convdet.runtime.defaults import DEFAULT_CONF
from convdet.runtime.detector import Detector
from convdet.runtime.modelinfo import ModelInfo
from convdet.runtime.preprocess import Preprocessor, stride_padded

PARITY_SIZES = ((28, 28), (100, 100), (127, 333), (480, 640), (720, 1280))
FLOAT_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2
INT8_DETECTION_AGREEMENT = 0.98
DETECTION_SEEDS = 3
INT8_AGREEMENT = 0.9  # pooled digit-cell floor: a broken quantization, whatever the detections
INT8_SCENE_FLOOR = 0.8
INT8_ACCURACY_DROP = 0.005
# Digits a parity scene may hold: the large sizes fill up (about 45 digits, 90 digit cells each; 230
# pooled), so one disagreeing int8 cell moves the pooled agreement by under half a point. With
# 12 a scene, 94 cells pooled, a model whose int8 agreed 94% on dense scenes scored 97.9%.
PARITY_MAX_DIGITS = 48

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ParityRow:
    """One backend on one input size, compared with the Keras detector."""

    backend: str
    size: tuple[int, int]
    max_abs_diff: float
    digit_cell_agreement: float  # argmax agreement on cells that are not background in Keras
    passed: bool
    digit_cells: int = 0  # how many cells Keras calls a digit

    def describe(self) -> str:
        """E.g. `onnxruntime basic.onnx 127x333: max abs diff 3.1e-07, agreement 100.00% ok`."""
        height, width = self.size
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{self.backend} {height}x{width}: max abs diff {self.max_abs_diff:.2e}, "
            f"digit-cell agreement {self.digit_cell_agreement:.2%} {verdict}"
        )


def parity_scenes(images: np.ndarray, labels: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """One real digit scene (float32 0..1, model polarity) at each of PARITY_SIZES."""
    scenes = []
    for height, width in PARITY_SIZES:
        if (height, width) == (28, 28):
            scenes.append(images[seed].astype(np.float32) / 255.0)
            continue
        params = SceneParams(
            "mnist", count=1, seed=seed, size=(width, height), max_digits=PARITY_MAX_DIGITS
        )
        (scene,) = generate_scenes(images, labels, params)
        scenes.append(scene.image.astype(np.float32) / 255.0)
    return scenes


def opencv_engines(explicit_pads: bool) -> dict[str, int | None]:
    """The OpenCV DNN engines to check an ONNX file in, by name (None: the default engine).
    OpenCV 5.0 has two: its classic engine and a new default one that computes `auto_pad`
    SAME_UPPER graphs wrongly (max abs diff ~0.98), checked only on graphs with explicit pads.
    OpenCV 4 and 5.1 have one engine, the default, which reads both kinds of graph right."""
    import cv2

    classic = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    if classic is None:
        return {"opencv-dnn": None}
    return {"opencv-dnn-classic": classic} | ({"opencv-dnn": None} if explicit_pads else {})


def opencv_runner(path: Path, engine: int | None) -> Runner:
    """The ONNX model through OpenCV DNN (`cv2.dnn.readNetFromONNX`) with `engine`, or the
    default engine for None."""
    import cv2

    if engine is None:
        net = cv2.dnn.readNetFromONNX(str(path))
    else:
        net = cv2.dnn.readNetFromONNX(str(path), engine)

    def run(batch: np.ndarray) -> np.ndarray:
        net.setInput(batch)
        return np.asarray(net.forward())

    return run


def runners_for(paths: Sequence[Path], explicit_pads: bool) -> dict[str, Runner]:
    """A runner per exported file and engine: ONNX Runtime and the OpenCV DNN engines of
    `opencv_engines` for .onnx; LiteRT for .tflite."""
    runners: dict[str, Runner] = {}
    for path in paths:
        engine = "onnxruntime" if path.suffix == ".onnx" else "litert"
        runners[f"{engine} {path.name}"] = open_backend(path).run
        if path.suffix == ".onnx":
            for name, opencv_engine in opencv_engines(explicit_pads).items():
                runners[f"{name} {path.name}"] = opencv_runner(path, opencv_engine)
    return runners


def compare(
    reference: np.ndarray, candidate: np.ndarray, background: int
) -> tuple[float, float, int]:
    """Max abs difference, argmax agreement on cells the reference calls a digit, and how
    many such cells there are."""
    if candidate.shape != reference.shape:
        raise ValueError(f"output shape {candidate.shape}, expected {reference.shape}")
    diff = float(np.abs(candidate - reference).max())
    labels = reference.argmax(-1)
    digits = labels != background
    agreement = (
        float((candidate.argmax(-1)[digits] == labels[digits]).mean()) if digits.any() else 1.0
    )
    return diff, agreement, int(digits.sum())


def tolerance_for(name: str) -> float | None:
    """Value tolerance for a backend name; None for int8 (judged by agreement instead)."""
    if "int8" in name:
        return None
    return FP16_TOLERANCE if "fp16" in name else FLOAT_TOLERANCE


def check_parity(
    reference: Runner,
    runners: dict[str, Runner],
    scenes: Sequence[np.ndarray],
    background: int,
    stride: int,
) -> list[ParityRow]:
    """Run every scene, padded to a multiple of `stride` as the runtime pads frames, through the
    reference and each runner; one row per (runner, scene), named by the scene's own size. A
    quantized runner's rows pass on its pooled digit-cell agreement and their own floor."""
    rows = []
    for scene in scenes:
        batch = stride_padded(scene[None].astype(np.float32), stride)
        expected = reference(batch)
        for name, run in runners.items():
            try:
                diff, agreement, cells = compare(expected, run(batch), background)
            except Exception as error:
                raise ValueError(f"{name} at {scene.shape[0]}x{scene.shape[1]}: {error}") from error
            tolerance = tolerance_for(name)
            passed = tolerance is None or diff <= tolerance
            rows.append(ParityRow(name, scene.shape, diff, agreement, passed, cells))
    pooled = pooled_agreements(rows)
    return [
        replace(
            row,
            passed=pooled[row.backend] >= INT8_AGREEMENT
            and row.digit_cell_agreement >= INT8_SCENE_FLOOR,
        )
        if row.backend in pooled
        else row
        for row in rows
    ]


def pooled_agreements(rows: Sequence[ParityRow]) -> dict[str, float]:
    """Each quantized backend's digit-cell agreement over all its rows' cells together (1.0
    when there are none)."""
    cells: dict[str, int] = {}
    agreeing: dict[str, float] = {}
    for row in rows:
        if tolerance_for(row.backend) is None:
            cells[row.backend] = cells.get(row.backend, 0) + row.digit_cells
            agreeing[row.backend] = (
                agreeing.get(row.backend, 0.0) + row.digit_cell_agreement * row.digit_cells
            )
    return {name: agreeing[name] / cells[name] if cells[name] else 1.0 for name in cells}


@dataclass(frozen=True)
class DetectionAgreement:
    """A quantized file's detections against its float twin's, pooled over scenes."""

    backend: str
    reference: int  # detections with the float model
    candidate: int  # detections with the quantized model
    matched: int  # of the candidate's, those on a float detection of the same class

    @property
    def f1(self) -> float:
        """Dice of the two sets of detections (1.0 when neither has any)."""
        total = self.reference + self.candidate
        return 2 * self.matched / total if total else 1.0

    @property
    def passed(self) -> bool:
        """At least INT8_DETECTION_AGREEMENT."""
        return self.f1 >= INT8_DETECTION_AGREEMENT

    def describe(self) -> str:
        """E.g. `litert deep_int8.tflite: detections 345 of 345 float ones found, 345
        reported, agreement 100.00% (at least 98%) ok`."""
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{self.backend}: detections {self.matched} of {self.reference} float ones found, "
            f"{self.candidate} reported, agreement {self.f1:.2%} "
            f"(at least {INT8_DETECTION_AGREEMENT:.0%}) {verdict}"
        )


def detection_agreement(
    reference: Path, candidate: Path, scenes: Sequence[np.ndarray], conf: float = DEFAULT_CONF
) -> DetectionAgreement:
    """Run the runtime's default detector (at `conf`) with both files on `scenes` (float32 0..1,
    model polarity) and match the candidate's detections to the reference's by the evaluation's
    rule (same class, centre inside the box)."""
    detectors = [Detector(path, conf, invert="off") for path in (reference, candidate)]
    counts = np.zeros(3, np.int64)
    for scene in scenes:
        frame = np.rint(scene * 255).astype(np.uint8)
        expected, found = (detector(frame).detections for detector in detectors)
        counts += [len(expected), len(found), agreeing_detections(expected, found)]
    engine = "onnxruntime" if candidate.suffix == ".onnx" else "litert"
    return DetectionAgreement(f"{engine} {candidate.name}", *map(int, counts))


def isolated_accuracy(
    run: Runner, images: np.ndarray, labels: np.ndarray, info: ModelInfo
) -> float:
    """Digit accuracy of a detector on 28x28 uint8 digits, read at its classifier cell as the
    runtime reads it (`Preprocessor.windows`)."""
    windows = Preprocessor(info).windows(images.astype(np.float32) / 255.0)
    classes = classifier_cell_scores(run, windows, info.classifier_cell).argmax(-1)
    return float(np.mean(classes == labels))
