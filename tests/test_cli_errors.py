"""The command line prints only typed errors (ConvdetError) and OSError as one line, exit 2;
any other exception is a bug and keeps its traceback; CONVDET_DEBUG=1 raises them all."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from convdet.runtime.errors import ConvdetError, DataError, OptionError

import convdet.commands.info
from convdet.cli import DEBUG_VARIABLE, main


def fail_with(error: Exception):
    """An `info` handler that raises `error`."""

    def run(_args: argparse.Namespace) -> int:
        raise error

    return run


def one_line(capsys: pytest.CaptureFixture, command: str) -> str:
    """The one error line a command printed on stderr (asserted to be just that)."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"convdet {command}: error: "), err
    return err


def test_a_plain_value_error_is_a_bug_with_its_traceback() -> None:
    script = textwrap.dedent(
        """
        import sys
        import convdet.commands.info
        from convdet.cli import main

        def run(args):
            raise ValueError("a wrong index")

        convdet.commands.info.run = run
        sys.exit(main(["info"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode not in (0, 2)
    assert "Traceback" in done.stderr and "ValueError: a wrong index" in done.stderr
    assert "convdet info: error" not in done.stderr


def test_a_plain_value_error_propagates_out_of_main(monkeypatch) -> None:
    monkeypatch.setattr(convdet.commands.info, "run", fail_with(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        main(["info"])


@pytest.mark.parametrize("error", [ConvdetError("bad"), DataError("bad"), OptionError("bad")])
def test_a_convdet_error_is_one_line_and_exit_2(monkeypatch, capsys, error) -> None:
    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)
    monkeypatch.setattr(convdet.commands.info, "run", fail_with(error))
    assert main(["info"]) == 2
    assert one_line(capsys, "info") == "convdet info: error: bad\n"


def test_convdet_debug_raises_the_convdet_error(monkeypatch) -> None:
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    monkeypatch.setattr(convdet.commands.info, "run", fail_with(DataError("bad content")))
    with pytest.raises(DataError, match="bad content"):
        main(["info"])


def test_typed_errors_are_still_value_errors() -> None:
    assert issubclass(DataError, ValueError) and issubclass(OptionError, ValueError)


def test_a_missing_path_is_one_line(tmp_path, capsys) -> None:
    missing = tmp_path / "missing.npz"
    assert main(["scenes", "--data", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert str(missing) in one_line(capsys, "scenes")


def test_a_bad_npz_is_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 28, 28), np.uint8))
    assert main(["scenes", "--data", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "not a Keras MNIST .npz" in one_line(capsys, "scenes")


def test_a_file_that_is_no_npz_is_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "text.npz"
    bad.write_text("not an archive")
    assert main(["scenes", "--data", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "not a readable .npz file" in one_line(capsys, "scenes")


def test_a_truncated_npz_is_one_line(tmp_path, capsys) -> None:
    whole = tmp_path / "whole.npz"
    np.savez(whole, x_train=np.zeros((2, 28, 28), np.uint8))
    bad = tmp_path / "cut.npz"
    bad.write_bytes(whole.read_bytes()[:-40])
    assert main(["scenes", "--data", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "not a readable .npz file" in one_line(capsys, "scenes")


def test_a_bad_coco_file_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "annotations.json").write_text(json.dumps({"images": []}))
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a COCO digit annotation file" in one_line(capsys, "evaluate")


def test_a_folder_that_is_not_a_scene_set_is_one_line(tmp_path, capsys) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "neither a scene set" in one_line(capsys, "evaluate")


def test_a_bad_truth_record_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "truth.jsonl").write_text('{"file": "a.png"}\n')
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "truth.jsonl:1: bad truth record" in one_line(capsys, "evaluate")


def test_a_bad_manifest_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "truth.jsonl").write_text("")
    (tmp_path / "manifest.json").write_text("[1, 2")
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "manifest.json: not a JSON manifest" in one_line(capsys, "evaluate")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--background-mix", "blobs=1", "unknown kind 'blobs'"),
        ("--background-mix", "seam=x", "seam needs a number"),
        ("--arch", "huge", "'huge'"),
    ],
)
def test_a_bad_train_option_is_one_line(tmp_path: Path, capsys, option, value, message) -> None:
    assert main(["train", option, value, "--out", str(tmp_path / "run")]) == 2
    assert message in one_line(capsys, "train")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "S", "--conf", "2"], "--conf: expected at least 0 and at most 1, got 2"),
        (["evaluate", "S", "--conf", "x"], "--conf: expected a number, got 'x'"),
        (["evaluate", "S", "--invert", "up"], "--invert: expected one of auto, on, off, got 'up'"),
        (["evaluate", "S", "--grouping", "x"], "--grouping: expected one of peaks, components"),
        (["evaluate", "S", "--split", "holdout"], "--split: expected one of train, dev, test, all"),
        (["evaluate", "S", "--scales", "9"], "--scales: expected at least 0.05 and at most 8"),
        (["evaluate", "S", "--progress-every", "nan"], "--progress-every: expected at least 0"),
        (["scenes", "--data", "D", "--out", "O", "--count", "-1"], "--count: expected at least 0"),
        (["scenes", "--data", "D", "--out", "O", "--seed", "x"], "--seed: expected an integer"),
        (["scenes", "--data", "D", "--out", "O", "--split", "dev"], "--split: expected one of"),
        (["scenes", "--data", "D", "--out", "O", "--size", "0x9"], "--size: expected sides of 1"),
        (["scenes", "--data", "D", "--out", "O", "--style", "ink"], "--style ink: choose from"),
        (["train", "--out", "O", "--epochs", "1.5"], "--epochs: expected an integer, got '1.5'"),
        (["train", "--out", "O", "--pooling", "max9"], "--pooling: expected one of none, max3"),
        (["train", "--out", "O", "--styles", ","], "--styles: name at least one of mnist"),
        (["export", "R", "--calibration-scenes", "x"], "--calibration-scenes: expected an integer"),
    ],
)
def test_every_command_checks_its_values_as_detect_does(tmp_path, capsys, argv, message) -> None:
    argv = [str(tmp_path / arg) if arg in ("S", "D", "O", "R") else arg for arg in argv]
    assert main(argv) == 2
    assert message in one_line(capsys, argv[0])


def test_an_npz_without_digits_of_the_split_is_one_line(tmp_path, capsys) -> None:
    empty = tmp_path / "empty.npz"
    arrays = {f"x_{split}": np.zeros((0, 28, 28), np.uint8) for split in ("train", "test")}
    np.savez(empty, **arrays, y_train=np.zeros(0, np.int64), y_test=np.zeros(0, np.int64))
    assert main(["scenes", "--data", str(empty), "--out", str(tmp_path / "out")]) == 2
    assert "no test digits to place" in one_line(capsys, "scenes")


def test_a_truth_class_that_is_no_digit_is_one_line(tmp_path, capsys) -> None:
    record = {"file": "a.png", "width": 28, "height": 28, "style": "mnist"}
    record["objects"] = [{"class_id": 12, "box": [0, 0, 28, 28]}]
    (tmp_path / "truth.jsonl").write_text(json.dumps(record) + "\n")
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "class_id: expected digits 0..9, got [12]" in one_line(capsys, "evaluate")
