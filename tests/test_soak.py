"""Soak: a `convdet detect` run over a looped video keeps its resident memory flat, and the
soak tool's growth figure ignores warm-up and noise. The long version is
`python -m convdet.measure.soak` (README, "Deployment")."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from convdet.measure.soak import Sample, SoakReport, soak

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def report(rss: list[float]) -> SoakReport:
    samples = [Sample(float(index), 10 * index, value) for index, value in enumerate(rss)]
    return SoakReport(samples, peak_mib=max(rss), records=10 * len(rss), exit_status=0)


@pytest.mark.parametrize(
    ("rss", "growth"),
    [
        ([10, 40, 50, 55, *[60] * 12], 0.0),  # warm-up, then flat
        ([10, 40, 50, 55, 60, 60, 70, *[60] * 6, 75, 60, 60], 0.0),  # and single spikes
        ([10, 40, 50, 55, *range(60, 72)], 9.0),  # a steady leak
    ],
)
def test_growth_ignores_warm_up_and_single_samples(rss, growth) -> None:
    assert report(rss).growth_mib() == pytest.approx(growth)


def test_growth_needs_samples_after_warm_up() -> None:
    with pytest.raises(ValueError, match="at least 2 samples after warm-up, got 1"):
        report([10.0]).growth_mib()


def test_rss_is_flat_over_a_looped_video(tmp_path, mnist, models_dir) -> None:
    """600 frames (a 20-frame 160x120 video played 30 times) through the CLI with annotated
    frames saved every 50 frames: RSS after warm-up grows by less than 3 MiB."""
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for index in range(20):
        page = np.zeros((120, 160), np.uint8)
        page[40:68, 6 * index : 6 * index + 28] = mnist["x_test"][index]
        writer.write(cv2.cvtColor(page, cv2.COLOR_GRAY2BGR))
    writer.release()
    options = ["--model", str(models_dir / "basic_int8.tflite")]
    options += ["--save", str(tmp_path / "saved"), "--save-interval", "50"]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        result = soak(video, loops=30, every=20, detect_options=options, stderr=stderr)
    assert result.exit_status == 0, (tmp_path / "stderr.txt").read_text()
    assert result.records == 600 and len(result.samples) >= 25
    assert len(list((tmp_path / "saved").rglob("*.jpg"))) == 12
    assert result.growth_mib() < 3.0, [sample.rss_mib for sample in result.samples]


class FakeDetect:
    """A stand-in for the `convdet detect` child: its stdout is the given lines."""

    def __init__(self, lines: list[str]) -> None:
        self.stdout, self.pid, self.returncode = iter(lines), 0, 0

    def __enter__(self) -> FakeDetect:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def kill(self) -> None:
        self.returncode = -9


def test_failed_frames_count_as_records_and_other_lines_stop_the_soak(monkeypatch) -> None:
    lines = ['{"source": "a", "detections": []}\n', '{"source": "a", "error": "bad"}\n']
    monkeypatch.setattr("convdet.measure.soak.subprocess.Popen", lambda *a, **k: FakeDetect(lines))
    assert soak("clip.mp4", 1, 1000).records == 2
    lines.append('{"source": "a"}\n')
    with pytest.raises(ValueError, match="line 3 is not a detection record"):
        soak("clip.mp4", 1, 1000)
