"""Temporal reuse for video and cameras: a cell whose receptive field did not change beyond
noise since the previous processed frame keeps its scores; only the cells that see a change are
recomputed, with sparse inference's crops.

A pixel counts as changed when the mean change over its NEIGHBOURHOOD x NEIGHBOURHOOD
neighbourhood exceeds the threshold, or its own change exceeds PIXEL_CHANGE. Camera noise is
independent from pixel to pixel, so the neighbourhood mean cancels most of it (sigma / 5),
while a stroke that appears, leaves or moves changes that mean by far more; a per-pixel test
alone fires on noise all over the frame (nearly every cell recomputed at sigma 2 codes).

Each stream of same-size model inputs (one per pyramid scale) keeps a reference image, updated
only in the blocks found changed, so slow drift below the threshold never adds up: a kept cell's
scores were computed on the reference, and the frame is within the threshold of it (on every
neighbourhood mean, and within PIXEL_CHANGE on every pixel).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import cv2
import numpy as np
from convdet.runtime.field import cells_seeing, marked_blocks
from convdet.runtime.sparse import SparseInference

# Largest mean change of a model input's neighbourhood (0..1 range) still taken for noise. On
# synthetic video of every scene style (a digit moving on a still page, `convdet.data.motion`,
# wide.onnx, 640x480) with camera noise of sigma 2 codes, 0.04 recomputed 3-7% of scale 1's
# cells a frame (the moving digit's alone are 3%), 0.03 up to 44% (strings pages), and a
# per-pixel test at 0.03 nearly all of them; without noise, detections stay identical.
NOISE_THRESHOLD = 0.04
NEIGHBOURHOOD = 5  # side of the neighbourhood the mean change is taken over, px
# A single pixel's change that counts whatever its neighbours do: a thin stroke or a dot that
# the neighbourhood mean would dilute. Camera noise of sigma 2 codes moved model-input pixels by
# at most 0.09 between frames.
PIXEL_CHANGE = 0.25


def check_threshold(threshold: float) -> None:
    """ValueError unless `threshold` is a pixel change in 0 <= x < 1 (the model input's range)."""
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"temporal_threshold: expected 0 <= x < 1, got {threshold}")


def changed_pixels(image: np.ndarray, reference: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 mask (255: changed) of the pixels of `image` whose NEIGHBOURHOOD mean differs from
    `reference`'s by more than `threshold`, or that differ themselves by more than PIXEL_CHANGE
    (or `threshold`, if larger; threshold 0 marks every pixel that differs at all)."""
    difference = cv2.subtract(image, reference)
    local = cv2.blur(difference, (NEIGHBOURHOOD, NEIGHBOURHOOD))
    mean_moved = cv2.compare(cv2.absdiff(local, 0.0), threshold, cv2.CMP_GT)
    pixel_limit = max(PIXEL_CHANGE, threshold) if threshold > 0 else 0.0
    pixel_moved = cv2.compare(cv2.absdiff(difference, 0.0), pixel_limit, cv2.CMP_GT)
    return cv2.bitwise_or(mean_moved, pixel_moved)


@dataclass
class _Stream:
    reference: np.ndarray  # (H, W) padded model input, per block as last recomputed
    scores: np.ndarray  # (gh, gw, C)


class TemporalReuse:
    """Scores of successive padded model inputs, reusing the previous scores of cells whose
    field changed by at most `threshold` (0: only bit-identical fields are reused).
    `last_recomputed` is the share of cells the last call recomputed."""

    def __init__(self, sparse: SparseInference, threshold: float = NOISE_THRESHOLD) -> None:
        check_threshold(threshold)
        self.sparse = sparse
        self.threshold = threshold
        self._streams: dict[Hashable, _Stream] = {}
        self.last_recomputed = 1.0

    def reset(self) -> None:
        """Forget every stream: the next frame is computed in full (a new video, a cut)."""
        self._streams.clear()

    def __call__(self, key: Hashable, image: np.ndarray) -> np.ndarray:
        """Scores (gh, gw, C) of the padded model input `image` (H, W) of stream `key`."""
        stream = self._streams.get(key)
        if stream is None or stream.reference.shape != image.shape:
            scores = self.sparse(image)
            self._streams[key] = _Stream(image.copy(), scores)
            self.last_recomputed = 1.0
            return scores.copy()
        stride = self.sparse.stride
        changed = marked_blocks(changed_pixels(image, stream.reference, self.threshold), stride)
        wanted = cells_seeing(changed, self.sparse.field, stride)
        self.last_recomputed = float(wanted.mean())
        if self.last_recomputed:
            stream.scores = self.sparse.cells(image, wanted, stream.scores)
            rows, cols = changed.shape
            blocks = stream.reference.reshape(rows, stride, cols, stride)
            fresh = image.reshape(rows, stride, cols, stride)
            np.copyto(blocks, fresh, where=changed[:, None, :, None])
        return stream.scores.copy()
