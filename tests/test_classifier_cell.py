"""The classifier-cell readout: every window read once at its cell, in power-of-two chunks."""

from __future__ import annotations

import numpy as np
from convdet.runtime.classifier_cell import classifier_cell_scores


def test_each_window_is_read_at_its_cell_in_power_of_two_chunks() -> None:
    shapes = []

    def run(batch: np.ndarray) -> np.ndarray:
        shapes.append(batch.shape)
        grid = np.zeros((len(batch), 3, 3, 2), np.float32)
        grid[:, 1, 1, 0] = batch.sum(axis=(1, 2, 3))  # the cell's score: the window's ink
        return grid

    windows = np.random.default_rng(0).random((70, 28, 28, 1)).astype(np.float32)
    scores = classifier_cell_scores(run, windows, cell=1, chunk=32)
    assert [shape[0] for shape in shapes] == [32, 32, 8]  # 70 = 32 + 32 + 6, padded to 8
    assert np.allclose(scores[:, 0], windows.sum(axis=(1, 2, 3)), rtol=1e-6)
    assert scores.shape == (70, 2)
