"""docs/operations.md shows the CLI's --help as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.cli import help_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_the_operations_page_shows_the_current_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert help_text() in DOC.read_text(encoding="utf-8"), (
        "docs/operations.md shows an old `s3sm --help`: regenerate it with "
        '`COLUMNS=100 .venv/bin/python -c "from ops.cli import help_text; print(help_text())"`'
    )
