"""Keras builders for a spec's classifier and detector, and the weight transfer between them."""

from __future__ import annotations

import keras
import numpy as np
from convdet.export.specs import NUM_CLASSES, WINDOW, ArchSpec, pooling_kernel
from keras import layers


def _normalized(x: keras.KerasTensor, spec: ArchSpec, suffix: str) -> keras.KerasTensor:
    """Batch norm and the activation after a conv (nothing when the spec has no batch norm:
    the conv then carries its activation itself)."""
    if not spec.batch_norm:
        return x
    x = layers.BatchNormalization(name=f"bn{suffix}")(x)
    return layers.Activation(spec.activation, name=f"act{suffix}")(x)


def _conv_stack(inputs: keras.KerasTensor, spec: ArchSpec) -> keras.KerasTensor:
    """The spec's convolutions; a separable one is a depthwise 3x3 with the stride, then a
    pointwise 1x1, each normalized. Then the residual blocks, numbered on from the convs."""
    x = inputs
    common = {
        "padding": "same",
        "use_bias": not spec.batch_norm,
        "activation": None if spec.batch_norm else spec.activation,
    }
    for index, (filters, stride) in enumerate(spec.convs, start=1):
        if spec.separable and index > 1:
            x = layers.DepthwiseConv2D(3, stride, name=f"conv{index}_dw", **common)(x)
            x = _normalized(x, spec, f"{index}_dw")
            x = layers.Conv2D(filters, 1, name=f"conv{index}", **common)(x)
        else:
            x = layers.Conv2D(filters, 3, stride, name=f"conv{index}", **common)(x)
        x = _normalized(x, spec, str(index))
    filters = spec.convs[-1][0]
    for index in range(len(spec.convs) + 1, len(spec.layers) + 1):
        branch = layers.Conv2D(
            filters, 3, name=f"conv{index}", kernel_initializer="zeros", **common
        )(x)
        x = layers.Add(name=f"residual{index}")([x, _normalized(branch, spec, str(index))])
    return x


def build_classifier(spec: ArchSpec) -> keras.Model:
    """The 28x28 classifier: conv stack -> global max pool -> dense head -> softmax over 11."""
    inputs = keras.Input((WINDOW, WINDOW, 1), name="image")
    x = _conv_stack(inputs, spec)
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    for index, units in enumerate(spec.head, start=1):
        if spec.dropout:
            x = layers.Dropout(spec.dropout, name=f"dropout{index}")(x)
        x = layers.Dense(units, activation=spec.activation, name=f"head{index}")(x)
    x = layers.Dense(NUM_CLASSES, activation="softmax", name="classes")(x)
    return keras.Model(inputs, x, name=f"{spec.name}_classifier")


def build_detector(spec: ArchSpec, pooling: str) -> keras.Model:
    """The fully convolutional detector: input (None, None, 1), head as 1x1 convs per cell."""
    inputs = keras.Input((None, None, 1), name="image")
    x = _conv_stack(inputs, spec)
    kernel = pooling_kernel(pooling)
    if kernel > 1:
        x = layers.MaxPooling2D(kernel, strides=1, padding="same", name="pool")(x)
    for index, units in enumerate(spec.head, start=1):
        x = layers.Conv2D(units, 1, activation=spec.activation, name=f"head{index}")(x)
    x = layers.Conv2D(NUM_CLASSES, 1, activation="softmax", name="classes")(x)
    return keras.Model(inputs, x, name=f"{spec.name}_detector_{pooling}")


def transfer_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy every weighted layer of `target` from the layer of the same name in `source`.

    Kernels are reshaped to the target's shape: a Dense kernel (in, out) becomes a 1x1 Conv2D
    kernel (1, 1, in, out) and back, so weights move between classifier and detector.
    """
    for layer in target.layers:
        if layer.weights:
            weights = source.get_layer(layer.name).get_weights()
            shapes = [tuple(w.shape) for w in layer.weights]
            layer.set_weights(
                [np.reshape(w, shape) for w, shape in zip(weights, shapes, strict=True)]
            )


def grown_classifier(source: keras.Model, spec: ArchSpec) -> keras.Model:
    """`spec`'s classifier holding the weights of `source`, a classifier of the spec it grows
    from: every layer of `source` by name, the residual blocks as built (zero kernels, batch
    norm the identity), so the grown classifier computes what `source` computes."""
    classifier = build_classifier(spec)
    names = {layer.name for layer in source.layers if layer.weights}
    grown = {layer.name for layer in classifier.layers if layer.weights} - names
    residual = {
        f"{kind}{index}"
        for index in range(len(spec.convs) + 1, len(spec.layers) + 1)
        for kind in ("conv", "bn")
    }
    if not grown <= residual or names - {layer.name for layer in classifier.layers}:
        raise ValueError(f"{spec.name} does not grow from {source.name}")
    for layer in classifier.layers:
        if layer.name in names:
            layer.set_weights(source.get_layer(layer.name).get_weights())
    return classifier


def convolutionalize(classifier: keras.Model, spec: ArchSpec, pooling: str) -> keras.Model:
    """Build the detector and give it the classifier's weights (the head as 1x1 convs)."""
    detector = build_detector(spec, pooling)
    transfer_weights(classifier, detector)
    return detector
