"""Timings of repeated calls and compute counts, the yardsticks of `convdet benchmark`: median
and p90 of calls measured in turns, a model's FLOPs and the machine's float32 matmul rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

ROUNDS = 5  # latency rounds taken in turn over all the functions timed together

K = TypeVar("K")


@dataclass(frozen=True)
class Timing:
    """Median and 90th percentile of repeated calls, in milliseconds."""

    median_ms: float
    p90_ms: float


def time_in_turns(
    functions: dict[K, Callable[[], object]], warmup: int, repeat: int, rounds: int = ROUNDS
) -> dict[K, Timing]:
    """Time `repeat` calls of each function after `warmup` untimed ones, in `rounds` rounds
    taken in turn, so that bursts of outside load hit all of them alike: on a shared machine
    the ratios between them hold much better than their absolute values."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    per_round = -(-max(repeat, 1) // rounds)
    samples: dict[K, list[float]] = {key: [] for key in functions}
    for _ in range(min(rounds, max(repeat, 1))):
        for key, function in functions.items():
            for _ in range(per_round):
                start = time.perf_counter()
                function()
                samples[key].append((time.perf_counter() - start) * 1e3)
    return {
        key: Timing(float(np.median(ms)), float(np.percentile(ms, 90)))
        for key, ms in samples.items()
    }


def time_calls(function: Callable[[], object], warmup: int, repeat: int) -> Timing:
    """Time `repeat` calls of `function` after `warmup` untimed ones."""
    return time_in_turns({0: function}, warmup, repeat, rounds=1)[0]


def matmul_flops(side: int = 2048, repeat: int = 10) -> float:
    """FLOP/s of the best of `repeat` float32 (side x side) @ (side x side) numpy products: the
    machine's practical dense-compute ceiling, measured on the spot (all cores, numpy's BLAS)."""
    rng = np.random.default_rng(0)
    left = rng.random((side, side), dtype=np.float32)
    right = rng.random((side, side), dtype=np.float32)
    out = left @ right  # warm-up: thread pool, caches
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        np.matmul(left, right, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * side**3 / best


def model_flops(path: Path, height: int, width: int) -> float | None:
    """FLOPs (2 x multiply-adds) of the Conv, MatMul and Gemm nodes of an ONNX model run on one
    height x width input, from onnx shape inference; None when the onnx package is missing."""
    try:
        import onnx
    except ModuleNotFoundError:
        return None
    model = onnx.load(str(path))
    named = {"batch": 1, "height": height, "width": width}
    for dim in model.graph.input[0].type.tensor_type.shape.dim:
        if dim.HasField("dim_param"):
            dim.dim_value = named.get(dim.dim_param, 1)
    graph = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    shapes = {
        value.name: tuple(dim.dim_value for dim in value.type.tensor_type.shape.dim)
        for value in (*graph.input, *graph.value_info, *graph.output)
    }
    shapes.update((tensor.name, tuple(tensor.dims)) for tensor in graph.initializer)
    macs = 0
    for node in graph.node:
        if node.op_type == "Conv":  # weight (out_channels, in_channels / groups, kh, kw)
            reduced = int(np.prod(shapes[node.input[1]][1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            transposed = any(a.name == "transA" and a.i for a in node.attribute)
            reduced = shapes[node.input[0]][0 if transposed else -1]
        else:
            continue
        macs += int(np.prod(shapes[node.output[0]])) * reduced  # out elements x reduced dim
    return 2.0 * macs
