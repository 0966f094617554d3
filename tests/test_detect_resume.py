"""`convdet detect --resume`: a stopped image batch goes on where its --json FILE ends, each
input recorded once, and its options refused in one line where they cannot apply."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from test_detect_cli import error_lines, records, write_pages
from test_sources import digit_page, write_video

from convdet.cli import main


def test_a_killed_batch_resumed_records_each_input_once(tmp_path, mnist, model, capsys):
    folder = write_pages(tmp_path / "pages", mnist, 6)
    (folder / "p06.png").write_bytes(b"")  # fails: its error record counts as done
    out = tmp_path / "out.jsonl"
    names = [str(folder / f"p{i:02d}.png") for i in range(7)]
    first = [*names[:3], names[6]]  # the run that was killed after four records...
    assert main(["detect", *first, "--model", str(model), "--json", str(out)]) == 1
    out.write_text(out.read_text() + out.read_text().splitlines()[0][:40])  # ...mid-record
    capsys.readouterr()
    resume = ["detect", str(folder), "--model", str(model), "--json", str(out), "--append"]
    assert main([*resume, "--resume"]) == 0
    captured = capsys.readouterr()
    rows = records(out)  # valid JSON Lines: the cut line was removed before appending
    assert sorted(row["source"] for row in rows) == names  # each input once
    runs = [row["run"] for row in rows]
    assert [row["source"] for row in rows if row["run"] == runs[-1]] == names[3:6]
    assert error_lines(captured.err)[0] == (
        f"convdet detect: resuming: 4 of 7 inputs already in {out}, 3 to go"
    )
    assert "removed an incomplete last line" in error_lines(captured.err)[1]
    assert captured.out.startswith("3 images processed; ")  # this run's work only
    assert "failed" not in captured.out and "retried" not in captured.out

    assert main([*resume, "--resume"]) == 0  # nothing left: nothing added
    assert len(records(out)) == 7
    assert f"resuming: 7 of 7 inputs already in {out}, 0 to go" in capsys.readouterr().err


def test_retry_failed_runs_the_failed_inputs_again(tmp_path, mnist, model, capsys):
    folder = write_pages(tmp_path / "pages", mnist, 3)
    (folder / "p03.png").write_bytes(b"")
    out = tmp_path / "out.jsonl"
    command = ["detect", str(folder), "--model", str(model), "--json", str(out)]
    assert main(command) == 1
    cv2.imwrite(str(folder / "p03.png"), digit_page(mnist, 3))  # fixed since
    capsys.readouterr()
    assert main([*command, "--append", "--resume", "--retry-failed"]) == 0
    captured = capsys.readouterr()
    assert error_lines(captured.err) == [
        f"convdet detect: resuming: 3 of 4 inputs already in {out}, 1 to go "
        "(1 of them failed before and are retried)"
    ]
    assert captured.out.startswith("1 image processed; 1 earlier failure retried; ")
    rows = records(out)
    assert [row["source"] for row in rows] == [
        str(folder / f"p{i:02d}.png") for i in (0, 1, 2, 3, 3)
    ]
    assert "error" in rows[3] and "error" not in rows[4]
    assert main([*command, "--append", "--resume", "--retry-failed"]) == 0  # now it succeeded
    assert capsys.readouterr().out.startswith("0 images processed; 0 earlier failures retried")
    assert len(records(out)) == 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--resume"], "--resume needs --json FILE --append"),
        (["--resume", "--json", "{out}"], "--resume needs --json FILE --append"),
        (["--resume", "--json", "-"], "--resume needs --json FILE --append"),
        (["--retry-failed", "--json", "{out}", "--append"], "--retry-failed needs --resume"),
        (
            ["--resume", "--json", "{out}", "--append", "--coco", "{tmp}/coco.json"],
            "--coco and --resume exclude each other",
        ),
        (
            ["--resume", "--json", "{out}", "--append", "--source", "{video}"],
            "--resume applies to image batches (images, folders, globs, lists), "
            "not to a video, camera or stream",
        ),
        (
            ["--resume", "--json", "{broken}", "--append"],
            "{broken} line 2 is not a convdet record with a source; "
            "--resume cannot tell which input it was",
        ),
    ],
)
def test_resume_errors_are_one_line_exit_2(tmp_path, mnist, model, capsys, options, message):
    page = tmp_path / "page.png"
    cv2.imwrite(str(page), digit_page(mnist, 6))
    write_video(tmp_path / "clip.avi", mnist, frames=2)
    (tmp_path / "out.jsonl").write_text('{"source": "kept.png", "frame": null}\n')
    (tmp_path / "broken.jsonl").write_text('{"source": "kept.png"}\n{"frame": 1}\n')
    paths = {
        "tmp": tmp_path,
        "out": tmp_path / "out.jsonl",
        "broken": tmp_path / "broken.jsonl",
        "video": tmp_path / "clip.avi",
    }
    options = [option.format(**paths) for option in options]
    source = str(page)
    if "--source" in options:
        at = options.index("--source")
        source = options.pop(at + 1)
        options.pop(at)
    before = {path: path.read_bytes() for path in tmp_path.iterdir()}
    assert main(["detect", source, *options, "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("convdet detect: error: ")
    assert message.format(**paths) in err
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == before  # nothing written


def test_sources_are_matched_as_written_even_for_names_that_are_not_utf8(
    tmp_path: Path, mnist, model, capsys
):
    folder = tmp_path / "pages"
    folder.mkdir()
    odd = folder / "bad\udcffname.png"
    cv2.imencode(".png", digit_page(mnist, 0))[1].tofile(str(odd))
    cv2.imwrite(str(folder / "plain.png"), digit_page(mnist, 1))
    out = tmp_path / "out.jsonl"
    assert main(["detect", str(odd), "--model", str(model), "--json", str(out)]) == 0
    command = ["detect", str(folder), "--model", str(model), "--json", str(out)]
    assert main([*command, "--append", "--resume"]) == 0
    assert [row["source"] for row in records(out)] == [str(odd), str(folder / "plain.png")]
    assert "1 of 2 inputs already in" in capsys.readouterr().err
