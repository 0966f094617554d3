"""The printed benchmark report: the machine and process figures, then one table per kind of
row (models, the Keras baseline, sliding windows, dense/sparse/temporal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from convdet.measure.latency import CAMERA_NOISE, MODES
from convdet.measure.tables import text_table
from convdet.measure.video_modes import VIDEO_MODES
from convdet.runtime.shipped import DEFAULT_ARCH

if TYPE_CHECKING:
    from convdet.measure.benchmark import Figures


def _number(value: float | None, digits: int = 1) -> str:
    """`value` with `digits` decimals, "-" when it was not measured."""
    return "-" if value is None else f"{value:.{digits}f}"


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


Column = tuple[str, Callable[[Any], str]]  # header, cell of a row

MODEL_COLUMNS: tuple[Column, ...] = (
    ("model", lambda r: r.model),
    ("engine", lambda r: f"{r.engine} {r.precision}"),
    ("threads", lambda r: str(r.threads or "default")),
    ("size", lambda r: _size(r.size)),
    ("KB", lambda r: f"{r.file_bytes / 1024:.0f}"),
    ("infer ms", lambda r: _number(r.infer.median_ms, 2)),
    ("p90", lambda r: _number(r.infer.p90_ms, 2)),
    ("detect ms", lambda r: _number(r.detect.median_ms, 2)),
    ("draw ms", lambda r: _number(r.draw_ms, 2)),
    ("pipeline FPS", lambda r: _number(r.pipeline_fps)),
    ("GFLOP", lambda r: _number(r.gflops, 2)),
    ("bound ms", lambda r: _number(r.bound_ms, 2)),
    ("x bound", lambda r: _number(r.times_bound, 2)),
    ("digit acc %", lambda r: _number(r.digit_accuracy and 100 * r.digit_accuracy, 2)),
)
KERAS_BASELINE_COLUMNS: tuple[Column, ...] = (
    ("arch", lambda s: s.arch),
    ("size", lambda s: _size(s.size)),
    ("Keras predict ms", lambda s: _number(s.predict.median_ms, 2)),
    ("runtime infer ms", lambda s: _number(s.runtime_infer_ms, 2)),
    ("ratio", lambda s: f"{s.predict.median_ms / s.runtime_infer_ms:.1f}x"),
    ("np.vectorize colours ms", lambda s: _number(s.colour_ms, 2)),
    ("GridAnnotator ms", lambda s: _number(s.runtime_grid_ms, 2)),
    ("Keras FPS", lambda s: _number(s.pipeline_fps)),
    ("runtime FPS", lambda s: _number(s.runtime_pipeline_fps)),
    ("ratio", lambda s: f"{s.speedup:.1f}x"),
)
WINDOWS_COLUMNS: tuple[Column, ...] = (
    ("arch", lambda w: w.arch),
    ("size", lambda w: _size(w.size)),
    ("windows", lambda w: str(w.windows)),
    ("windows ms", lambda w: _number(w.windows_timing.median_ms)),
    ("detector ms", lambda w: _number(w.detector_timing.median_ms, 2)),
    ("ratio", lambda w: f"{w.speedup:.1f}x"),
    ("GFLOP windows", lambda w: _number(w.windows_gflops)),
    ("GFLOP detector", lambda w: _number(w.detector_gflops, 2)),
    ("agreement %", lambda w: _number(100 * w.agreement, 2)),
    ("on digit cells %", lambda w: _number(w.digit_agreement and 100 * w.digit_agreement)),
)
SPARSE_COLUMNS: tuple[Column, ...] = (
    ("style", lambda r: r.style),
    ("run %", lambda r: f"{100 * r.coverage:.0f}"),
    ("dense ms", lambda r: _number(r.infer["dense"].median_ms, 2)),
    ("sparse ms", lambda r: _number(r.infer["sparse"].median_ms, 2)),
    ("x", lambda r: f"{r.speedup['sparse']:.2f}"),
    ("max |d|", lambda r: f"{r.sparse_max_diff:.0e}" if r.sparse_max_diff else "0"),
    ("temporal ms", lambda r: _number(r.infer["temporal"].median_ms, 2)),
    ("x", lambda r: f"{r.speedup['temporal']:.2f}"),
    ("agree %", lambda r: _number(100 * r.temporal_agreement, 2)),
    (f"noise {CAMERA_NOISE:g} ms", lambda r: _number(r.infer["noisy"].median_ms, 2)),
    ("x", lambda r: f"{r.speedup['noisy']:.2f}"),
    ("agree %", lambda r: _number(100 * r.noisy_agreement, 2)),
    ("calls ms d/s/t", lambda r: "/".join(f"{r.call[m].median_ms:.1f}" for m in MODES[:3])),
    ("Keras ms", lambda r: _number(r.keras_ms, 1)),
    (
        "Keras/(d, s, t)",
        lambda r: (
            "-"
            if r.keras_ms is None
            else "/".join(f"{r.keras_ms / r.infer[m].median_ms:.1f}" for m in MODES[:3])
        ),
    ),
)


VIDEO_MODES_COLUMNS: tuple[Column, ...] = (
    ("page", lambda r: r.style),
    ("size", lambda r: _size(r.size)),
    ("frames", lambda r: str(r.frames)),
    *((f"{mode} FPS", lambda r, mode=mode: _number(r.fps[mode])) for mode in VIDEO_MODES),
    ("Keras FPS", lambda r: _number(r.keras_fps)),
    (
        "x Keras d/s/t",
        lambda r: "/".join(f"{r.speedup[mode]:.1f}" for mode in VIDEO_MODES) if r.speedup else "-",
    ),
)


def _table(columns: tuple[Column, ...], rows: list[Any]) -> str:
    """Rows as text columns padded to their widest cell, the first left-aligned."""
    cells = [[header for header, _ in columns]]
    cells += [[cell(row) for _, cell in columns] for row in rows]
    return "\n".join(text_table(cells, right=range(1, len(columns))))


def format_report(figures: Figures) -> str:
    """The printed report: machine, per-model table, the Keras baseline, sliding windows and
    dense, sparse and temporal inference."""
    machine, run = figures.machine, figures.detect_run
    parts = [
        f"{machine['cpus']} CPUs ({machine['cpu']}), load {machine['load_average'][0]:.2f} at "
        "start; " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"import runtime {figures.import_runtime_s:.3f} s; "
        f"float32 matmul (numpy) {figures.matmul_gflops:.1f} GFLOP/s",
    ]
    if run is not None:
        parts.append(
            f"peak RSS {run.peak_rss_mb:.0f} MB: {' '.join(run.command)} "
            f"({run.frames} frames, {run.seconds:.1f} s with start-up)"
        )
    sections = (
        (
            "latency per frame (median, p90 after warm-up), full pipeline FPS",
            MODEL_COLUMNS,
            figures.models,
        ),
        (
            "the Keras baseline (Keras model.predict, np.vectorize colours) vs the runtime",
            KERAS_BASELINE_COLUMNS,
            figures.keras_baseline,
        ),
        (
            "sliding windows (the 28x28 classifier ONNX on every cell's window) vs the detector",
            WINDOWS_COLUMNS,
            figures.windows,
        ),
        (
            f"dense, sparse and temporal inference ({DEFAULT_ARCH} or the first ONNX model; "
            "the infer stage of Detector calls, median ms, every pyramid scale; temporal over "
            "a digit moving on the frame, still and with camera noise; agree %: detections "
            "matching dense; whole calls dense/sparse/temporal; Keras predict over each)",
            SPARSE_COLUMNS,
            figures.sparse,
        ),
        (
            "end to end on a video of a still page (the pipeline of convdet detect VIDEO --save, "
            f"a digit moving on the page, camera noise {CAMERA_NOISE:g}; the Keras baseline's "
            "loop on the same video)",
            VIDEO_MODES_COLUMNS,
            figures.video_modes,
        ),
    )
    for title, columns, rows in sections:
        if rows:
            parts += ["", f"{title}:", _table(columns, rows)]
    parts += [f"note: {note}" for note in figures.notes]
    return "\n".join(parts)
