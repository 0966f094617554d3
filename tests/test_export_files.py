"""`convdet export` writes ONNX and TFLite files that follow the model contract and match Keras."""

from __future__ import annotations

import json
from importlib.metadata import version

import numpy as np
import pytest

pytest.importorskip("tensorflow")
onnx = pytest.importorskip("onnx")
pytest.importorskip("ai_edge_litert")

from convdet.export.package import export_run  # noqa: E402
from convdet.export.parity import detection_agreement, opencv_engines, parity_scenes  # noqa: E402
from convdet.runtime.backends import open_backend  # noqa: E402
from convdet.runtime.field import measure_field  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    data, _, _, run_dir = tiny_run
    out = tmp_path_factory.mktemp("models")
    return out, export_run(run_dir, out, "tiny", data)


def test_all_variants_are_written_with_metadata(exported):
    out, report = exported
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            "tiny.onnx",
            "tiny_classifier.onnx",
            "tiny.export.json",
            "SHA256SUMS",
            *(f"tiny_{p}.{ext}" for p in ("fp32", "fp16", "int8") for ext in ("tflite", "json")),
        ]
    )
    for file in report.files:
        backend = open_backend(file)
        info = backend.info
        # derived from the spec at export, and what an impulse test of the file measures
        assert info.receptive_field == (-8, 30)
        assert measure_field(backend.run, info.stride, info.input_range) == (-8, 30)
        assert info.classes[info.background] == "background" and info.stride == 8
        assert (
            info.window == 28
            and info.cell_offset == 10.0
            and info.classifier_cell == 1
            and info.classifier_padded
            and info.arch == "basic"
        )
        assert {"tensorflow", "tf2onnx", "keras"} <= set(info.producer)
        assert info.producer["convdet"] == version("convdet")  # from the package, not a literal
    assert json.loads((out / "tiny_int8.json").read_text())["precision"] == "int8"


