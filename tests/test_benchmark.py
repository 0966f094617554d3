"""`convdet benchmark`: a quick run reports sane figures and valid JSON; its helpers measure what
they say (window geometry, FLOPs, read-ahead order); bad options are one line and exit 2."""

from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest
from convdet.measure.keras_baseline import baseline_colour_grid
from convdet.measure.tables import text_table
from convdet.measure.timing import model_flops, time_calls, time_in_turns
from convdet.runtime.annotate import class_colors

from convdet.cli import main

JSON_KEYS = {
    "machine", "settings", "import_runtime_s", "matmul_gflops", "models", "keras_baseline",
    "windows", "sparse", "video_modes", "detect_run", "notes",
}  # fmt: skip


@pytest.fixture(scope="module")
def quick_run(mnist_npz, tmp_path_factory) -> tuple[dict, str]:
    """One `convdet benchmark --quick` over deep.onnx and the int8 model (with the Keras baseline
    when TensorFlow is installed): the JSON figures and the printed report."""
    pytest.importorskip("ai_edge_litert")
    out = tmp_path_factory.mktemp("benchmark") / "figures.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        models = "deep.onnx,deep_int8.tflite"
        arguments = ["--models", models, "--data", str(mnist_npz), "--json", str(out)]
        status = main(["benchmark", "--quick", *arguments])
    assert status == 0
    return json.loads(out.read_text(encoding="utf-8")), printed.getvalue()


def test_quick_run_reports_sane_figures(quick_run, models_dir) -> None:
    figures, report = quick_run
    assert set(figures) == JSON_KEYS
    assert [row["model"] for row in figures["models"]] == ["deep.onnx", "deep_int8.tflite"]
    for row in figures["models"]:
        assert row["size"] == [320, 240]
        assert row["file_bytes"] == (models_dir / row["model"]).stat().st_size
        assert 0 < row["infer"]["median_ms"] <= row["infer"]["p90_ms"]
        assert row["detect"]["median_ms"] > 0 and row["draw_ms"] > 0
        assert row["pipeline_fps"] > 0
        assert row["gflops"] > 0 and row["bound_ms"] > 0 and row["times_bound"] > 0
        assert row["model"] in report
    assert figures["import_runtime_s"] > 0 and figures["matmul_gflops"] > 0
    assert figures["detect_run"]["peak_rss_mb"] > 0
    (windows,) = figures["windows"]
    assert windows["windows"] == 30 * 40
    assert 0.0 <= windows["agreement"] <= 1.0 and windows["speedup"] > 0
    assert windows["windows_gflops"] > windows["detector_gflops"] > 0


def test_quick_run_reports_dense_sparse_and_temporal_side_by_side(quick_run) -> None:
    figures, report = quick_run
    rows = {row["style"]: row for row in figures["sparse"]}
    assert list(rows) == ["notebook", "blank", "full"]
    for row in rows.values():
        assert row["model"] == "deep.onnx" and row["size"] == [320, 240]
        assert set(row["infer"]) == set(row["speedup"]) == {"dense", "sparse", "temporal", "noisy"}
        assert all(timing["median_ms"] >= 0 for timing in row["infer"].values())
        assert row["sparse_max_diff"] <= 1e-6 and row["temporal_agreement"] == 1.0
    assert rows["blank"]["coverage"] == 0.0 and rows["full"]["coverage"] == 1.0
    assert rows["blank"]["speedup"]["sparse"] > 1.0  # no inference at all
    assert "dense, sparse and temporal inference" in report


def test_quick_run_times_the_pipeline_on_a_still_page_in_each_mode(quick_run) -> None:
    figures, report = quick_run
    (row,) = figures["video_modes"]
    assert row["model"] == "deep.onnx" and row["size"] == [320, 240] and row["frames"] == 6
    assert set(row["fps"]) == {"dense", "sparse", "temporal"}
    assert all(fps > 0 for fps in row["fps"].values())
    if row["keras_fps"] is not None:  # with TensorFlow installed
        assert set(row["speedup"]) == set(row["fps"]) and row["keras_fps"] > 0
    assert "end to end on a video of a still page" in report


