"""convdet: a convolutionalized digit detector, from training to the board.

    from convdet import Detector, GridAnnotator
    detector = Detector()                      # the shipped default model
    result = detector(frame)                   # any frame OpenCV gives
    texts = [line.text for line in result.lines]   # the digit strings, in reading order

Subpackages, in the order data flows: `convdet.data` (digits, scenes, ground truth),
`convdet.export` (training and export; the `train` extra), `convdet.models` (the shipped
files), `convdet.runtime` (what a board runs), `convdet.measure` (evaluation, benchmarks),
`convdet.cli` (the command line). The front-door names below load `convdet.runtime` only when
first used, so `import convdet` (and `convdet --help`) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convdet import runtime as _runtime
from convdet.runtime import __all__

if TYPE_CHECKING:
    from convdet.runtime import *  # noqa: F403


def __getattr__(name: str) -> Any:
    """The front-door names, from `convdet.runtime` on first use (PEP 562)."""
    if name in __all__:
        return getattr(_runtime, name)
    raise AttributeError(f"module 'convdet' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The package's own names and the front-door names."""
    return sorted({*globals(), *__all__})
