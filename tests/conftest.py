"""Shared fixtures: the MNIST subset, the shipped models, and the no-skips rule for CI.

Set CONVDET_REQUIRE_EXTRAS=1 (as .ci/run does) to turn every skipped test into a failure:
a test that needs TensorFlow or LiteRT must run in CI, while users without the extra may skip.
Tests marked `needs_root` (they mount a filesystem) are the exception: they skip without root;
so are tests marked `needs_display`, which skip without Xvfb and a window manager.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist-subset.npz"


def mnist_path() -> Path:
    """The MNIST npz used by tests: $CONVDET_MNIST, else ../shared/data/mnist-subset.npz."""
    return Path(os.environ.get("CONVDET_MNIST", DEFAULT_MNIST))


@pytest.fixture(scope="session")
def mnist_npz() -> Path:
    path = mnist_path()
    if not path.is_file():
        pytest.skip(f"MNIST data not found at {path} (set CONVDET_MNIST)")
    return path


@pytest.fixture(scope="session")
def mnist(mnist_npz: Path) -> dict[str, np.ndarray]:
    with np.load(mnist_npz) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS


@pytest.fixture(scope="session")
def model(models_dir: Path) -> Path:
    """The smallest shipped detector (basic.onnx): fast enough for CLI and runtime tests."""
    path = models_dir / "basic.onnx"
    if not path.is_file():
        pytest.skip(f"no shipped model at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_run(mnist_npz: Path, tmp_path_factory: pytest.TempPathFactory):
    """A basic detector trained briefly (400 digits, 48 scenes; its classifier cell on padded
    windows, so it exports with explicit pads), saved as a `convdet train` run."""
    pytest.importorskip("tensorflow")
    from convdet.export.data import load_mnist
    from convdet.export.finetune import FinetuneConfig
    from convdet.export.train import TrainConfig, save_run, train

    data = load_mnist(mnist_npz)
    scenes = FinetuneConfig(epochs=1, scenes_per_epoch=48, padded_windows=True)
    config = TrainConfig(arch="basic", epochs=2, limit=400, batch_size=64, scenes=scenes)
    result = train(data, config)
    run_dir = tmp_path_factory.mktemp("run")
    save_run(result, config, data, run_dir)
    return data, config, result, run_dir


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (a disk that fills up), unmounted afterwards; for `needs_root` tests."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 64 KiB tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """SIGINT raising KeyboardInterrupt in the test process, and at its default in the processes
    the test starts (exec resets a caught signal), for tests of what Ctrl-C does. A suite run as
    a background job of a shell without job control (`pytest &` in a script, CI under nohup)
    inherits SIGINT ignored, and convdet rightly leaves an ignored SIGINT ignored: without this,
    such a test sends a Ctrl-C that nothing receives and the run ends as if never stopped."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not {"needs_root", "needs_display"} & set(report.keywords):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CONVDET_REQUIRE_EXTRAS") == "1" and _skipped:
        print(f"\nCONVDET_REQUIRE_EXTRAS=1 but {len(_skipped)} test(s) were skipped:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
