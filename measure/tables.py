"""Text tables for the terminal: rows of cells in columns padded to their widest cell."""

from __future__ import annotations

from collections.abc import Container, Sequence


def text_table(rows: Sequence[Sequence[str]], right: Container[int] = ()) -> list[str]:
    """The lines of `rows` (the first may be the header), two spaces between columns, each
    padded to its widest cell: right-aligned for the column numbers in `right`, else
    left-aligned. A row with fewer cells fills only the first columns."""
    columns = max(len(row) for row in rows)
    widths = [max(len(row[k]) for row in rows if len(row) > k) for k in range(columns)]
    return [
        "  ".join(
            cell.rjust(width) if k in right else cell.ljust(width)
            for k, (cell, width) in enumerate(zip(row, widths, strict=False))
        ).rstrip()
        for row in rows
    ]
