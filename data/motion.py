"""Synthetic video for temporal measurements: one digit moving across a still page, with
camera noise, so that most of every frame stays as it was and a small part changes."""

from __future__ import annotations

import numpy as np


def moving_digit_video(
    page: np.ndarray,
    digit: np.ndarray,
    frames: int,
    noise: float = 2.0,
    step: tuple[int, int] = (6, 2),
    seed: int = 0,
) -> list[np.ndarray]:
    """`frames` BGR uint8 frames of `page` (gray or BGR) with the 28x28 light-on-dark `digit`
    written on it, moved by `step` (dx, dy) px per frame from the upper left part (bouncing off
    the edges), plus Gaussian noise of `noise` codes (sigma, a fresh draw per frame). The
    digit is written in the page's polarity: dark on a light page, light on a dark one."""
    if page.ndim == 2:
        page = np.repeat(page[..., None], 3, axis=2)
    height, width = page.shape[:2]
    side = digit.shape[0]
    if height < side or width < side:
        raise ValueError(f"page: expected at least {side}x{side} px, got {width}x{height}")
    rng = np.random.default_rng(seed)
    ink = digit.astype(np.float32)[..., None] / 255.0
    dark_ink = page.mean() > 127
    x, y = width // 4, height // 4
    dx, dy = step
    video = []
    for _ in range(frames):
        frame = page.astype(np.float32)
        x, dx = _bounced(x, dx, width - side)
        y, dy = _bounced(y, dy, height - side)
        patch = frame[y : y + side, x : x + side]
        if dark_ink:
            patch *= 1.0 - 0.85 * ink
        else:
            np.maximum(patch, 255.0 * ink, out=patch)
        if noise > 0:
            frame += rng.normal(0.0, noise, frame.shape).astype(np.float32)
        video.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return video


def _bounced(position: int, velocity: int, limit: int) -> tuple[int, int]:
    """The next position in 0..limit and the velocity, reversed at an edge."""
    position += velocity
    if not 0 <= position <= limit:
        velocity = -velocity
        position = min(max(position, 0), limit)
    return position, velocity
