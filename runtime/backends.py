"""Inference backends: one small interface, ONNX Runtime and LiteRT implementations, chosen by
file extension. Each engine is imported only when a model of its type is opened, so a board with
just LiteRT (or just ONNX Runtime) works. Opening checks the model contract (models/README.md)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from convdet.runtime.modelinfo import ModelContractError, ModelInfo, sidecar_path
from convdet.runtime.native_stderr import native_lines
from convdet.runtime.shipped import resolve_model

OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
MAX_DEFAULT_THREADS = 4  # the shipped models' small convolutions gain little from more
Dim = int | str | None  # a fixed size, a named dynamic dim (ONNX) or an unnamed one (None)


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (dynamic dims as names or None) and dtype of a model input or output."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str

    def describe(self) -> str:
        """E.g. `image float32 [batch, height, width, 1]`; unnamed dynamic dims print as `?`."""
        dims = ", ".join("?" if dim is None else str(dim) for dim in self.shape)
        return f"{self.name} {self.dtype} [{dims}]"


class Backend:
    """A loaded detector: `run` maps a (N, H, W, 1) float32 batch to (N, gh, gw, C) scores.

    Subclasses load the file and fill `input_spec`, `output_spec` and `metadata`, then call
    `_check_contract`, which parses `info` and raises ModelContractError naming the file.
    """

    path: Path
    input_spec: TensorSpec
    output_spec: TensorSpec
    metadata: dict[str, str]
    info: ModelInfo
    threads: int | None  # inference threads in use (None: the engine's default)
    input_dtypes: tuple[str, ...]  # input tensor types `run` can feed

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(height, width) when the model only accepts one frame size, else None."""
        height, width = self.input_spec.shape[1:3]
        if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
            return height, width
        return None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Scores (N, gh, gw, C) float32 for a (N, H, W, 1) float32 batch."""
        raise NotImplementedError

    def _check_contract(self) -> None:
        source = str(self.path)
        self.info = ModelInfo.from_metadata(self.metadata, source=source)
        inputs, outputs = self.input_spec.shape, self.output_spec.shape
        if len(inputs) != 4 or inputs[3] != 1:
            raise ModelContractError(
                f"{source}: not a convdet detector, expected input [batch, height, width, 1], "
                f"got {self.input_spec.describe()}"
            )
        if self.input_spec.dtype not in self.input_dtypes:
            raise ModelContractError(
                f"{source}: not a convdet detector, expected a {' or '.join(self.input_dtypes)} "
                f"input, got {self.input_spec.describe()}"
            )
        if len(outputs) != 4 or outputs[3] != self.info.num_classes:
            raise ModelContractError(
                f"{source}: not a convdet detector, expected output [batch, rows, cols, "
                f"{self.info.num_classes}] (one channel per class), "
                f"got {self.output_spec.describe()}"
            )


class OnnxBackend(Backend):
    """ONNX Runtime: one session, built once, with configurable threads, graph optimization
    level and execution providers (default CPU; pass e.g. ["CUDAExecutionProvider", ...]).
    The input must be float32: that is what `run` feeds (a float64 or uint8 input would fail
    on every frame)."""

    input_dtypes = ("float32",)

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        providers: list[str] | None = None,
        optimization: str = "all",
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        if optimization not in levels:
            raise ValueError(
                f"optimization: expected one of {', '.join(levels)}, got {optimization!r}"
            )
        options = session_options(threads)
        options.graph_optimization_level = levels[optimization]
        self.threads = options.intra_op_num_threads
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own, non-ValueError types
            raise ModelContractError(f"{self.path}: cannot load ONNX model ({error})") from error
        model_input, model_output = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_spec = _onnx_spec(model_input)
        self.output_spec = _onnx_spec(model_output)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self._check_contract()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Scores for a (N, H, W, 1) float32 batch."""
        feed = {self.input_spec.name: batch}
        return self.session.run([self.output_spec.name], feed)[0]


def default_threads() -> int:
    """Inference threads when none are asked for: the CPUs this process may use (its affinity,
    which containers and `taskset` narrow), at most MAX_DEFAULT_THREADS."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, MAX_DEFAULT_THREADS))


ORT_FATAL = 4  # ONNX Runtime's log severity levels: 0 verbose .. 3 error, 4 fatal
XNNPACK_NOTICE = re.compile(r"INFO: Created TensorFlow Lite XNNPACK delegate")


def session_options(threads: int | None = None) -> Any:
    """ONNX Runtime session options: `threads` intra-op threads (default `default_threads()`),
    idle workers that sleep instead of spinning, no memory-pattern planning, and no log lines
    of its own below FATAL (a failed run, e.g. an allocation refused under a memory cap, is
    raised and reported once by the caller; ONNX Runtime would print it on stderr as well).

    Spinning workers take the cores that the other threads of a video pipeline (decode, encode)
    and any other load need: on a busy 2-core CPU, deep at 640x480 with 2 threads took 20 ms a
    frame spinning vs 10 ms not (30 vs 57 FPS through the pipeline); with 1 thread it made no
    difference. The memory pattern cost 10 MB of peak RSS at 640x480 for no measured speed-up.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_mem_pattern = False
    options.log_severity_level = ORT_FATAL
    return options


def _onnx_spec(node: Any) -> TensorSpec:
    """TensorSpec of an onnxruntime NodeArg (`tensor(float)` -> float32)."""
    element = node.type.removeprefix("tensor(").removesuffix(")")
    dtype = {"float": "float32", "double": "float64", "float16": "float16"}.get(element, element)
    shape = tuple(dim if isinstance(dim, int) or dim is None else str(dim) for dim in node.shape)
    return TensorSpec(node.name, shape, dtype)


