"""Explicit padding in place of auto_pad: the same scores in ONNX Runtime on inputs padded to a
multiple of the stride, and the right ones in every OpenCV DNN engine the parity check uses (the
default one, and OpenCV 5.0's classic one where it exists)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
cv2 = pytest.importorskip("cv2")
ort = pytest.importorskip("onnxruntime")

from convdet.export.parity import opencv_engines, opencv_runner  # noqa: E402
from convdet.export.to_onnx import explicit_pads  # noqa: E402


def scores(session, image: np.ndarray) -> np.ndarray:
    return session.run(None, {"image": image})[0]


def test_the_default_model_has_explicit_pads_and_opencvs_default_engine_reads_it(models_dir):
    path = models_dir / "wide.onnx"
    model = onnx.load(path)
    padding = {a.name for node in model.graph.node for a in node.attribute}
    assert "pads" in padding and "auto_pad" not in padding
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(1).random((1, 120, 160, 1), dtype=np.float32)
    net = cv2.dnn.readNetFromONNX(str(path))  # the default engine, as a user loads it
    net.setInput(image)
    assert np.abs(np.asarray(net.forward()) - scores(session, image)).max() <= 1e-5


@pytest.mark.parametrize("name", ["deep.onnx", "separable.onnx"])
def test_explicit_pads_keep_the_scores_in_onnx_runtime_and_opencv(models_dir, tmp_path, name):
    original = onnx.load(models_dir / name)
    rewritten = explicit_pads(onnx.load(models_dir / name))
    padding = [
        attribute.name
        for node in rewritten.graph.node
        for attribute in node.attribute
        if attribute.name in ("auto_pad", "pads")
    ]
    assert "auto_pad" not in padding and padding.count("pads") >= 7
    onnx.checker.check_model(rewritten, full_check=True)
    path = tmp_path / name
    onnx.save(rewritten, path)
    providers = ["CPUExecutionProvider"]
    before = ort.InferenceSession(original.SerializeToString(), providers=providers)
    after = ort.InferenceSession(str(path), providers=providers)
    rng = np.random.default_rng(0)
    for height, width in ((96, 128), (48, 200)):
        image = rng.random((1, height, width, 1), dtype=np.float32)
        expected = scores(before, image)
        np.testing.assert_array_equal(scores(after, image), expected)
        engines = opencv_engines(explicit_pads=True)
        assert "opencv-dnn" in engines  # the default engine, in every OpenCV
        for engine in engines.values():
            run = opencv_runner(path, engine)
            assert np.abs(run(image) - expected).max() <= 1e-5
