"""Detector end to end on the shipped default-architecture model: known places, blank frames,
both polarities, the default pyramid and explicit scales, boxes that fit the ink, a large and a
small digit together, batching, errors, and a run without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from convdet.runtime import Detector, Result, default_model_path
from convdet.runtime.detector import HALF_OCTAVE, PYRAMID, pyramid_scales
from convdet.runtime.grouping import Grouping, same_class_apart
from convdet.runtime.shipped import DEFAULT_ARCH

DIGITS_PER_CLASS = 1


@pytest.fixture(scope="module")
def detector(models_dir) -> Detector:
    return Detector(models_dir / f"{DEFAULT_ARCH}.onnx")


@pytest.fixture(scope="module")
def samples(mnist) -> list[tuple[np.ndarray, int]]:
    """The first test digit of each class."""
    labels = mnist["y_test"]
    return [(mnist["x_test"][np.flatnonzero(labels == k)[0]], k) for k in range(10)]


def place(canvas: np.ndarray, digit: np.ndarray, centre: tuple[float, float], size: int = 28):
    """Paste `digit` resized to `size` px with its centre at (x, y) (rounded to whole pixels)."""
    if size != digit.shape[0]:
        import cv2

        digit = cv2.resize(digit, (size, size), interpolation=cv2.INTER_LINEAR)
    left, top = round(centre[0] - size / 2), round(centre[1] - size / 2)
    canvas[top : top + size, left : left + size] = np.maximum(
        canvas[top : top + size, left : left + size], digit
    )


def hits(result: Result, centres: list[tuple[float, float]], classes: list[int], size=28):
    """How many digits have a detection of their class centred inside their box grown by 30%
    (the evaluation's matching rule)."""
    found = result.detections
    reach = 0.65 * size
    count = 0
    for (x, y), label in zip(centres, classes, strict=True):
        near = np.abs(found.centre - [x, y]).max(axis=1) <= reach
        count += bool((near & (found.class_id == label)).any())
    return count


def test_digit_at_a_known_cell_fires_that_cell(detector, samples) -> None:
    info = detector.info
    row, col = 4, 5
    centre = info.cell_centre(col), info.cell_centre(row)
    correct_cells = correct_detections = 0
    for digit, label in samples:
        frame = np.zeros((96, 112), np.uint8)
        place(frame, digit, centre)
        result = detector(frame)
        correct_cells += result.cell_class[row, col] == label
        correct_detections += hits(result, [centre], [label])
        assert len(result.detections) <= 2, f"digit {label}: {result.detections}"
    assert correct_cells >= 8, f"{correct_cells}/10 digits classified at their cell"
    assert correct_detections >= 8, f"{correct_detections}/10 digits detected where placed"


def test_scene_of_digits(detector, mnist) -> None:
    frame = np.zeros((160, 320), np.uint8)
    centres = [(40 + 60 * (k % 5), 45 + 70 * (k // 5)) for k in range(10)]
    for k, centre in enumerate(centres):
        place(frame, mnist["x_test"][k], centre)
    classes = mnist["y_test"][:10].tolist()
    result = detector(frame)
    assert hits(result, centres, classes) >= 8
    assert len(result.detections) <= 12
    assert result.scores.shape == (20, 40, len(detector.labels))
    assert result.cell_class.shape == (20, 40)
    assert result.frame_shape == (160, 320)
    assert set(result.timings) == {"preprocess", "infer", "decode"}
    assert all(ms >= 0 for ms in result.timings.values())


@pytest.mark.parametrize("value", [0, 255, 128])
def test_blank_frames_give_no_detections(detector, value) -> None:
    for frame in (np.full((120, 160), value, np.uint8), np.full((120, 160, 3), value, np.uint8)):
        assert len(detector(frame).detections) == 0


def test_both_polarities(detector, mnist) -> None:
    frame = np.zeros((100, 200), np.uint8)
    centres = [(40, 50), (100, 50), (160, 50)]
    for k, centre in enumerate(centres):
        place(frame, mnist["x_test"][k], centre)
    classes = mnist["y_test"][:3].tolist()
    light = detector(frame)
    # Dark ink on unevenly lit paper, as a BGR camera frame.
    lighting = np.linspace(140, 240, 200)[None, :]
    paper = np.clip(lighting * (1 - 0.8 * frame / 255.0), 0, 255).astype(np.uint8)
    dark = detector(np.dstack([paper] * 3))
    assert not light.inverted and dark.inverted
    assert hits(light, centres, classes) == 3
    assert hits(dark, centres, classes) >= 2


def ink_extent(frame: np.ndarray, centre: tuple[float, float], size: int) -> np.ndarray:
    """[x1, y1, x2, y2] of the ink (pixels of at least a quarter of full brightness) of the
    digit placed at `centre` with `size`."""
    left, top = round(centre[0] - size / 2), round(centre[1] - size / 2)
    rows, cols = np.nonzero(frame[top : top + size, left : left + size] >= 64)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]) + [left, top] * 2


@pytest.mark.parametrize(
    ("height", "width", "scales"),
    [
        (58, 175, (1.0, HALF_OCTAVE)),  # a cheque's amount field: its digits fill it
        (45, 175, (1.0,)),  # less than PYRAMID_LAST_SIDE px at the half-octave step
        (127, 500, (1.0, HALF_OCTAVE)),
        (128, 128, (1.0, 0.5, 0.5 * HALF_OCTAVE)),
        (240, 320, (1.0, 0.5, 0.5 * HALF_OCTAVE)),
        (480, 640, (1.0, 0.5, 0.25, 0.25 * HALF_OCTAVE)),
        (640, 480, (1.0, 0.5, 0.25, 0.25 * HALF_OCTAVE)),
        (720, 1280, (1.0, 0.5, 0.25, 0.125, 0.125 * HALF_OCTAVE)),
        (1080, 1920, (1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625 * HALF_OCTAVE)),
        (4000, 30, (1.0,)),
        (4095, 5000, (*PYRAMID[:-1], PYRAMID[-2] * HALF_OCTAVE)),
        (4096, 4096, (*PYRAMID, PYRAMID[-1] * HALF_OCTAVE)),
        (20000, 20000, (*PYRAMID, PYRAMID[-1] * HALF_OCTAVE)),  # never beyond 1/64 and a half
    ],
)
def test_pyramid_chooses_scales_from_the_frame_size(height, width, scales) -> None:
    assert pyramid_scales(height, width) == scales


def recorded_inputs(detector: Detector) -> list[tuple[int, ...]]:
    """The (height, width) of every model input `detector` runs from now on, as it runs them."""
    seen: list[tuple[int, ...]] = []
    run = detector.backend.run

    def recording(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape[1:3])
        return run(batch)

    detector.backend.run = recording
    return seen


def test_default_runs_the_pyramid_and_explicit_scales_run_as_given(models_dir, mnist) -> None:
    model = models_dir / f"{DEFAULT_ARCH}.onnx"
    frame = np.zeros((480, 640), np.uint8)
    place(frame, mnist["x_test"][0], (320, 240), size=56)
    for scales, inputs in [
        (None, [(480, 640), (240, 320), (120, 160), (88, 120)]),
        ("auto", [(480, 640), (240, 320), (120, 160), (88, 120)]),
        ((1.0,), [(480, 640)]),
        ((0.5, 2.0), [(240, 320), (960, 1280)]),
    ]:
        detector = Detector(model, scales=scales, sparse="off", recheck=False)  # inputs whole
        assert detector.scales == (PYRAMID if scales in (None, "auto") else scales)
        seen = recorded_inputs(detector)
        result = detector(frame)
        assert seen == inputs, scales
        first = 1.0 if scales in (None, "auto") else scales[0]
        assert result.geometry.scale == first  # Result.scores is the first scale's grid
        assert result.scores.shape[:2] == (inputs[0][0] // 8, inputs[0][1] // 8)


def test_the_grouping_takes_the_models_same_class_spacing_unless_given(models_dir) -> None:
    """Each architecture's peaks of one class may sit as close as `same_class_apart` says;
    a Grouping given with its own spacing keeps it."""
    wide, basic = (Detector(models_dir / f"{arch}.onnx") for arch in ("wide", "basic"))
    assert wide.grouping.same_class_apart == same_class_apart("wide")
    assert basic.grouping.same_class_apart == same_class_apart("basic")
    assert wide.grouping.same_class_apart != basic.grouping.same_class_apart
    given = Detector(models_dir / "wide.onnx", grouping=Grouping(same_class_apart=0.8))
    assert given.grouping.same_class_apart == 0.8


@pytest.mark.parametrize(("size", "tolerance"), [(28, 1.5), (84, 4.0)], ids=["1x", "3x"])
def test_boxes_fit_the_ink_not_the_window(detector, samples, size, tolerance) -> None:
    """A digit drawn at 28 px (found at scale 1) and at 84 px (at 0.5, where a pixel is two of
    the frame's): each box lies within a few pixels of the digit's ink extent, not the 28 or
    56 px window (at 3x, most of them: a wide digit's tail can fall outside the ink search);
    a "1" is narrow."""
    centre = (150.0, 120.0)
    errors = []
    for digit, label in samples:
        frame = np.zeros((240, 320), np.uint8)
        place(frame, digit, centre, size)
        found = detector(frame).detections
        assert len(found) == 1, f"digit {label} at {size} px: {found}"
        ink = ink_extent(frame, centre, size)
        errors.append(np.abs(found.xyxy[0] - ink).max())
        if label == 1:
            assert found.xyxy[0, 2] - found.xyxy[0, 0] < size / 2
    if size == 28:
        assert max(errors) <= tolerance, errors
    else:  # a wide digit found half a cell off can lose the tail beyond the search (limitation)
        assert np.median(errors) <= tolerance and max(errors) <= size / 4, errors


def test_a_large_and_a_small_digit_give_one_detection_each(detector, samples) -> None:
    """With the defaults, a digit drawn at 120 px (its strokes are digit-sized at scale 1: the
    loop of an 8 reads as a 0) and one at 24 px in the same frame: one detection each, where
    each digit is, for every class drawn large."""
    wrong = []
    for large, label in samples:
        small, small_label = samples[(label + 3) % 10]
        frame = np.zeros((480, 640), np.uint8)
        place(frame, large, (400, 240), 120)
        place(frame, small, (120, 240), 24)
        found = detector(frame).detections
        inks = [ink_extent(frame, (400, 240), 120), ink_extent(frame, (120, 240), 24)]
        on = [((found.centre >= ink[:2]) & (found.centre <= ink[2:])).all(axis=1) for ink in inks]
        assert len(found) == 2 and all(hit.sum() == 1 for hit in on), (label, found)
        wrong += [
            f"{name} {want} read as {found.class_id[hit][0]}"
            for name, want, hit in (("large", label, on[0]), ("small", small_label, on[1]))
            if found.class_id[hit][0] != want
        ]
    assert len(wrong) <= 2, wrong


def test_batch_matches_single_frames(detector, mnist) -> None:
    frames = [np.zeros((64, 96), np.uint8) for _ in range(3)] + [np.zeros((40, 40), np.uint8)]
    for k, frame in enumerate(frames):
        place(frame, mnist["x_test"][k], (20 + 2 * k, 20))
    batched = detector.detect_batch(frames)
    for frame, result in zip(frames, batched, strict=True):
        single = detector(frame)
        np.testing.assert_allclose(result.scores, single.scores, atol=1e-5)
        assert result.detections.class_id.tolist() == single.detections.class_id.tolist()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (None, "frame: expected a numpy array, got NoneType"),
        (np.zeros((0, 0, 3), np.uint8), r"expected a non-empty image, got shape \(0, 0, 3\)"),
        (np.zeros((10, 10, 2), np.uint8), r"got \(10, 10, 2\)"),
        (np.zeros(10, np.uint8), r"got \(10,\)"),
        (np.zeros((10, 10), np.int64), "got int64"),
    ],
)
def test_bad_frames_are_value_errors(detector, frame, message) -> None:
    with pytest.raises(ValueError, match=message):
        detector(frame)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scales": ()}, r"scales: expected 'auto' or one or more numbers in 0\.05\.\.8"),
        ({"scales": (1.0, 0)}, r"scales: expected 'auto' or one or more numbers in 0\.05"),
        ({"scales": "1"}, r"scales: expected 'auto' or one or more numbers in 0\.05\.\.8, got '1'"),
        ({"conf": 1.5}, r"conf: expected a probability in 0..1, got 1.5"),
        ({"invert": "maybe"}, "invert: expected one of auto, on, off"),
    ],
)
def test_bad_options_are_value_errors(models_dir, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        Detector(models_dir / f"{DEFAULT_ARCH}.onnx", **options)


def test_default_model_is_shipped() -> None:
    path = default_model_path()
    assert path.is_file(), f"default model {path} is missing"
    assert Detector().model_path == path


def test_runtime_runs_without_tensorflow(models_dir) -> None:
    """`import runtime`, a full detection and the tooling a runtime-only install runs
    (scene generation, COCO folders, evaluation) load neither TensorFlow, Keras nor tf2onnx,
    nor the optional Pillow and supervision (imported only for a PIL image or an adapter)."""
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        import convdet.runtime as runtime
        import convdet.data.camera, convdet.data.coco, convdet.data.scenes, convdet.data.surfaces
        import convdet.measure.evaluate
        frame = np.zeros((64, 64, 3), np.uint8)
        frame[18:46, 18:46] = 255
        for model in ({str(models_dir / f"{DEFAULT_ARCH}.onnx")!r},
                      {str(models_dir / f"{DEFAULT_ARCH}_int8.tflite")!r}):
            result = runtime.Detector(model)(frame)
            runtime.GridAnnotator().annotate(frame.copy(), result)
        heavy = sorted({{name.split(".")[0] for name in sys.modules}}
                       & {{"tensorflow", "keras", "tf2onnx", "tf_keras", "PIL", "supervision"}})
        print(json.dumps(heavy))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("model", [f"{DEFAULT_ARCH}.onnx", f"{DEFAULT_ARCH}_int8.tflite"])
def test_one_detector_called_from_four_threads_gives_each_frame_its_own_result(
    models_dir, mnist, model
) -> None:
    """Threads sharing one Detector once read each other's frames from its reused input
    buffer; each result must equal the single-threaded one for the same frame."""
    if model.endswith(".tflite"):
        pytest.importorskip("ai_edge_litert")
    shared = Detector(models_dir / model)
    frames = []
    for k in range(8):
        frame = np.zeros((96, 128), np.uint8)
        place(frame, mnist["x_test"][k], (24 + 10 * k, 40))
        frames.append(frame)
    expected = [shared(frame) for frame in frames]
    assert len({result.detections.class_id.tobytes() for result in expected}) > 1

    def detect(index: int) -> list[Result]:
        return [shared(frames[index]) for _ in range(12)]

    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(detect, range(len(frames))))
    for index, results in enumerate(found):
        for result in results:
            np.testing.assert_array_equal(result.scores, expected[index].scores)
            np.testing.assert_array_equal(result.detections.xyxy, expected[index].detections.xyxy)


