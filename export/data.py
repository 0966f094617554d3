"""MNIST for training: Keras' download by default, or a local .npz of the same layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from convdet.data.digits import load_mnist_npz
from convdet.runtime.errors import ConvdetError


class DataUnavailableError(ConvdetError, OSError):
    """MNIST could not be loaded (offline without --data, or an unreadable file)."""


@dataclass(frozen=True)
class Mnist:
    """MNIST splits as float32 (N, 28, 28) in 0..1 with uint8 labels, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def _as_float(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 255.0


def load_mnist(path: Path | None = None) -> Mnist:
    """Load MNIST from `path` (a Keras-layout .npz) or, with no path, through Keras' download."""
    if path is not None:
        x_train, y_train, x_test, y_test = load_mnist_npz(path)
        source = f"{Path(path).name} ({len(x_train)} train / {len(x_test)} test digits)"
    else:
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        except Exception as error:  # Keras wraps network failures in a bare Exception
            raise DataUnavailableError(
                f"could not download MNIST ({error}); pass --data PATH to a local mnist .npz"
            ) from None
        source = f"keras.datasets.mnist ({len(x_train)} train / {len(x_test)} test digits)"
    return Mnist(_as_float(x_train), y_train, _as_float(x_test), y_test, source)
