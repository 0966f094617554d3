"""Architectures as data: one spec builds both the 28x28 classifier and its detector.

The classifier and the detector share layer names (`conv1`..`convN`, `head1`.., `classes`),
so the detector takes the classifier's weights by name (see `convolutionalize`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from convdet.runtime.defaults import POOLINGS
from convdet.runtime.errors import OptionError
from convdet.runtime.modelinfo import ModelInfo

WINDOW = 28
NUM_CLASSES = 11
BACKGROUND = 10
CLASS_NAMES = (*(str(digit) for digit in range(10)), "background")


@dataclass(frozen=True)
class ArchSpec:
    """A convolutionalizable classifier: 3x3 'same' convs, global max pool, a dense head.

    `separable` makes every conv after the first a depthwise 3x3 followed by a pointwise 1x1
    (each with batch norm and the activation), as MobileNet does: the same geometry for a
    fraction of the multiply-adds. ReLU fuses into the convolutions in ONNX Runtime and
    XNNPACK; swish runs as a separate pass over every feature map.

    `residual` 3x3 stride-1 blocks follow the convs on the last map, each adding a normalized
    convolution of its input to that input. Their kernels start at zero, so a block passes its
    input through unchanged until trained: the spec can start from a trained detector of the
    spec it `grows_from` (the same without the blocks) computing exactly what that one does.
    """

    name: str
    convs: tuple[tuple[int, int], ...]  # (filters, stride) per 3x3 conv
    head: tuple[int, ...]  # hidden dense units before the class layer
    default_pooling: str
    batch_norm: bool = False
    dropout: float = 0.0
    activation: str = "swish"
    separable: bool = False
    residual: int = 0
    grows_from: str | None = None

    @property
    def layers(self) -> tuple[tuple[int, int], ...]:
        """(filters, stride) of every 3x3 conv in order, the residual blocks' last."""
        return self.convs + ((self.convs[-1][0], 1),) * self.residual

    @property
    def stride(self) -> int:
        """Total stride of the conv stack: input pixels per grid cell."""
        return math.prod(stride for _, stride in self.layers)

    @property
    def feature_size(self) -> int:
        """Side of the classifier's final feature map on a WINDOW x WINDOW input."""
        size = WINDOW
        for _, stride in self.layers:
            size = math.ceil(size / stride)
        return size


# deep with more capacity where the maps are smallest: two 3x3 convs of 128 channels on the
# stride-8 map and a 128-unit head (receptive field 75 px against deep's 59), for camera
# frames, where a cell must tell handwriting from print, lines and texture. About 2.3x deep's
# multiply-adds, nearly all of them on the coarse map.
_WIDE = ArchSpec(
    "wide",
    ((16, 2), (16, 1), (32, 2), (32, 1), (64, 2), (128, 1), (128, 1)),
    (128,),
    default_pooling="max3",
    batch_norm=True,
)

ARCHS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        # basic and deep: the two classifiers convdet started from, kept as they were.
        ArchSpec(
            "basic", ((16, 2), (32, 2), (64, 2)), (64,), default_pooling="max4", batch_norm=True
        ),
        ArchSpec(
            "deep",
            ((16, 2), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)),
            (64,),
            # Measured (models/README.md): after scene fine-tuning, max3 gave F1 0.978 and
            # 98.8% digits, max4 0.975 and 98.6%, none 0.960 (and broke the classifier).
            default_pooling="max3",
            batch_norm=True,
        ),
        # Depthwise-separable convolutions with ReLU at deep's depth and strides, wider where
        # the maps are small (48, 128 channels): 0.54 GFLOP at 640x480 against deep's 1.48,
        # the fast option (models/README.md compares the candidates measured).
        ArchSpec(
            "separable",
            ((16, 2), (16, 1), (48, 2), (48, 1), (128, 2), (128, 1)),
            (64,),
            default_pooling="max3",
            batch_norm=True,
            activation="relu",
            separable=True,
        ),
        _WIDE,
        # wide with two residual blocks of 128 channels on the stride-8 map: a receptive field
        # of 107 px against wide's 75, so a cell sees more of the line, table or word around a
        # stroke, and more depth where real handwriting left wide short of fitting its own
        # training cheques. About 1.8x wide's multiply-adds. Grown from a trained wide, so it
        # is wide itself plus the blocks.
        replace(_WIDE, name="wide_res", residual=2, grows_from=_WIDE.name),
    )
}


