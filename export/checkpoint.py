"""Training that outlives its process: after every epoch, the model's weights with its optimizer
state (the learning-rate schedule's step among them), the number of epochs done and their logs
go to a folder, and a fit started on that folder goes on after the last epoch done.

Keras's BackupAndRestore does much the same but says which epoch it resumes at only once fit has
begun; the stage-2 scenes are drawn from each epoch's number, so they need it before. The
epoch's weights and the state naming them are written one after the other, each by rename, so
a kill at any moment leaves the previous epoch or this one, never a mix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras

STATE = "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves `folder`'s training state at the end of every epoch (see the module doc)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        state = self._read()
        self.done: int = state["epochs"]
        self.logs: list[dict[str, float]] = state["logs"]
        self._weights: str | None = state["weights"]

    def _read(self) -> dict[str, Any]:
        path = self.folder / STATE
        if not path.is_file():
            return {"epochs": 0, "logs": [], "weights": None}
        return json.loads(path.read_text(encoding="utf-8"))

    def restore(self, model: keras.Model) -> int:
        """Load the last epoch's weights and optimizer state into the compiled `model`; the
        number of epochs done (0 for a new folder, which leaves the model as it is)."""
        if self._weights is not None:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(self.folder / self._weights)
        return self.done

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{epoch + 1}.weights.h5"
        self.model.save_weights(self.folder / f"partial-{weights}")
        os.replace(self.folder / f"partial-{weights}", self.folder / weights)
        self.logs.append({key: float(value) for key, value in (logs or {}).items()})
        state = {"epochs": epoch + 1, "logs": self.logs, "weights": weights}
        (self.folder / f"{STATE}.partial").write_text(json.dumps(state), encoding="utf-8")
        os.replace(self.folder / f"{STATE}.partial", self.folder / STATE)
        if self._weights is not None and self._weights != weights:
            (self.folder / self._weights).unlink(missing_ok=True)
        self._weights, self.done = weights, epoch + 1

    @property
    def history(self) -> dict[str, list[float]]:
        """Every epoch's logs so far, before and after a resume, as `fit`'s history has them."""
        keys = dict.fromkeys(key for logs in self.logs for key in logs)
        return {key: [logs[key] for logs in self.logs if key in logs] for key in keys}


def resumable_fit(
    model: keras.Model,
    data: Any,
    epochs: int,
    checkpoint: EpochCheckpoint | None = None,
    **options: Any,
) -> dict[str, list[float]]:
    """`model.fit(data, epochs=epochs, **options)`, resumed from and saved to `checkpoint`
    when one is given; the history of all epochs."""
    if checkpoint is None:
        return model.fit(data, epochs=epochs, **options).history
    first = checkpoint.restore(model)
    if first < epochs:
        model.fit(data, epochs=epochs, initial_epoch=first, callbacks=[checkpoint], **options)
    return checkpoint.history
