"""Keras detector -> ONNX with tf2onnx: named dynamic dims, `image`/`scores` I/O, metadata."""

from __future__ import annotations

from pathlib import Path

import keras
import onnx

from runtime.modelinfo import ModelInfo

OPSET = 17
DYNAMIC_DIMS = ("batch", "height", "width")


def _name_dynamic_dims(model: onnx.ModelProto) -> None:
    """tf2onnx names dynamic dims unk__N; call them batch, height, width (and grid_h, grid_w)."""
    (graph_input,) = model.graph.input
    for dim, name in zip(graph_input.type.tensor_type.shape.dim, DYNAMIC_DIMS, strict=False):
        dim.dim_param = name
    (graph_output,) = model.graph.output
    for dim, name in zip(
        graph_output.type.tensor_type.shape.dim, ("batch", "grid_h", "grid_w"), strict=False
    ):
        dim.dim_param = name


def to_onnx(detector: keras.Model, info: ModelInfo, path: Path) -> onnx.ModelProto:
    """Convert `detector`, store `info` in metadata_props, check the graph and save it."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, None, None, 1), tf.float32, name="image"),)
    detector.output_names = ["scores"]
    model, _ = tf2onnx.convert.from_keras(detector, input_signature=signature, opset=OPSET)
    _name_dynamic_dims(model)
    onnx.helper.set_model_props(model, info.to_metadata())
    model.producer_name = "convdet"
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return model
