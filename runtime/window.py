"""The `--show` window: whether one can be shown here, its size on the screen, and the window
itself (images held until a key, q/Esc or closing it ends showing)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
import time

import cv2
import numpy as np


def display_unavailable() -> str | None:
    """Why a window cannot be shown here, or None.

    Linux without DISPLAY/WAYLAND_DISPLAY is refused at once. Otherwise a child process opens
    a window first: OpenCV's Qt backend aborts the whole process (no exception) when DISPLAY
    names an X server it cannot reach, and that must not end a run.
    """
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not display:
        return "no display (DISPLAY is not set)"
    probe = subprocess.run(
        [sys.executable, "-c", "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode == 0:
        return None
    detail = next(
        (
            line
            for line in probe.stderr.splitlines()
            if line.strip() and not line.startswith(("Traceback", " "))
        ),
        "",
    )
    return f"cannot open a window on display {display}" + (f" ({detail})" if detail else "")


def screen_size() -> tuple[int, int] | None:
    """Width and height of the screen a window opens on (X11 or Windows), None if unknown."""
    if sys.platform == "win32":
        metrics = ctypes.windll.user32.GetSystemMetrics  # type: ignore[attr-defined]
        return metrics(0), metrics(1)
    library = ctypes.util.find_library("X11")
    if library is None or not os.environ.get("DISPLAY"):
        return None
    xlib = ctypes.CDLL(library)
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    for name in ("XDefaultScreen", "XCloseDisplay"):
        getattr(xlib, name).argtypes = [ctypes.c_void_p]
    for name in ("XDisplayWidth", "XDisplayHeight"):
        getattr(xlib, name).argtypes = [ctypes.c_void_p, ctypes.c_int]
    display = xlib.XOpenDisplay(None)
    if not display:
        return None
    try:
        screen = xlib.XDefaultScreen(display)
        return xlib.XDisplayWidth(display, screen), xlib.XDisplayHeight(display, screen)
    finally:
        xlib.XCloseDisplay(display)


def fit_window(
    size: tuple[int, int], screen: tuple[int, int] | None, share: float = 0.9
) -> tuple[int, int]:
    """The window size for an image of `size` (width, height): its own, or scaled down with
    its aspect kept to fit `share` of the screen (leaving room for title bar and panels)."""
    if screen is None:
        return size
    scale = min(1.0, share * screen[0] / size[0], share * screen[1] / size[1])
    return max(round(size[0] * scale), 1), max(round(size[1] * scale), 1)


QUIT_KEYS = (ord("q"), 27)  # q, Esc


class Window:
    """An OpenCV window for `--show`; the only place window functions are called.

    Opening raises OSError saying why when no window can be shown (no display, a display that
    cannot be reached, or an OpenCV without GUI support such as opencv-python-headless). The
    window opens with the first image and takes each image's size, fitted to the screen.
    Closing it (title-bar X, Alt+F4) ends showing like q or Esc: OpenCV's Qt backend raises
    on a window the user closed, which here means "closed".
    """

    def __init__(self, title: str = "convdet") -> None:
        self.title = title
        self._size: tuple[int, int] | None = None
        self._screen: tuple[int, int] | None = None

    def __enter__(self) -> Window:
        reason = display_unavailable()
        if reason:
            raise OSError(reason)
        self._screen = screen_size()
        return self

    def show(self, image: np.ndarray, hold: float = 0.0) -> bool:
        """Display `image`, keeping it up to `hold` seconds (math.inf: no limit) until a key
        is pressed; False once the user pressed q or Esc or closed the window."""
        size = (image.shape[1], image.shape[0])
        if self._size is None:  # opened with the first image, so it appears at its size
            cv2.namedWindow(
                self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
            )
        if size != self._size:
            cv2.resizeWindow(self.title, *fit_window(size, self._screen))
            self._size = size
        cv2.imshow(self.title, image)
        deadline = time.monotonic() + hold
        while True:
            key = cv2.waitKey(1 if hold <= 0 else 50)
            if (key & 0xFF) in QUIT_KEYS or self._gone():
                return False
            if key != -1 or time.monotonic() >= deadline:
                return True

    def _gone(self) -> bool:
        """Whether the user closed the window (Qt raises once its last window is gone)."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def __exit__(self, *exc: object) -> None:
        if self._size is not None and not self._gone():
            cv2.destroyWindow(self.title)
