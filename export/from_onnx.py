"""An exported detector's weights back in its spec's Keras classifier, so stage 2 can go on from
a `.onnx` file `convdet export` wrote (a shipped model) when the run that made it is not at hand.

The export folds most batch norms into the convolution before them (the kernel scaled per
output channel, the shift become the convolution's bias); a depthwise one stays a Mul and an Add
after its convolution. The classifier gets the kernels as the file holds them and its batch
norms the per-channel affine map that is left; stage 2 keeps batch norm frozen, so the rebuilt
network computes what the file computes.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import onnx
from convdet.export.networks import build_classifier
from convdet.export.specs import ArchSpec
from convdet.runtime.modelinfo import ModelInfo
from onnx import numpy_helper


class ExportedModelError(ValueError):
    """The file is not a detector `convdet export` wrote for the wanted architecture."""


def exported_info(path: Path) -> ModelInfo:
    """The convdet metadata of an ONNX file; ExportedModelError when it has none or is no
    ONNX file."""
    try:
        model = onnx.load(str(path), load_external_data=False)
        metadata = {prop.key: prop.value for prop in model.metadata_props}
        return ModelInfo.from_metadata(metadata, source=str(path))
    except Exception as error:  # onnx raises DecodeError, ValueError, OSError, ...
        raise ExportedModelError(f"not a detector convdet exported ({error})") from None


def classifier_from_onnx(path: Path, spec: ArchSpec) -> keras.Model:
    """`spec`'s classifier holding the weights of the exported detector at `path`: the
    convolutions in graph order are the spec's conv, head and class layers in theirs."""
    graph = onnx.load(str(path)).graph
    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    classifier = build_classifier(spec)
    kinds = keras.layers.Conv2D | keras.layers.DepthwiseConv2D | keras.layers.Dense
    weighted = [layer for layer in classifier.layers if isinstance(layer, kinds)]
    if len(convs) != len(weighted):
        raise ExportedModelError(
            f"{len(convs)} convolutions, the {spec.name} architecture has {len(weighted)}"
        )
    for layer, node in zip(weighted, convs, strict=True):
        try:
            kernel = arrays[node.input[1]]  # (out, in / groups, kh, kw)
            bias = arrays[node.input[2]] if len(node.input) > 2 else np.zeros(len(kernel))
        except KeyError as error:
            raise ExportedModelError(f"the weights of {node.name} are not constant") from error
        if isinstance(layer, keras.layers.Dense):
            kernel = kernel.reshape(kernel.shape[:2]).T
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = kernel.transpose(2, 3, 0, 1)
        else:
            kernel = kernel.transpose(2, 3, 1, 0)
        expected = tuple(layer.weights[0].shape)
        if kernel.shape != expected:
            raise ExportedModelError(
                f"{node.name}: weights {kernel.shape}, {layer.name} {expected}"
            )
        if layer.use_bias:
            layer.set_weights([kernel, bias])
            continue
        layer.set_weights([kernel])
        scale, shift = _affine_after(graph, arrays, node.output[0], len(bias))
        norm = classifier.get_layer(layer.name.replace("conv", "bn", 1))
        gamma = scale * np.sqrt(1.0 + norm.epsilon)  # over sqrt(variance + epsilon), variance 1
        norm.set_weights([gamma, scale * bias + shift, np.zeros_like(bias), np.ones_like(bias)])
    return classifier


def _affine_after(
    graph: onnx.GraphProto, arrays: dict[str, np.ndarray], output: str, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel scale and shift of the Mul and Add by constants that follow `output`
    (an unfolded batch norm), composed; (1, 0) when none follows."""
    scale, shift = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    while True:
        users = [node for node in graph.node if output in node.input]
        if len(users) != 1 or users[0].op_type not in ("Mul", "Add"):
            return scale, shift
        user = users[0]
        constants = [arrays[name] for name in user.input if name in arrays]
        if len(constants) != 1 or constants[0].size != channels:
            return scale, shift
        value = constants[0].reshape(channels)
        if user.op_type == "Mul":
            scale, shift = scale * value, shift * value
        else:
            shift = shift + value
        output = user.output[0]
