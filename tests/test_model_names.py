"""Shipped model names (with or without the extension) in every command and in Detector, the
listing of shipped detectors, and what a LiteRT-only board says when onnxruntime is needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from convdet.data.scenes import SceneParams, generate_scenes, write_scene_set
from convdet.runtime.shipped import DEFAULT_ARCH, resolve_model, shipped_models

from convdet.cli import main
from convdet.commands.benchmark import _models

# A child process in which `import onnxruntime` fails, as on a board with LiteRT only.
BOARD = """
import sys
from importlib.abc import MetaPathFinder

class NoOnnxRuntime(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoOnnxRuntime())
"""
RUN_CLI = BOARD + "from convdet.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def detector_files(models_dir: Path) -> list[str]:
    """The shipped detectors as the folder holds them (never a list kept in the code)."""
    return sorted(
        path.name
        for path in models_dir.iterdir()
        if path.suffix in (".onnx", ".tflite") and "_classifier" not in path.stem
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (DEFAULT_ARCH, f"{DEFAULT_ARCH}.onnx"),
        (f"{DEFAULT_ARCH}.onnx", f"{DEFAULT_ARCH}.onnx"),
        (f"{DEFAULT_ARCH}_int8", f"{DEFAULT_ARCH}_int8.tflite"),
        (f"{DEFAULT_ARCH}_int8.tflite", f"{DEFAULT_ARCH}_int8.tflite"),
        ("separable", "separable.onnx"),
    ],
)
def test_shipped_names_resolve_with_or_without_extension(models_dir, name, expected) -> None:
    assert resolve_model(name) == models_dir / expected
    if "." not in name:  # a name without extension means the int8 .tflite for LiteRT
        assert resolve_model(name, "tflite").name == f"{name.removesuffix('_int8')}_int8.tflite"


def test_shipped_models_are_found_in_the_folder(models_dir) -> None:
    assert [path.name for path in shipped_models()] == detector_files(models_dir)


def test_a_name_that_matches_nothing_lists_the_shipped_models(models_dir, capsys) -> None:
    assert main(["info", "deeep"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convdet info: error: deeep: model file not found (shipped models: ")
    assert all(name in err for name in detector_files(models_dir))
    assert len(err.strip().splitlines()) == 1


def test_info_and_benchmark_take_shipped_names(models_dir, capsys) -> None:
    pytest.importorskip("ai_edge_litert")
    assert main(["info", f"{DEFAULT_ARCH}_int8.tflite"]) == 0
    assert f"file: {models_dir / f'{DEFAULT_ARCH}_int8.tflite'}" in capsys.readouterr().out
    assert _models(f"separable.onnx,{DEFAULT_ARCH}_int8") == (
        models_dir / "separable.onnx",
        models_dir / f"{DEFAULT_ARCH}_int8.tflite",
    )


def test_info_without_a_model_lists_every_shipped_detector(models_dir, capsys) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f"(default: {DEFAULT_ARCH}.onnx):")
    rows = {line.split()[0]: line.split() for line in out[2:-1]}
    assert sorted(rows) == detector_files(models_dir)
    onnx = rows["separable.onnx"]
    assert onnx[1] == f"{(models_dir / 'separable.onnx').stat().st_size:,}"
    assert onnx[2:5] == ["separable", "fp32", "max3"]


def test_detect_and_evaluate_take_names_without_extension(tmp_path, mnist, capsys) -> None:
    scenes = tmp_path / "scenes"
    params = SceneParams("mnist", 1, seed=3, size=(160, 120))
    write_scene_set(scenes, generate_scenes(mnist["x_test"], mnist["y_test"], params), {})
    assert main(["evaluate", str(scenes), "--model", "separable"]) == 0
    assert capsys.readouterr().out.startswith(f"model {resolve_model('separable.onnx')}  ")
    page = tmp_path / "page.png"
    cv2.imwrite(str(page), np.zeros((48, 64), np.uint8))
    assert main(["detect", str(page), "--model", "basic"]) == 0
    assert main(["detect", str(page), "--model", "basic_int8", "--backend", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "convdet detect: error: --backend onnx runs .onnx models, got basic_int8" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["info", f"{DEFAULT_ARCH}.onnx"],
        ["detect", "samples/digits.png", "--backend", "onnx"],
        ["detect", "samples/digits.png", "--model", "separable.onnx"],
        ["benchmark", "--quick", "--data", "{mnist}", "--models", "separable.onnx"],
    ],
)
def test_litert_only_board_says_to_install_onnxruntime(mnist_npz, argv) -> None:
    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-c", RUN_CLI, *(arg.format(mnist=mnist_npz) for arg in argv)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=repo)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().endswith("pip install onnxruntime"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_litert_only_board_benchmarks_the_tflite_files_of_an_architecture(models_dir) -> None:
    pytest.importorskip("ai_edge_litert")
    script = BOARD + "from convdet.commands.benchmark import _models\nprint(*_models('basic'))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    names = [Path(path).name for path in done.stdout.split()]
    assert names == ["basic_fp32.tflite", "basic_fp16.tflite", "basic_int8.tflite"]


def test_sample_path_finds_the_samples_from_any_folder(tmp_path) -> None:
    """The README's Python example reads samples/digits.png through `sample_path`: it must work
    with the working folder elsewhere, and name the missing file otherwise."""
    script = (
        "from convdet.runtime import Detector, sample_path\n"
        "path = sample_path()\n"
        "print(path.is_absolute(), len(Detector()(path).detections))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    absolute, found = done.stdout.split()
    assert absolute == "True" and int(found) > 0
    from convdet.runtime import sample_path

    assert sample_path("paper.jpg").name == "paper.jpg"
    with pytest.raises(FileNotFoundError, match=r"^sample 'nope\.png' not found at .*samples"):
        sample_path("nope.png")