class LiteRTBackend(Backend):
    """LiteRT (TFLite) interpreter with XNNPACK (the default delegate) and configurable threads
    (default `default_threads()`, as for ONNX Runtime: LiteRT alone would use one; on a 2-core
    CPU two threads took deep int8 at 640x480 from 10.0 to 6.1 ms a frame).

    Dynamic height/width come from `shape_signature` (-1); the input is resized and tensors
    re-allocated only when the batch shape changes. int8 inputs/outputs are (de)quantized here.
    Metadata comes from the sidecar `<stem>.json` beside the file.
    """

    input_dtypes = ("float32", "float16", "int8", "uint8", "int16")  # see _quantize

    def __init__(self, path: str | Path, threads: int | None = None, xnnpack: bool = True) -> None:
        interpreter_module = _import_litert()
        self.path = Path(path)
        self.threads = threads or default_threads()
        resolver = interpreter_module.OpResolverType
        try:
            self.interpreter = interpreter_module.Interpreter(
                model_path=str(self.path),
                num_threads=self.threads,
                experimental_op_resolver_type=(
                    resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                ),
            )
        except (ValueError, RuntimeError) as error:
            raise ModelContractError(f"{self.path}: cannot load TFLite model ({error})") from error
        self.metadata = _read_sidecar(self.path)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.input_spec = _litert_spec(self._input)
        self.output_spec = _litert_spec(self._output)
        self._shape: tuple[int, ...] | None = None
        self._check_contract()
        # The first allocation applies XNNPACK, which then prints "INFO: Created TensorFlow
        # Lite XNNPACK delegate for CPU." on stderr (no setting stops it): made here, for one
        # window (or the model's fixed size), with that line taken off.
        height, width = self.fixed_size or (self.info.window, self.info.window)
        shape = (1, height, width, 1)
        with native_lines(XNNPACK_NOTICE):
            try:
                self.interpreter.resize_tensor_input(self._input["index"], shape)
                self.interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as error:
                raise ModelContractError(
                    f"{self.path}: cannot allocate the TFLite model for a {width}x{height} "
                    f"input ({error})"
                ) from error
        self._shape = shape

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Scores for a (N, H, W, 1) float32 batch; resizes the interpreter on a new shape."""
        if batch.shape != self._shape:
            self.interpreter.resize_tensor_input(self._input["index"], batch.shape)
            self.interpreter.allocate_tensors()
            self._shape = batch.shape
        self.interpreter.set_tensor(self._input["index"], _quantize(batch, self._input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)


def _import_litert() -> Any:
    """`ai_edge_litert.interpreter`, else `tflite_runtime.interpreter`; the ModuleNotFoundError
    names ai_edge_litert so the CLI can say which extra to install."""
    try:
        from ai_edge_litert import interpreter
    except ModuleNotFoundError as litert_missing:
        try:
            from tflite_runtime import interpreter
        except ModuleNotFoundError:
            raise litert_missing from None
    return interpreter


def _read_sidecar(path: Path) -> dict[str, str]:
    """The metadata map of a .tflite file from `<stem>.json` (a flat JSON object)."""
    sidecar = sidecar_path(path)
    try:
        metadata = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelContractError(
            f"{path}: not a convdet detector, metadata file {sidecar.name} is missing"
        ) from None
    except (OSError, ValueError) as error:
        raise ModelContractError(f"{path}: unreadable metadata {sidecar.name} ({error})") from error
    if not isinstance(metadata, dict):
        raise ModelContractError(
            f"{path}: metadata {sidecar.name} must be a JSON object, got {type(metadata).__name__}"
        )
    return {
        str(key): value if isinstance(value, str) else json.dumps(value)
        for key, value in metadata.items()
    }


def _litert_spec(details: dict[str, Any]) -> TensorSpec:
    """TensorSpec from interpreter tensor details; -1 in `shape_signature` is a dynamic dim."""
    signature = details.get("shape_signature", details["shape"])
    shape = tuple(None if dim < 0 else int(dim) for dim in signature)
    return TensorSpec(details["name"], shape, np.dtype(details["dtype"]).name)


def _quantize(batch: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """The float batch in the input tensor's dtype (affine quantization for integer inputs)."""
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return batch.astype(dtype, copy=False)
    scale, zero_point = details["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(batch / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(scores: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """Integer outputs back to float32 probabilities; float outputs as float32."""
    if np.dtype(details["dtype"]).kind == "f":
        return scores.astype(np.float32, copy=False)
    scale, zero_point = details["quantization"]
    return (scores.astype(np.float32) - zero_point) * np.float32(scale)


BACKENDS = {".onnx": OnnxBackend, ".tflite": LiteRTBackend}


def open_backend(
    path: str | Path,
    threads: int | None = None,
    providers: list[str] | None = None,
) -> Backend:
    """Load a detector file (a path or a shipped model's name, see `resolve_model`) with the
    backend its extension names, checking the model contract.

    `providers` applies to ONNX models only. Raises ModelContractError (a ValueError) naming the
    file and what is wrong: missing file, unknown extension, unreadable file, wrong shapes or
    missing metadata.
    """
    path = resolve_model(path)
    backend = BACKENDS.get(path.suffix.lower())
    if backend is None:
        raise ModelContractError(
            f"{path}: unknown model type {path.suffix or '(no extension)'!r}, "
            f"expected {' or '.join(BACKENDS)}"
        )
    if not path.is_file():
        raise ModelContractError(f"{path}: not a file")
    if backend is OnnxBackend:
        return OnnxBackend(path, threads=threads, providers=providers)
    return LiteRTBackend(path, threads=threads)