def test_onnx_graph_is_checked_and_named(exported):
    out, _ = exported
    model = onnx.load(out / "tiny.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    (graph_input,) = model.graph.input
    assert graph_input.name == "image"
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ["batch", "height", "width", 1]
    assert [o.name for o in model.graph.output] == ["scores"]
    assert "MatMul" not in {node.op_type for node in model.graph.node}
    # The class softmax runs channels-last, after the layout transpose (a fast last-axis pass).
    transpose, softmax = model.graph.node[-2:]
    assert (transpose.op_type, softmax.op_type) == ("Transpose", "Softmax")
    assert list(softmax.input) == list(transpose.output) and list(softmax.output) == ["scores"]
    assert onnx.helper.get_attribute_value(softmax.attribute[0]) == 3
    # Explicit pads, no auto_pad: OpenCV 5's default DNN engine reads the graph right.
    padding = {a.name for node in model.graph.node for a in node.attribute}
    assert "pads" in padding and "auto_pad" not in padding


def test_tflite_height_and_width_are_dynamic(exported):
    from ai_edge_litert.interpreter import Interpreter

    out, _ = exported
    for precision in ("fp32", "fp16", "int8"):
        interpreter = Interpreter(str(out / f"tiny_{precision}.tflite"))
        signature = interpreter.get_input_details()[0]["shape_signature"]
        assert list(signature) == [1, -1, -1, 1], precision


def test_float_backends_match_keras_at_every_size(exported):
    _, report = exported
    sizes = {row.size for row in report.parity}
    assert sizes == {(28, 28), (100, 100), (127, 333), (480, 640), (720, 1280)}
    backends = {row.backend.split()[0] for row in report.parity}
    # OpenCV's default engine too (a run trained on padded windows exports explicit pads), and
    # OpenCV 5.0's classic engine where the installed OpenCV has one
    opencv = set(opencv_engines(explicit_pads=True))
    assert "opencv-dnn" in opencv
    assert backends == {"onnxruntime", "litert"} | opencv
    for row in report.parity:
        if "int8" not in row.backend and "fp16" not in row.backend:
            assert row.max_abs_diff <= 1e-4, row.describe()


def test_sliding_window_agreement_is_reported(exported):
    out, report = exported
    agreement = json.loads((out / "tiny.export.json").read_text())["window_agreement"]
    assert agreement["cells"] == 60 * 80 == report.window_agreement.cells
    assert 0 <= agreement["digit_cells"] <= 1 and 0.5 <= agreement["all_cells"] <= 1


def test_int8_detections_are_checked_against_the_float_model(exported, tiny_run):
    out, report = exported
    (check,) = report.detections
    assert check.backend == "litert tiny_int8.tflite"
    (recorded,) = json.loads((out / "tiny.export.json").read_text())["detection_agreement"]
    assert recorded["matched"] == check.matched and recorded["passed"] == check.passed
    # The briefly trained model scores under the default conf; at 0.05 it reports digits, and
    # the int8 file's are matched to the float file's one-to-one.
    data = tiny_run[0]
    scenes = parity_scenes(np.rint(data.x_test * 255).astype(np.uint8), data.y_test)
    low = detection_agreement(out / "tiny.onnx", out / "tiny_int8.tflite", scenes, conf=0.05)
    assert low.reference > 0 and low.candidate > 0
    assert 0 < low.matched <= min(low.reference, low.candidate)


def test_every_variant_is_measured_on_test_digits(exported):
    _, report = exported
    accuracy = report.digit_accuracy
    assert set(accuracy) == {
        "tiny.onnx",
        "tiny_fp32.tflite",
        "tiny_fp16.tflite",
        "tiny_int8.tflite",
    }
    assert accuracy["tiny.onnx"] == pytest.approx(accuracy["tiny_fp32.tflite"], abs=1e-3)
    assert all(0.0 <= value <= 1.0 for value in accuracy.values())


def test_litert_and_onnx_agree_on_a_real_frame(exported, mnist):
    out, _ = exported
    frame = np.zeros((1, 64, 96, 1), np.float32)
    frame[0, 10:38, 20:48, 0] = mnist["x_test"][0] / 255
    onnx_scores = open_backend(out / "tiny.onnx").run(frame)
    litert_scores = open_backend(out / "tiny_fp32.tflite").run(frame)
    assert onnx_scores.shape == (1, 8, 12, 11)
    np.testing.assert_allclose(litert_scores, onnx_scores, atol=1e-4)


def test_classifier_onnx_matches_keras(exported, tiny_run, mnist):
    import onnxruntime as ort

    out, _ = exported
    classifier = tiny_run[2].classifier
    images = (mnist["x_test"][:16, :, :, None] / 255).astype(np.float32)
    session = ort.InferenceSession(str(out / "tiny_classifier.onnx"))
    scores = session.run(None, {"image": images})[0]
    np.testing.assert_allclose(scores, np.asarray(classifier(images, training=False)), atol=1e-5)


def test_an_exported_detector_gives_the_classifier_its_weights_back(exported, tiny_run, mnist):
    """`--init file.onnx` goes on from the file's weights: batch norm folded into them."""
    from convdet.export.from_onnx import classifier_from_onnx
    from convdet.export.networks import convolutionalize

    out, _ = exported
    _, config, result, _ = tiny_run
    classifier = classifier_from_onnx(out / "tiny.onnx", config.spec)
    images = (mnist["x_test"][:16, :, :, None] / 255).astype(np.float32)
    expected = np.asarray(result.classifier(images, training=False))
    np.testing.assert_allclose(np.asarray(classifier(images, training=False)), expected, atol=1e-5)
    detector = convolutionalize(classifier, config.spec, config.detector_pooling)
    frame = np.zeros((1, 64, 96, 1), np.float32)
    frame[0, 10:38, 20:48, 0] = images[0, ..., 0]
    scores = open_backend(out / "tiny.onnx").run(frame)
    np.testing.assert_allclose(np.asarray(detector(frame, training=False)), scores, atol=1e-5)


def test_a_separable_file_gives_back_its_unfolded_depthwise_batch_norms(models_dir):
    """tf2onnx leaves a depthwise convolution's batch norm as a Mul and an Add after it."""
    from convdet.export.from_onnx import classifier_from_onnx, exported_info
    from convdet.export.networks import convolutionalize
    from convdet.export.specs import get_spec

    path = models_dir / "separable.onnx"
    info = exported_info(path)
    spec = get_spec(info.arch)
    detector = convolutionalize(classifier_from_onnx(path, spec), spec, info.pooling)
    frame = np.random.default_rng(0).random((1, 96, 128, 1), dtype=np.float32)
    scores = open_backend(path).run(frame)
    np.testing.assert_allclose(np.asarray(detector(frame, training=False)), scores, atol=1e-5)
