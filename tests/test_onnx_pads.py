"""Explicit padding in place of auto_pad: the same scores in ONNX Runtime on inputs padded to a
multiple of the stride, and the right ones in OpenCV's default DNN engine as in its classic one."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
cv2 = pytest.importorskip("cv2")
ort = pytest.importorskip("onnxruntime")

from convdet.export.to_onnx import explicit_pads  # noqa: E402


def scores(session, image: np.ndarray) -> np.ndarray:
    return session.run(None, {"image": image})[0]


@pytest.mark.parametrize("name", ["wide.onnx", "deep.onnx"])
def test_explicit_pads_keep_the_scores_and_fix_opencvs_default_engine(models_dir, tmp_path, name):
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
        default, classic = (
            cv2.dnn.readNetFromONNX(str(path)),
            cv2.dnn.readNetFromONNX(str(path), cv2.dnn.ENGINE_CLASSIC),
        )
        for net in (default, classic):
            net.setInput(image)
            assert np.abs(np.asarray(net.forward()) - expected).max() <= 1e-5
