"""Keras detector -> TFLite float32, float16 and int8 with dynamic height/width.

The converter starts from a SavedModel written by Keras' `model.export`: a converter built
from a concrete function that closes over Keras variables fails int8 calibration
(READ_VARIABLE). int8 is full-integer inside (TFLITE_BUILTINS_INT8) with float32 input and
output, so every variant keeps the same model contract. Metadata goes to a sidecar JSON.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import keras
import numpy as np
from convdet.runtime.modelinfo import ModelInfo, sidecar_path

PRECISIONS = ("fp32", "fp16", "int8")


def _converter(saved_model: Path, precision: str, calibration: Callable[[], Iterable[list]]):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def to_tflite(
    detector: keras.Model,
    info: ModelInfo,
    out_dir: Path,
    stem: str,
    calibration_images: list[np.ndarray],
    precisions: Iterable[str] = PRECISIONS,
) -> list[Path]:
    """Write `<stem>_<precision>.tflite` and its sidecar for each precision; return the paths.

    `calibration_images` are float32 (H, W) scenes in model polarity, used for int8 ranges.
    """
    import tensorflow as tf

    def calibration() -> Iterable[list[np.ndarray]]:
        for image in calibration_images:
            yield [image[None, :, :, None].astype(np.float32)]

    written = []
    with tempfile.TemporaryDirectory() as tmp:
        saved_model = Path(tmp) / "saved_model"
        signature = [tf.TensorSpec((1, None, None, 1), tf.float32, name="image")]
        detector.export(
            saved_model, format="tf_saved_model", input_signature=signature, verbose=False
        )
        for precision in precisions:
            if precision not in PRECISIONS:
                raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS}")
            path = out_dir / f"{stem}_{precision}.tflite"
            path.write_bytes(_converter(saved_model, precision, calibration).convert())
            metadata = ModelInfo(**{**info.__dict__, "precision": precision}).to_metadata()
            sidecar_path(path).write_text(json.dumps(metadata, indent=2) + "\n")
            written.append(path)
    return written
