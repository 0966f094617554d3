"""Where the shipped detectors live, which one the runtime uses when none is given, how a
model name (a path, or a shipped file's name with or without its extension) becomes a file, and
where the repository's sample frames are."""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from pathlib import Path

from convdet.runtime.modelinfo import ModelContractError

# The architecture shipped as the default detector, chosen by the camera and real-handwriting
# figures (models/README.md): wide beats deep on every one of them at 2.3x its multiply-adds.
DEFAULT_ARCH = "wide"
MODEL_SUFFIXES = (".onnx", ".tflite")
# Shipped files with this stem ending are the 28x28 classifiers (sliding-window comparisons).
CLASSIFIER_SUFFIX = "_classifier"


def models_dir() -> Path:
    """The directory of the installed `convdet.models` package (the repo's models/)."""
    return Path(str(files("convdet.models")))


def sample_path(name: str = "digits.png") -> Path:
    """The repository's sample frame `name` (samples/: digits.png, paper.jpg, multiscale.png,
    camera.jpg), found beside the runtime package, not the working folder, so an example runs
    from any folder of a checkout or an editable install; FileNotFoundError where the install
    has no samples/ (a wheel ships none)."""
    path = Path(__file__).resolve().parents[1] / "samples" / name
    if not path.is_file():
        raise FileNotFoundError(
            f"sample {name!r} not found at {path}: samples/ ships with the repository, "
            "so use a checkout or an editable install (pip install -e .)"
        )
    return path


def shipped_models() -> list[Path]:
    """The detector files in `models_dir()`, sorted by name: found in the folder, so a model
    added there is a shipped one without any list to update."""
    return sorted(
        path
        for path in models_dir().iterdir()
        if path.suffix in MODEL_SUFFIXES
        and not path.stem.endswith(CLASSIFIER_SUFFIX)
        and path.is_file()
    )


def default_model_path(backend: str = "auto") -> Path:
    """The default detector for `backend`: `<DEFAULT_ARCH>.onnx` for "onnx", the int8 TFLite
    model of the same architecture for "tflite" (boards with LiteRT only); "auto" picks ONNX if
    onnxruntime is installed."""
    return resolve_model(DEFAULT_ARCH, backend)


def resolve_model(name: str | Path, backend: str = "auto") -> Path:
    """The model file `name` stands for: an existing path as it is, else the shipped file of
    that name, with or without its extension. A name without one tries `<name>.onnx` first
    when `backend` is "onnx" or ("auto" and) onnxruntime is installed, else `<name>.tflite`
    then `<name>_int8.tflite` first, so an architecture name means what `default_model_path`
    picks for it; the caller refuses a file its backend does not run. Raises
    ModelContractError listing the shipped models when nothing matches."""
    path = Path(name)
    if path.exists():
        return path
    shipped = {model.name: model for model in shipped_models()}  # sorted by name
    if path.name == str(name):
        for candidate in _candidate_names(path, backend):
            if candidate in shipped:
                return shipped[candidate]
    listed = ", ".join(shipped) or "none"
    raise ModelContractError(f"{name}: model file not found (shipped models: {listed})")


def _candidate_names(path: Path, backend: str) -> list[str]:
    """Shipped file names `path` may mean for `backend`, the preferred first."""
    if path.suffix.lower() in MODEL_SUFFIXES:
        return [path.name]
    onnx = [f"{path.name}.onnx"]
    tflite = [f"{path.name}.tflite", f"{path.name}_int8.tflite"]
    onnx_first = backend == "onnx" or (backend == "auto" and installed("onnxruntime"))
    return onnx + tflite if onnx_first else tflite + onnx


def installed(module: str) -> bool:
    """Whether `module` can be found without importing it; a finder that refuses it (an import
    hook blocking the package, a broken install) counts as not installed."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False
