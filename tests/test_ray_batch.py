"""`convdet detect --engine ray` on a local Ray cluster started here (2 CPUs, loopback, no
dashboard, no usage statistics) and shut down after: the records `convdet detect --json`
writes for 200 images with bad ones among them, from a folder and as file:// URIs; every
image exactly once when an actor is killed mid-run and when a killed run is resumed; the
output layout's pieces; and one line, exit 2, without the `convdet[ray]` extra.

Uses the shipped basic model; nothing leaves this machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest
from test_detect_cli import error_lines, unstamped
from test_sources import digit_page, write_mixed_folder

from convdet.cli import main

PAGES = 190  # with the 10 files of the mixed folder, 200 inputs
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for the module's runs: its GCS address, for a second driver."""
    ray = pytest.importorskip("ray")
    saved = {name: os.environ.get(name) for name in QUIET}
    os.environ.update(QUIET)
    ray.init(
        address="local",  # a cluster of its own, whatever else runs on this machine
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level="warning",
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def batch(tmp_path_factory, mnist, model, cluster):
    """200 inputs (5 of them bad files) and the JSON Lines `convdet detect` writes for them."""
    folder = write_mixed_folder(tmp_path_factory.mktemp("batch"), mnist)
    for index in range(PAGES):  # pages of 640x480: about 20 ms each, a run of a few seconds
        cv2.imwrite(str(folder / f"page{index:03d}.png"), digit_page(mnist, index, (480, 640)))
    reference = folder.parent / "reference.jsonl"
    assert detect(folder, model, reference) == 1  # the bad files fail
    return folder, reference.read_text()


def detect(folder: Path, model: Path, out: Path, *options: str) -> int:
    """`convdet detect FOLDER --recursive` with `model`, its records in `out`."""
    return main(
        ["detect", str(folder), "--recursive", "--model", str(model), "--json", str(out), *options]
    )


def by_source(text: str) -> list[dict]:
    """The records of JSON Lines `text` without run ids, sorted by source."""
    return sorted(unstamped(text), key=lambda record: record["source"])


def test_records_are_the_local_engines_in_input_order(batch, model, tmp_path, capsys):
    folder, reference = batch
    capsys.readouterr()
    out = tmp_path / "ray.jsonl"
    assert detect(folder, model, out, "--engine", "ray", "--batch-size", "16") == 1
    captured = capsys.readouterr()
    assert unstamped(out.read_text()) == unstamped(reference)
    assert len({json.loads(line)["run"] for line in out.read_text().splitlines()}) == 1
    assert not (tmp_path / "ray.jsonl.parts").exists()
    failures = [line for line in error_lines(captured.err) if f"{folder}/" in line]
    assert len(failures) == 5 and "Traceback" not in captured.err  # one line each
    assert f"{PAGES + 5} images processed; 5 failed;" in captured.out


def test_object_store_uris_give_the_same_records(batch, model, tmp_path):
    folder, reference = batch
    out = tmp_path / "uris.jsonl"
    uri = f"file://{folder}"
    assert detect(uri, model, out, "--engine", "ray") == 1
    records = unstamped(out.read_text())
    for record in records:
        assert record["source"].startswith(uri)
        record["source"] = record["source"].removeprefix("file://")
    assert records == unstamped(reference)


def map_workers() -> list[int]:
    """The process ids of this cluster's Ray Data actors (processes below this one)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and title.startswith(b"ray::MapWorker") and below_us(entry.name):
            found.append(int(entry.name))
    return found


def below_us(pid: str) -> bool:
    """Whether process `pid` descends from this test process."""
    while pid not in ("0", "1"):
        try:
            status = (Path("/proc") / pid / "status").read_text()
        except OSError:
            return False
        pid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        if pid == str(os.getpid()):
            return True
    return False


def first_part(parts: Path, timeout: float = 120.0) -> None:
    """Wait until the run has written its first part file into `parts`."""
    deadline = time.monotonic() + timeout
    while not (parts.is_dir() and any(parts.glob("*.jsonl"))):
        assert time.monotonic() < deadline, "no part file was written"
        time.sleep(0.02)


def test_an_actor_killed_mid_run_is_restarted_and_every_image_is_there_once(
    batch, model, tmp_path, capsys
):
    folder, reference = batch
    out = tmp_path / "killed.jsonl"
    statuses = []
    run = threading.Thread(
        target=lambda: statuses.append(
            detect(folder, model, out, "--engine", "ray", "--actors", "1", "--batch-size", "8")
        )
    )
    run.start()
    try:
        first_part(tmp_path / "killed.jsonl.parts")
        victims = map_workers()  # this run's actor (and an earlier run's, if still closing)
        assert victims
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        written = len(list((tmp_path / "killed.jsonl.parts").glob("*.jsonl")))
        assert written < 25, "the run ended before the actor was killed"  # 200 / 8 parts
    finally:
        run.join(timeout=300)
    assert statuses == [1]
    assert unstamped(out.read_text()) == unstamped(reference)
    assert f"{PAGES + 5} images processed; 5 failed;" in capsys.readouterr().out


def test_resume_after_a_killed_run_processes_only_the_missing_images(
    batch, model, tmp_path, cluster, capsys
):
    folder, reference = batch
    out = tmp_path / "resumed.jsonl"
    parts = tmp_path / "resumed.jsonl.parts"
    command = [sys.executable, "-m", "convdet", "detect", str(folder), "--recursive"]
    command += ["--model", str(model), "--json", str(out), "--engine", "ray"]
    command += ["--address", cluster, "--actors", "1", "--batch-size", "8"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first_part(parts)
    finally:
        driver.kill()
        driver.wait()
    done = [line for part in sorted(parts.glob("*.jsonl")) for line in part.open()]
    assert 0 < len(done) < 200 and out.read_text() == ""
    capsys.readouterr()
    assert detect(folder, model, out, "--engine", "ray", "--resume", "--append") == 1
    captured = capsys.readouterr()
    assert f"resuming: {len(done)} of 200 inputs already in {out}, {200 - len(done)} to go" in (
        captured.err
    )
    failed_before = sum("error" in record for record in unstamped("".join(done)))
    processed = 200 - len(done) - (5 - failed_before)
    assert captured.out.splitlines()[-1].startswith(f"{processed} images processed")
    assert by_source(out.read_text()) == by_source(reference)  # each image exactly once
    assert out.read_text().startswith("".join(done)) and not parts.exists()


def test_parts_left_without_resume_and_a_video_are_refused(batch, model, tmp_path, capsys):
    folder, _reference = batch
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.parts").mkdir()
    (tmp_path / "out.jsonl.parts" / "0000000000-0000000007.jsonl").write_text("")
    assert detect(folder, model, out, "--engine", "ray") == 2
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert main(["detect", str(video), "--engine", "ray", "--json", str(out)]) == 2
    assert main(["detect", str(folder), "--engine", "ray"]) == 2
    assert main(["detect", str(folder), "--address", "auto", "--json", str(out)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert [line.split(": error: ")[1].split()[:3] for line in lines] == [
        [str(out) + ".parts", "holds", "the"],
        ["--engine", "ray", "runs"],
        ["--engine", "ray", "needs"],
        ["--address,", "--actors", "and"],
    ]


def test_an_assembled_file_is_recognised_after_a_kill_before_the_cleanup(tmp_path):
    from convdet.batch.parts import assemble, part_path, parts, settle, write_part

    out, folder = tmp_path / "out.jsonl", tmp_path / "out.jsonl.parts"
    out.write_text('{"source": "a"}\n')
    write_part(part_path(folder, 3, 4), [{"source": "d"}, {"source": "e"}])
    write_part(part_path(folder, 1, 2), [{"source": "b"}, {"source": "c"}])
    (folder / ".0000000005-0000000005.jsonl.77.tmp").write_text('{"source": "f"')
    assert [part.first for part in parts(folder)] == [1, 3]  # in input order, whole ones
    assert not settle(out, folder)  # nothing assembled yet: the parts stay
    assert assemble(out, folder) == 2 and not folder.exists()
    assert [json.loads(line)["source"] for line in out.open()] == list("abcde")
    write_part(part_path(folder, 1, 2), [{"source": "b"}, {"source": "c"}])
    (folder / "assembled-size").write_text(str(out.stat().st_size))  # killed before cleanup
    assert settle(out, folder) and not folder.exists()


def test_without_the_extra_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    status = main(["detect", str(tmp_path), "--engine", "ray", "--json", str(tmp_path / "o")])
    assert status == 2
    assert capsys.readouterr().err.splitlines() == [
        "convdet detect: error: --engine ray needs ray, which is not installed: "
        "pip install 'convdet[ray]'"
    ]
