"""Tables that fit the terminal: keys and URIs shortened in the middle, failure reasons wrapped whole.

Hand-written because the table libraries at hand (rich, tabulate) cut or wrap the *end* of a cell, and the
end of an S3 URI is the part worth keeping: ``s3://bucket/raw/…/Caravan.csv``. A failure reason is never
shortened: what matters may be anywhere in it (``binary content … exit code: 1``), so it wraps
(``textwrap``) onto as many lines as it needs.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence

COMMAND = ".venv/bin/s3sm"  # where the project's install puts s3sm: every command printed names it
ELLIPSIS = "…"
GAP = "  "
MIN_WIDTH = 8
NOT_A_TERMINAL_WIDTH = 100


def terminal_width() -> int:
    """The terminal's width in columns (``COLUMNS`` when set), 100 when stdout is not a terminal."""
    return shutil.get_terminal_size((NOT_A_TERMINAL_WIDTH, 24)).columns


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: its start and end kept, the middle replaced by ``…``;
    the end gets two thirds (the file name of a key). For keys and URIs, never for a failure reason
    (:func:`wrap`)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    short = (width - 1) // 3
    return text[:short] + ELLIPSIS + text[-(width - 1 - short) :]


def wrap(text: str, width: int, *, indent: str = "") -> list[str]:
    """``text`` (its whitespace runs made single spaces) on lines of at most ``width`` characters,
    every character kept; the first line keeps ``text``'s leading spaces, the others start with
    ``indent``."""
    lead = text[: len(text) - len(text.lstrip())]
    lines = textwrap.wrap(
        " ".join(text.split()),
        max(width, len(indent) + MIN_WIDTH, len(lead) + MIN_WIDTH),
        initial_indent=lead,
        subsequent_indent=indent,
        break_on_hyphens=False,
    )
    return lines or [""]


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    shrink: Sequence[int] = (),
    wrap_columns: Sequence[int] = (),
) -> list[str]:
    """Lines of a table at most ``width`` wide (default: the terminal's, :func:`terminal_width`).

    The columns at indexes ``shrink`` and ``wrap_columns`` give up characters when it is too wide (the
    widest first, never below MIN_WIDTH): a ``shrink`` column's values are shortened in the middle, a
    ``wrap_columns`` column's (a failure reason) wrap onto more lines of the row, whole."""
    limit = terminal_width() if width is None else width
    cells = [[str(c) for c in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    givers = [*shrink, *wrap_columns]

    def total() -> int:
        return sum(widths) + len(GAP) * (len(widths) - 1)

    while total() > limit:
        candidates = [i for i in givers if widths[i] > MIN_WIDTH]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    lines = []
    for index, row in enumerate(cells):
        parts = [
            wrap(c, w) if i in wrap_columns and index else [shorten(c, w)]
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        for depth in range(max(len(p) for p in parts)):
            texts = [p[depth] if depth < len(p) else "" for p in parts]
            lines.append(GAP.join(t.ljust(w) for t, w in zip(texts, widths, strict=True)).rstrip())
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


__all__ = ["COMMAND", "duration", "shorten", "table", "terminal_width", "wrap"]
