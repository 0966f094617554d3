"""README's Python examples run as written, one after the other, from a folder outside the
repository (what a user pasting them into a session does)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    """The README's ```python code blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.M | re.S)


def test_readme_python_examples_run_from_any_folder(tmp_path: Path) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 3  # the example, a subset drawn, supervision
    script = "\n".join(blocks)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "annotated.png").stat().st_size > 0
    assert re.search(r"^\d \d\.\d+ \[", done.stdout, flags=re.M)  # a detection printed
