"""Backends: contract checks on hand-made ONNX files; ONNX Runtime vs LiteRT on shipped models."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from convdet.runtime.backends import LiteRTBackend, OnnxBackend, open_backend
from convdet.runtime.detector import Detector
from convdet.runtime.modelinfo import ModelContractError, ModelInfo
from convdet.runtime.shipped import DEFAULT_ARCH

CLASSES = tuple([*(str(k) for k in range(10)), "background"])


def tiny_onnx(
    path: Path, channels: int = 1, outputs: int = 11, metadata: bool = True, rank: int = 4
) -> Path:
    """A one-convolution stand-in detector (stride 8, softmax) with adjustable contract faults."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(0, 0.1, (outputs, channels, 8, 8))
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["logits"], strides=[8, 8], kernel_shape=[8, 8]),
        helper.make_node("Transpose", ["logits"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Softmax", ["nhwc"], ["scores"], axis=-1),
    ]
    input_shape = ["batch", "height", "width", channels][-rank:]
    if rank != 4:
        nodes = [helper.make_node("Identity", ["image"], ["scores"])]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weights.astype(np.float32), "w")] if rank == 4 else [],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        info = ModelInfo(CLASSES, background=10, stride=8, window=28, cell_offset=4.0, arch="tiny")
        for key, value in info.to_metadata().items():
            model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


def test_tiny_onnx_meets_the_contract(tmp_path) -> None:
    backend = open_backend(tiny_onnx(tmp_path / "tiny.onnx"), threads=1)
    assert isinstance(backend, OnnxBackend)
    assert backend.info.classes == CLASSES
    assert backend.input_spec.describe() == "image float32 [batch, height, width, 1]"
    assert backend.fixed_size is None
    scores = backend.run(np.zeros((2, 16, 24, 1), np.float32))
    assert scores.shape == (2, 2, 3, 11)


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.onnx", None, "missing.onnx: model file not found"),
        ("model.pt", lambda p: p.write_bytes(b"x"), r"unknown model type '\.pt', expected"),
        ("corrupt.onnx", lambda p: p.write_bytes(b"not a model"), "cannot load ONNX model"),
        ("corrupt.tflite", lambda p: p.write_bytes(b"not a model"), "cannot load TFLite model"),
        ("rgb.onnx", lambda p: tiny_onnx(p, channels=3), r"expected input \[batch, height"),
        ("rank2.onnx", lambda p: tiny_onnx(p, rank=2), r"expected input .* got image float32"),
        ("ten.onnx", lambda p: tiny_onnx(p, outputs=10), r"\(one channel per class\), got"),
        ("bare.onnx", lambda p: tiny_onnx(p, metadata=False), "metadata lacks classes"),
    ],
)
def test_contract_errors_name_the_file_and_the_fault(tmp_path, name, make, message) -> None:
    path = tmp_path / name
    if make is not None:
        if path.suffix == ".tflite":
            pytest.importorskip("ai_edge_litert")
        make(path)
    with pytest.raises(ModelContractError, match=message) as error:
        open_backend(path)
    assert name in str(error.value)


def test_tflite_needs_its_sidecar(models_dir, tmp_path) -> None:
    pytest.importorskip("ai_edge_litert")
    copy = tmp_path / "model.tflite"
    copy.write_bytes((models_dir / f"{DEFAULT_ARCH}_fp32.tflite").read_bytes())
    with pytest.raises(ModelContractError, match=r"metadata file model\.json is missing"):
        open_backend(copy)
    (tmp_path / "model.json").write_text("[1, 2]")
    with pytest.raises(ModelContractError, match="must be a JSON object, got list"):
        open_backend(copy)


def test_litert_reads_dynamic_dims_and_resizes_only_on_new_sizes(models_dir) -> None:
    pytest.importorskip("ai_edge_litert")
    backend = open_backend(models_dir / f"{DEFAULT_ARCH}_fp32.tflite")
    assert isinstance(backend, LiteRTBackend)
    assert backend.input_spec.shape[1:] == (None, None, 1)
    allocations = []
    allocate = backend.interpreter.allocate_tensors
    backend.interpreter.allocate_tensors = lambda: allocations.append(1) or allocate()
    for height, width in ((64, 96), (64, 96), (40, 56), (40, 56), (64, 96)):
        scores = backend.run(np.zeros((1, height, width, 1), np.float32))
        assert scores.shape == (1, height // 8, width // 8, len(backend.info.classes))
    assert len(allocations) == 3


def digit_scene(mnist: dict[str, np.ndarray], count: int = 6) -> np.ndarray:
    """Test digits on a 120x240 black canvas, two rows, 28 px each, well apart."""
    canvas = np.zeros((120, 240), np.uint8)
    for index in range(count):
        top, left = 20 + 50 * (index // 3), 20 + 80 * (index % 3)
        canvas[top : top + 28, left : left + 28] = mnist["x_test"][index]
    return canvas


@pytest.mark.parametrize("variant", ["fp32", "fp16"])
def test_onnx_and_litert_give_the_same_detections(models_dir, mnist, variant) -> None:
    pytest.importorskip("ai_edge_litert")
    onnx_detector = Detector(models_dir / f"{DEFAULT_ARCH}.onnx", scales=(1.0, 0.5))
    litert_detector = Detector(models_dir / f"{DEFAULT_ARCH}_{variant}.tflite", scales=(1.0, 0.5))
    scene = digit_scene(mnist)
    for frame in (scene, 255 - scene):
        expected, got = onnx_detector(frame), litert_detector(frame)
        np.testing.assert_allclose(got.scores, expected.scores, atol=2e-3, err_msg=variant)
        # Compare in reading order: near-equal scores may rank in either order.
        expected_order = np.lexsort(expected.detections.xyxy[:, ::-1].T)
        got_order = np.lexsort(got.detections.xyxy[:, ::-1].T)
        expected_detections = expected.detections[expected_order]
        got_detections = got.detections[got_order]
        assert got_detections.class_id.tolist() == expected_detections.class_id.tolist()
        np.testing.assert_allclose(got_detections.xyxy, expected_detections.xyxy, atol=1.0)
        np.testing.assert_allclose(got_detections.score, expected_detections.score, atol=5e-3)
        assert len(expected.detections) > 0


def test_int8_litert_finds_the_digits(models_dir, mnist) -> None:
    pytest.importorskip("ai_edge_litert")
    scene = digit_scene(mnist)
    expected = Detector(models_dir / f"{DEFAULT_ARCH}.onnx")(scene).detections
    got = Detector(models_dir / f"{DEFAULT_ARCH}_int8.tflite")(scene).detections
    # Quantization may flip a borderline digit; all but one must agree with float.
    common = Counter(got.class_id.tolist()) & Counter(expected.class_id.tolist())
    assert sum(common.values()) >= len(expected) - 1, (got.class_id, expected.class_id)