def get_spec(name: str) -> ArchSpec:
    """The registered spec called `name`; OptionError listing the choices otherwise."""
    if name not in ARCHS:
        raise OptionError(f"unknown architecture {name!r}; choose from {', '.join(ARCHS)}")
    return ARCHS[name]


def pooling_kernel(pooling: str) -> int:
    """Side of the stride-1 max pool before the head (1 for none)."""
    if pooling not in POOLINGS:
        raise OptionError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
    return 1 if pooling == "none" else int(pooling[-1])


def first_feature_centre(spec: ArchSpec, size: int) -> float:
    """Centre (continuous input pixels) of the conv stack's feature 0 on a size x size input.

    TensorFlow's 'same' padding depends on the input size: a stride-s conv pads
    max(3 - s, 0) // 2 before an input divisible by s, and (3 - size % s) // 2 before one that
    is not. Composing each layer's centre map c_in = s * c_out + 1 - pad_before gives feature 0.
    """
    pads = []
    for _, stride in spec.layers:
        remainder = size % stride
        pads.append((max(3 - stride, 0) if remainder == 0 else 3 - remainder) // 2)
        size = math.ceil(size / stride)
    centre = 0.0
    for (_, stride), pad in zip(reversed(spec.layers), reversed(pads), strict=True):
        centre = stride * centre + 1 - pad
    return centre + 0.5


def cell_offset(spec: ArchSpec, pooling: str) -> float:
    """Centre (continuous input pixels) of the classifier window that grid cell 0 stands for.

    The runtime pads every frame to a multiple of the stride, so the detector's features sit
    where `first_feature_centre` puts them for such an input; the 28x28 classifier's features
    sit elsewhere (its odd-sized inner maps pad before). Cell 0 aggregates features
    -(k-1)//2 .. -(k-1)//2 + k-1 of a k x k 'same' max pool; lining up the middle of those with
    the middle of the classifier's F x F features places the window, whose centre is returned.
    """
    kernel = pooling_kernel(pooling)
    pooled_middle = (kernel - 1) / 2 - (kernel - 1) // 2
    detector = first_feature_centre(spec, spec.stride * 8) + spec.stride * pooled_middle
    classifier = first_feature_centre(spec, WINDOW) + spec.stride * (spec.feature_size - 1) / 2
    return detector - classifier + WINDOW / 2


def classifier_cell(spec: ArchSpec, pooling: str) -> int:
    """Row (= column) of the cell that computes the classifier on an unpadded 28x28 input
    (exactly so when the pool covers the classifier's whole feature map, as max4 does)."""
    kernel = pooling_kernel(pooling)
    return math.floor((spec.feature_size - 1) / 2 - (kernel - 1) / 2 + (kernel - 1) // 2)


def receptive_field(spec: ArchSpec, pooling: str) -> tuple[int, int]:
    """(start, end): grid cell i of `spec`'s detector depends on input pixels
    stride * i + start .. stride * i + end of an input padded to a multiple of the stride,
    composed backwards through the layers: a k-wide window with stride s whose 'same' padding
    puts p before maps outputs lo..hi to inputs s * lo - p .. s * hi - p + k - 1 (TensorFlow
    pads (k - s) // 2 before on sizes divisible by s, as every map of a padded input is)."""
    kernel = pooling_kernel(pooling)
    layers = [(3, stride) for _, stride in spec.layers]
    if kernel > 1:
        layers.append((kernel, 1))
    low, high = 0, 0  # the head's 1x1 convolutions keep a cell's own feature
    for size, stride in reversed(layers):
        before = max(size - stride, 0) // 2
        low, high = stride * low - before, stride * high - before + size - 1
    return low, high


def detector_info(spec: ArchSpec, pooling: str, **extra: Any) -> ModelInfo:
    """The model-contract metadata of `spec`'s detector with `pooling` (plus `extra` fields)."""
    return ModelInfo(
        classes=CLASS_NAMES,
        background=BACKGROUND,
        stride=spec.stride,
        window=WINDOW,
        cell_offset=cell_offset(spec, pooling),
        classifier_cell=classifier_cell(spec, pooling),
        receptive_field=receptive_field(spec, pooling),
        polarity="light-on-dark",
        arch=spec.name,
        pooling=pooling,
        **extra,
    )