@pytest.mark.parametrize("name", [DEFAULT_ARCH, f"{DEFAULT_ARCH}.onnx", f"{DEFAULT_ARCH}_int8"])
def test_detector_takes_shipped_names_with_or_without_extension(models_dir, name) -> None:
    expected = f"{DEFAULT_ARCH}_int8.tflite" if name.endswith("_int8") else f"{DEFAULT_ARCH}.onnx"
    if expected.endswith(".tflite"):
        pytest.importorskip("ai_edge_litert")
    assert Detector(name).model_path == models_dir / expected


def test_a_result_kept_to_some_classes_drops_the_others_everywhere(detector, mnist) -> None:
    page = np.zeros((64, 160), np.uint8)
    for position in range(4):  # test digits 7, 2, 1, 0
        page[18:46, 8 + 38 * position : 36 + 38 * position] = mnist["x_test"][position]
    result = detector(page)
    assert {7, 2} <= set(result.detections.class_id.tolist())
    kept = result.only((7,))
    assert kept.detections.class_id.tolist() == [7] * int((result.detections.class_id == 7).sum())
    assert [line.text for line in kept.lines] == ["7" * len(kept.detections)]
    assert set(np.unique(kept.cell_class)) <= {7, result.background}
    assert (kept.cell_class == 7).sum() == (result.cell_class == 7).sum()
    np.testing.assert_allclose(kept.scores.sum(axis=-1), result.scores.sum(axis=-1), atol=1e-5)
    assert not kept.scores[..., [c for c in range(10) if c != 7]].any()
    np.testing.assert_array_equal(kept.scores[..., 7], result.scores[..., 7])


