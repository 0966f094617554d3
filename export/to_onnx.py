"""Keras detector -> ONNX with tf2onnx: named dynamic dims, `image`/`scores` I/O, metadata."""

from __future__ import annotations

from pathlib import Path

import keras
import onnx
from convdet.runtime.modelinfo import ModelInfo

OPSET = 17
DYNAMIC_DIMS = ("batch", "height", "width")


def _name_dims(model: onnx.ModelProto, input_dims: tuple, output_dims: tuple) -> None:
    """tf2onnx names dynamic dims unk__N; give them the contract's names."""
    (graph_input,) = model.graph.input
    for dim, name in zip(graph_input.type.tensor_type.shape.dim, input_dims, strict=False):
        if name:
            dim.dim_param = name
    (graph_output,) = model.graph.output
    for dim, name in zip(graph_output.type.tensor_type.shape.dim, output_dims, strict=False):
        if name:
            dim.dim_param = name


def _softmax_after_transpose(model: onnx.ModelProto) -> None:
    """Swap the final channels-first Softmax and its Transpose to channels-last.

    tf2onnx leaves Softmax(axis=1) on the NCHW map and transposes after it; ONNX Runtime runs
    a Softmax over a non-last axis as transposes around a last-axis one, which took 0.42 ms of
    deep's 6 ms at 640x480. Transposing first and normalizing the last axis is the same
    function (a Softmax over the channels either way) for a fraction of the time.
    """
    nodes = model.graph.node
    if len(nodes) < 2:
        return
    softmax, transpose = nodes[-2], nodes[-1]
    if (
        softmax.op_type != "Softmax"
        or transpose.op_type != "Transpose"
        or list(transpose.input) != list(softmax.output)
        or onnx.helper.get_attribute_value(softmax.attribute[0]) != 1
        or onnx.helper.get_attribute_value(transpose.attribute[0]) != [0, 2, 3, 1]
    ):
        return
    logits, scores = softmax.input[0], transpose.output[0]
    channels_last = f"{logits}_channels_last"
    del nodes[-2:]
    nodes.extend(
        [
            onnx.helper.make_node(
                "Transpose", [logits], [channels_last], name=transpose.name, perm=[0, 2, 3, 1]
            ),
            onnx.helper.make_node("Softmax", [channels_last], [scores], name=softmax.name, axis=3),
        ]
    )


def explicit_pads(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every Conv and MaxPool whose padding is `auto_pad` SAME_UPPER given explicit
    `pads` instead: (k - s) // 2 before and the rest after, TensorFlow's 'same' padding on maps
    whose sides are multiples of the stride s, as every map of an input padded to a multiple of
    the model's stride is (the runtime's inputs). OpenCV 5's default DNN engine computes the
    SAME_UPPER graphs wrongly and these right; at other input sizes the graph is not TF's."""
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MaxPool"):
            continue
        attributes = {attribute.name: attribute for attribute in node.attribute}
        auto_pad = attributes.get("auto_pad")
        if auto_pad is None or onnx.helper.get_attribute_value(auto_pad) != b"SAME_UPPER":
            continue
        kernel = onnx.helper.get_attribute_value(attributes["kernel_shape"])
        strides = onnx.helper.get_attribute_value(attributes["strides"])
        before = [max(k - s, 0) // 2 for k, s in zip(kernel, strides, strict=True)]
        after = [max(k - s, 0) - b for k, s, b in zip(kernel, strides, before, strict=True)]
        node.attribute.remove(auto_pad)
        node.attribute.append(onnx.helper.make_attribute("pads", before + after))
    return model


def _convert(
    model: keras.Model,
    shape: tuple,
    info: ModelInfo,
    path: Path,
    dims: tuple[tuple, tuple],
    pads: bool = False,
) -> onnx.ModelProto:
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec(shape, tf.float32, name="image"),)
    model.output_names = ["scores"]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=OPSET)
    _softmax_after_transpose(proto)
    if pads:
        explicit_pads(proto)
    _name_dims(proto, *dims)
    onnx.helper.set_model_props(proto, info.to_metadata())
    proto.producer_name = "convdet"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
    return proto


def to_onnx(detector: keras.Model, info: ModelInfo, path: Path) -> onnx.ModelProto:
    """Convert the detector (input [batch, height, width, 1], output [batch, grid_h, grid_w,
    classes]) with `info` in metadata_props, check the graph and save it. A detector whose
    classifier cell reads padded windows (`info.classifier_padded`) only ever gets inputs
    padded to a multiple of the stride, so it gets explicit pads (`explicit_pads`), which
    OpenCV 5's default DNN engine reads right; otherwise its 28x28 readout needs `auto_pad`."""
    dims = (DYNAMIC_DIMS, ("batch", "grid_h", "grid_w"))
    pads = info.classifier_padded
    return _convert(detector, (None, None, None, 1), info, path, dims, pads=pads)


def classifier_to_onnx(classifier: keras.Model, info: ModelInfo, path: Path) -> onnx.ModelProto:
    """Convert the 28x28 classifier (input [batch, 28, 28, 1], output [batch, classes]), for
    sliding-window comparisons; it is not a detector and the runtime does not load it."""
    window = info.window
    return _convert(classifier, (None, window, window, 1), info, path, (("batch",), ("batch",)))
