"""A detector read as the 28x28 classifier it was made from: the scores of its classifier cell
on windows the runtime prepared (`Preprocessor.windows`), one batched inference per chunk.

The export's accuracy check, training's, the evaluation's isolated readout and the second look
at each detection all read windows so; chunks are padded to a power of two so that an engine
that re-plans on each new input shape (LiteRT) sees few shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Run = Callable[[np.ndarray], np.ndarray]  # (N, H, W, 1) float32 -> (N, gh, gw, C)
CHUNK = 64  # windows per inference


def classifier_cell_scores(
    run: Run, windows: np.ndarray, cell: int, chunk: int = CHUNK
) -> np.ndarray:
    """(N, C) scores at grid cell (`cell`, `cell`) of each of the N model inputs `windows`
    (N, h, w, 1), run `chunk` at a time (the last chunk padded with blank windows)."""
    scores = []
    for start in range(0, len(windows), chunk):
        part = windows[start : start + chunk]
        size = 1 << (len(part) - 1).bit_length()
        batch = np.zeros((size, *part.shape[1:]), np.float32)
        batch[: len(part)] = part
        scores.append(np.asarray(run(batch))[: len(part), cell, cell])
    if not scores:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(scores)