def test_a_path_is_read_with_load_image(detector, mnist, tmp_path) -> None:
    import cv2

    frame = np.zeros((64, 96), np.uint8)
    frame[18:46, 34:62] = mnist["x_test"][0]
    cv2.imwrite(str(tmp_path / "page.png"), frame)
    expected = detector(frame).detections
    assert len(expected) == 1
    for path in (tmp_path / "page.png", str(tmp_path / "page.png")):
        found = detector(path).detections
        np.testing.assert_array_equal(found.xyxy, expected.xyxy)
        assert found.class_id.tolist() == expected.class_id.tolist()
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.png: empty file \(0 bytes\)"):
        detector(tmp_path / "empty.png")


PIL_MODES = ("L", "RGB", "RGBA", "P", "P transparent", "I;16", "I;16B", "I", "F", "1")


def pil_and_frame(mode: str, digit: np.ndarray) -> tuple[object, np.ndarray]:
    """A real PIL image of `mode` showing `digit` on a 64 x 96 page, and the numpy frame OpenCV
    would give for the same picture (BGR(A), gray, 16-bit gray of 12-bit data or float)."""
    image = pytest.importorskip("PIL.Image")
    gray = np.zeros((64, 96), np.uint8)
    gray[18:46, 34:62] = digit
    bgr = np.stack([gray // 4, gray, np.zeros_like(gray)], axis=2)  # green ink: order matters
    opaque = np.full((64, 96, 1), 255, np.uint8)
    if mode in ("L", "1"):
        frame = gray if mode == "L" else np.where(gray > 127, 255, 0).astype(np.uint8)
        return image.fromarray(gray if mode == "L" else gray > 127), frame
    if mode in ("RGB", "RGBA"):
        frame = bgr if mode == "RGB" else np.concatenate([bgr, opaque], axis=2)
        return image.fromarray(
            np.ascontiguousarray(frame[..., [2, 1, 0, 3][: frame.shape[2]]])
        ), frame
    if mode.startswith("P"):  # index k shows bgr's colour for gray k; index 0 transparent
        palette = np.stack([np.zeros(256), np.arange(256), np.arange(256) // 4], axis=1)
        picture = image.fromarray(gray)
        picture.putpalette(palette.astype(np.uint8).ravel().tolist())
        if mode == "P":
            return picture, bgr
        picture.info["transparency"] = 0
        return picture, np.concatenate([bgr, np.where(gray[..., None] > 0, opaque, 0)], axis=2)
    if mode == "F":
        unit = gray.astype(np.float32) / 255
        return image.fromarray(unit), unit
    deep = gray.astype(np.uint16) * 16  # 12-bit data, as a camera or scanner stores it
    stored = {"I;16": deep, "I;16B": deep.astype(">u2"), "I": deep.astype(np.int32)}[mode]
    return image.fromarray(stored), deep


@pytest.mark.parametrize("mode", PIL_MODES)
def test_a_pil_image_gives_the_detections_of_the_same_numpy_frame(detector, mnist, mode) -> None:
    picture, frame = pil_and_frame(mode, mnist["x_test"][0])
    assert picture.mode == mode.split()[0]
    expected = detector(frame)
    assert len(expected.detections) == 1, "the page shows one digit"
    result = detector(picture)
    np.testing.assert_allclose(result.scores, expected.scores, atol=1e-6)
    np.testing.assert_array_equal(result.detections.xyxy, expected.detections.xyxy)
    assert result.detections.class_id.tolist() == expected.detections.class_id.tolist()
    assert result.frame_shape == expected.frame_shape


def test_a_16_bit_png_opened_with_pil_reads_as_cv2_reads_it(detector, mnist, tmp_path) -> None:
    import cv2

    image = pytest.importorskip("PIL.Image")
    _, deep = pil_and_frame("I;16", mnist["x_test"][0])
    cv2.imwrite(str(tmp_path / "scan.png"), deep)
    with image.open(tmp_path / "scan.png") as picture:
        result = detector(picture)
    expected = detector(tmp_path / "scan.png")
    assert len(expected.detections) == 1
    np.testing.assert_allclose(result.scores, expected.scores, atol=1e-6)


def test_a_pil_image_no_frame_can_show_is_a_one_line_error(detector) -> None:
    image = pytest.importorskip("PIL.Image")
    huge = image.fromarray(np.array([[0, 70000]], np.int32))
    with pytest.raises(
        ValueError, match=r"^PIL image mode I: values 0\.\.70000 do not fit 16 bits"
    ):
        detector(huge)
    premultiplied = image.new("La", (8, 8))
    with pytest.raises(ValueError, match=r"^PIL image mode La: not convertible to RGB;") as error:
        detector(premultiplied)
    assert "\n" not in str(error.value)
