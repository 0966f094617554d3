"""MNIST digits from a Keras-layout .npz file, read with numpy only.

The layout is the one `keras.datasets.mnist.load_data()` caches: arrays `x_train`, `y_train`,
`x_test`, `y_test`; images uint8 (N, 28, 28), labels integers 0..9. The scene generator and the
export stage's `--data` path both read their digits through `load_mnist_npz`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from convdet.runtime.defaults import MNIST_SPLITS as SPLITS
from convdet.runtime.errors import DataError

DIGIT_SIZE = 28


def _check_split(path: Path, images: np.ndarray, labels: np.ndarray, split: str) -> None:
    """Raise DataError naming the file when one split's arrays break the Keras MNIST layout."""
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
        raise DataError(
            f"{path}: x_{split} should have shape (N, {DIGIT_SIZE}, {DIGIT_SIZE}), "
            f"got {images.shape}"
        )
    if images.dtype != np.uint8:
        raise DataError(f"{path}: x_{split} should be uint8, got {images.dtype}")
    if labels.shape != (images.shape[0],):
        raise DataError(
            f"{path}: y_{split} should have shape ({images.shape[0]},) to match x_{split}, "
            f"got {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: y_{split} should hold integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(
            f"{path}: y_{split} should hold labels 0..9, got {labels.min()}..{labels.max()}"
        )


def load_mnist_npz(
    path: str | Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read and validate a Keras-layout MNIST .npz: (x_train, y_train, x_test, y_test).

    Labels come back as int64. Raises DataError naming the file when keys, shapes or dtypes
    are wrong, OSError when the file cannot be read.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable .npz file ({error})") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: expected an .npz archive, got a single array")
    with archive:
        keys = [f"{axis}_{split}" for split in SPLITS for axis in ("x", "y")]
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise DataError(
                f"{path}: not a Keras MNIST .npz, missing {', '.join(missing)} "
                f"(has {', '.join(archive.files) or 'nothing'})"
            )
        arrays = {key: archive[key] for key in keys}
    for split in SPLITS:
        _check_split(path, arrays[f"x_{split}"], arrays[f"y_{split}"], split)
    return (
        arrays["x_train"],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"],
        arrays["y_test"].astype(np.int64),
    )
