"""Tables that fit a terminal by shortening the middle of long values.

Hand-written because the table libraries at hand (rich, tabulate) cut or wrap the *end* of a cell, and the
end of an S3 URI or an error is the part worth keeping: ``s3://bucket/raw/…/Caravan.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence

COMMAND = ".venv/bin/s3sm"  # where the project's install puts s3sm: every command printed names it
ELLIPSIS = "…"
GAP = "  "
MIN_WIDTH = 8


def shorten(text: str, width: int, *, keep_start: bool = False) -> str:
    """``text`` in at most ``width`` characters: its start and end kept, the middle replaced by ``…``.

    The end gets two thirds (the file name of a key), or the start with ``keep_start`` (what an error
    message says first)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    short = (width - 1) // 3
    head, tail = (width - 1 - short, short) if keep_start else (short, width - 1 - short)
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, width: int, shrink: Sequence[int]
) -> list[str]:
    """Lines of a table at most ``width`` wide; the columns at indexes ``shrink`` give up characters
    (the widest first, never below MIN_WIDTH), shortened in the middle."""
    cells = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def total() -> int:
        return sum(widths) + len(GAP) * (len(widths) - 1)

    while total() > width:
        candidates = [i for i in shrink if widths[i] > MIN_WIDTH]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    lines = []
    for index, row in enumerate(cells):
        text = GAP.join(shorten(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        lines.append(text)
        if index == 0:
            lines.append(GAP.join("-" * w for w in widths))
    return lines


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min``, ``2.5 h``, ``3.0 d``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


__all__ = ["duration", "shorten", "table"]
