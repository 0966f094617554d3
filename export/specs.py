"""Architectures as data: one spec builds both the 28x28 classifier and its detector.

The classifier and the detector share layer names (`conv1`..`convN`, `head1`.., `classes`),
so the detector takes the classifier's weights by name (see `convolutionalize`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW = 28
NUM_CLASSES = 11
BACKGROUND = 10
CLASS_NAMES = (*(str(digit) for digit in range(10)), "background")
POOLINGS = ("none", "max3", "max4")


@dataclass(frozen=True)
class ArchSpec:
    """A convolutionalizable classifier: 3x3 'same' convs, global max pool, a dense head."""

    name: str
    convs: tuple[tuple[int, int], ...]  # (filters, stride) per 3x3 conv
    head: tuple[int, ...]  # hidden dense units before the class layer
    default_pooling: str
    batch_norm: bool = False
    dropout: float = 0.0

    @property
    def stride(self) -> int:
        """Total stride of the conv stack: input pixels per grid cell."""
        return math.prod(stride for _, stride in self.convs)

    @property
    def feature_size(self) -> int:
        """Side of the classifier's final feature map on a WINDOW x WINDOW input."""
        size = WINDOW
        for _, stride in self.convs:
            size = math.ceil(size / stride)
        return size


ARCHS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        # The seed's architectures.
        ArchSpec("basic", ((16, 2), (32, 2), (64, 2)), (64,), default_pooling="max4"),
        ArchSpec(
            "deep",
            ((16, 2), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)),
            (64,),
            default_pooling="max4",
        ),
    )
}


def get_spec(name: str) -> ArchSpec:
    """The registered spec called `name`; ValueError listing the choices otherwise."""
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}; choose from {', '.join(ARCHS)}")
    return ARCHS[name]


def pooling_kernel(pooling: str) -> int:
    """Side of the stride-1 max pool before the head (1 for none)."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
    return 1 if pooling == "none" else int(pooling[-1])


def cell_offset(spec: ArchSpec, pooling: str) -> float:
    """Centre (continuous input pixels) of the classifier window that grid cell 0 stands for.

    With the input padded to a multiple of the stride, every stride-2 'same' conv pads only
    after, so classifier feature f starts at pixel stride*f and the 28x28 window whose features
    are f..f+F-1 (F = feature_size) is centred at stride*(f + (F-1)/2) + (WINDOW/2 -
    stride*(F-1)/2). A k x k 'same' max pool makes cell i aggregate features i-(k-1)//2 ..
    i-(k-1)//2+k-1, whose middle is the middle of the window the cell stands for.
    """
    kernel = pooling_kernel(pooling)
    middle_feature = -((kernel - 1) // 2) + (kernel - 1) / 2
    window_centre_at_feature_middle = WINDOW / 2 - spec.stride * (spec.feature_size - 1) / 2
    return spec.stride * middle_feature + window_centre_at_feature_middle