def test_quick_run_compares_with_the_keras_baseline(quick_run) -> None:
    pytest.importorskip("tensorflow")
    figures, report = quick_run
    (baseline,) = figures["keras_baseline"]
    assert baseline["arch"] == "deep" and baseline["runtime_model"] == "deep.onnx"
    assert baseline["predict"]["median_ms"] > 0 and baseline["colour_ms"] > 0
    assert baseline["pipeline_fps"] > 0 and baseline["speedup"] > 0
    assert "np.vectorize" in report
    assert figures["video_modes"][0]["keras_fps"] > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sizes", "640x"], "--sizes: expected WIDTHxHEIGHT"),
        (["--sizes", "20x20"], "--sizes: expected sizes of at least 28x28"),
        (["--repeat", "0"], "--repeat: expected at least 1, got 0"),
        (["--warmup", "many"], "--warmup: expected an integer, got 'many'"),
        (["--threads", "0"], "--threads: expected at least 1"),
        (["--threads", "257"], "--threads: expected at least 1 and at most 256, got 257"),
        (["--models", "huge"], "--models: huge: model file not found (shipped models: basic"),
        (["--models", "absent.onnx"], "--models: absent.onnx: model file not found"),
        (["--data", "absent.npz"], "--data: no such file: absent.npz"),
        (["--video", "absent.mp4"], "--video: no such file: absent.mp4"),
        (["--json", "absent/figures.json"], "--json: no such folder: absent"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(mnist_npz, capsys, options, message) -> None:
    assert main(["benchmark", "--quick", "--data", str(mnist_npz), *options]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("convdet benchmark: error: ")
    assert re.search(re.escape(message), err), err


def test_flops_match_the_architecture(models_dir) -> None:
    """Conv FLOPs of the detector at 640x480 equal the spec's layer arithmetic and scale with
    the frame area; the classifier's come from the same layers on a 28x28 window."""
    pytest.importorskip("onnx")
    from convdet.export.specs import NUM_CLASSES, get_spec

    spec = get_spec("deep")
    macs, size, channels = 0, (480, 640), 1
    for filters, stride in spec.convs:
        size = (-(-size[0] // stride), -(-size[1] // stride))
        macs += size[0] * size[1] * filters * channels * 9
        channels = filters
    for units in (*spec.head, NUM_CLASSES):
        macs += size[0] * size[1] * units * channels
        channels = units
    flops = model_flops(models_dir / "deep.onnx", 480, 640)
    assert flops == 2 * macs
    assert model_flops(models_dir / "deep.onnx", 240, 320) == flops / 4
    window = model_flops(models_dir / "deep_classifier.onnx", 28, 28)
    assert 0 < window < flops / 100


def test_timing_in_turns_and_the_keras_baselines_colour_grid() -> None:
    timing = time_calls(lambda: sum(range(1000)), warmup=1, repeat=5)
    assert 0 < timing.median_ms <= timing.p90_ms
    calls: list[str] = []
    timings = time_in_turns(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 1, 4, rounds=2
    )
    assert set(timings) == {"a", "b"}
    assert "".join(calls) == "ab" + "aabb" * 2  # warm-up, then rounds in turn
    cells = np.array([[0, 3], [10, 7]])
    colours = class_colors(11)
    np.testing.assert_array_equal(baseline_colour_grid(cells, colours), colours[cells])


def test_text_table_pads_columns_and_keeps_short_rows() -> None:
    rows = [("name", "bytes", "arch"), ("deep.onnx", "306", "deep"), ("wide.tflite", "1,078")]
    assert text_table(rows, right={1}) == [
        "name         bytes  arch",
        "deep.onnx      306  deep",
        "wide.tflite  1,078",
    ]
