"""`convdet train` and `convdet export`: one-line errors and the missing-extra hint."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from convdet.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "--arch", "huge", "--out", "x"],
            "--arch: expected one of basic, deep, separable, wide, wide_res, got 'huge'",
        ),
        (["train", "--data", "missing.npz", "--out", "x"], "--data missing.npz: no such file"),
        (["train", "--epochs", "0", "--out", "x", "--data", "{npz}"], "at least 1"),
        (["train", "--background-mix", "blobs=1", "--out", "x"], "unknown kind 'blobs'"),
        (["train", "--teacher", "no-run", "--out", "x"], "teacher no-run: no classifier.keras"),
        (["train", "--teacher", "{run}", "--distill-weight", "2", "--out", "x"], "weight"),
        (["train", "--styles", "mnist,ink", "--out", "x"], "--styles mnist,ink: choose from"),
        (["train", "--real", "{run}", "--out", "x"], "not a COCO folder"),
        (
            ["train", "--real-share", "2", "--out", "x"],
            "--real-share: expected at least 0 and at most 1, got 2",
        ),
        (
            ["train", "--mark-weight", "-1", "--out", "x"],
            "--mark-weight: expected at least 0, got -1",
        ),
        (["train", "--real-scale", "0.5", "--out", "x"], "--real-scale: expected LO,HI, got '0.5'"),
        (["train", "--real-scale", "0.8,0.5", "--out", "x"], "--real-scale: expected LO <= HI"),
        (["train", "--real-scale", "0.5,2", "--out", "x"], "at most 1, got 2"),
        (["train", "--init", "no-run", "--out", "x"], "--init no-run: not a convdet train run"),
        (["train", "--init", "{run}", "--out", "x"], "need 'basic'"),
        (["train", "--init", "{wide}", "--out", "x"], "a detector of --arch 'wide' (need 'basic')"),
        (["train", "--init", "{run}/x.onnx", "--out", "x"], "not a detector convdet exported"),
        (["export", "no-such-run"], "not a training run"),
        (["export", "{run}", "--calibration-scenes", "0"], "at least 3"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, mnist_npz, tmp_path):
    (tmp_path / "classifier.keras").touch()  # a teacher run, as far as the checks go
    (tmp_path / "run.json").write_text('{"arch": "deep"}')  # a deep run for --init
    (tmp_path / "detector.keras").touch()  # and a run to export, as far as the checks go
    wide = Path(__file__).parents[1] / "models" / "wide.onnx"
    argv = [arg.format(npz=mnist_npz, run=tmp_path, wide=wide) for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


BLOCK_TENSORFLOW = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    class Block(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"tensorflow", "keras", "tf2onnx"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Block())
    from convdet.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.parametrize("command", ["train", "export"])
def test_without_the_train_extra_says_what_to_install(command, tmp_path, mnist_npz):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    (run / "detector.keras").write_bytes(b"")
    argv = {
        "train": ["train", "--data", str(mnist_npz), "--out", str(tmp_path / "o")],
        "export": ["export", str(run), "--data", str(mnist_npz)],
    }[command]
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_TENSORFLOW, *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().endswith("pip install 'convdet[train]'")
    assert len(done.stderr.strip().splitlines()) == 1


def test_train_cli_saves_a_run_with_both_stages(tmp_path, mnist_npz, capsys):
    pytest.importorskip("tensorflow")
    run = tmp_path / "run"
    argv = f"train --arch basic --data {mnist_npz} --out {run} --epochs 1 --limit 300"
    assert main([*argv.split(), "--scene-epochs", "1", "--scenes-per-epoch", "24"]) == 0
    out = capsys.readouterr().out
    assert "digit accuracy" in out and "background recall" in out
    assert {p.name for p in run.iterdir()} >= {"classifier.keras", "detector.keras", "run.json"}
    history = json.loads((run / "run.json").read_text())["history"]
    assert len(history["loss"]) == 1 and len(history["scenes_loss"]) == 1
