"""The benchmark's test inputs: frames of digit scenes or of a given video at each size, the
test video they are written into, and one frame per style of the sparse and temporal table."""

from __future__ import annotations

import contextlib
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
from convdet.data.digits import load_mnist_npz
from convdet.data.scenes import STYLES, SceneParams, generate_scenes
from convdet.runtime.savers import VideoSaver
from convdet.runtime.sources import SourceError, VideoSource

VIDEO_FPS = 25.0  # frame rate written into the test videos and the pipelines' outputs

# Frame styles of the sparse and temporal table: the scene styles, MNIST digits sparsely placed
# ("few": at most FEW_DIGITS), a blank frame and one full of digits.
SPARSE_STYLES = (*STYLES, "few", "blank", "full")
FEW_DIGITS = 4


def scene_frames(data: Path, size: tuple[int, int], count: int) -> list[np.ndarray]:
    """`count` BGR frames of MNIST test digits placed by the scene generator at `size` (w, h)."""
    _, _, images, labels = load_mnist_npz(data)
    scenes = generate_scenes(images, labels, SceneParams("mnist", count, seed=7, size=size))
    return [cv2.cvtColor(scene.image, cv2.COLOR_GRAY2BGR) for scene in scenes]


def full_of_digits(images: np.ndarray, size: tuple[int, int], gap: int = 4) -> np.ndarray:
    """A BGR frame of `size` (w, h) tiled with MNIST digits (N, 28, 28) every 28 + `gap` px,
    light on dark: ink in every cell's field, where sparse inference can skip nothing."""
    width, height = size
    side = images.shape[1] + gap
    frame = np.zeros((height, width), np.uint8)
    index = 0
    for top in range(0, height - side + gap + 1, side):
        for left in range(0, width - side + gap + 1, side):
            digit = images[index % len(images)]
            frame[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
            index += 1
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def style_frame(
    images: np.ndarray, labels: np.ndarray, style: str, size: tuple[int, int]
) -> np.ndarray:
    """One frame of `style` (SPARSE_STYLES) at `size` (w, h): a generated scene, a few MNIST
    digits, a blank frame or a full one."""
    if style == "few":
        params = SceneParams("mnist", 1, seed=7, size=size, max_digits=FEW_DIGITS)
        return next(generate_scenes(images, labels, params)).image
    if style == "blank":
        return np.zeros((size[1], size[0], 3), np.uint8)
    if style == "full":
        return full_of_digits(images, size)
    return next(generate_scenes(images, labels, SceneParams(style, 1, seed=7, size=size))).image


def video_frames(video: Path, size: tuple[int, int], count: int) -> list[np.ndarray]:
    """Up to `count` frames of `video` (read by the runtime's VideoSource, up to its end or the
    first unreadable frame), resized to `size` (w, h); ValueError if it has none."""
    frames = []
    with contextlib.suppress(SourceError), VideoSource(video) as source:
        for frame in islice(source, count):
            if frame.error is not None:
                break
            frames.append(cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA))
    if not frames:
        raise ValueError(f"{video}: no frames could be read")
    return frames


def write_video(frames: list[np.ndarray], path: Path) -> Path:
    """Write BGR frames as an MJPG .avi at VIDEO_FPS with the runtime's VideoSaver and return
    its path; OSError if a frame cannot be written."""
    errors: list[str] = []
    with VideoSaver(path, fps=VIDEO_FPS, on_error=lambda what, why: errors.append(why)) as saver:
        for frame in frames:
            saver.write(frame)
    if errors:
        raise OSError(errors[0])
    return saver.path
