"""`convdet info MODEL` on the shipped models and on files that are not convdet detectors."""

from __future__ import annotations

import re

import pytest
from convdet.runtime.shipped import DEFAULT_ARCH

from convdet.cli import main


@pytest.mark.parametrize("suffix", [".onnx", "_fp32.tflite", "_int8.tflite"])
def test_info_prints_metadata_shapes_and_size(models_dir, capsys, suffix) -> None:
    if suffix.endswith(".tflite"):
        pytest.importorskip("ai_edge_litert")
    path = models_dir / f"{DEFAULT_ARCH}{suffix}"
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path.stat().st_size:,} bytes" in out
    assert f"arch: {DEFAULT_ARCH}" in out
    assert "classes: [" in out and "stride: " in out and "cell_offset: " in out
    input_line = next(line for line in out.splitlines() if line.startswith("input: "))
    if suffix == ".onnx":
        assert input_line.endswith("[batch, height, width, 1]")
    else:
        assert input_line.endswith("?, ?, 1]")  # dynamic height and width from shape_signature


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("absent.onnx", None, "absent.onnx: model file not found"),
        ("notes.txt", b"hello", r"notes\.txt: unknown model type '\.txt'"),
        ("broken.onnx", b"\x00garbage", "broken.onnx: cannot load ONNX model"),
    ],
)
def test_info_on_bad_files_is_one_line_and_exit_2(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("convdet info: error: ")
    assert re.search(message, err), err


def test_info_on_tflite_without_sidecar(models_dir, tmp_path, capsys) -> None:
    pytest.importorskip("ai_edge_litert")
    copy = tmp_path / "orphan.tflite"
    copy.write_bytes((models_dir / f"{DEFAULT_ARCH}_fp32.tflite").read_bytes())
    assert main(["info", str(copy)]) == 2
    assert "orphan.tflite: not a convdet detector, metadata file orphan.json is missing" in (
        capsys.readouterr().err
    )
