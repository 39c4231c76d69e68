"""docs/etl.md's "Your own data in three steps" runs as printed, on a CSV that is not COIL 2000."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "etl.md"


def walkthrough() -> tuple[str, str]:
    """(the shell block of the walkthrough, the rejects.csv the page says it writes)."""
    page = DOCS.read_text(encoding="utf-8")
    section = page.split("## Your own data in three steps", 1)[1].split("\n## ")[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, flags=re.DOTALL)
    return next(b for lang, b in blocks if lang == "bash"), next(b for lang, b in blocks if not lang)


def test_the_walkthrough_runs_as_printed_and_writes_what_the_page_shows(tmp_path):
    """Given the walkthrough's commands, copied from the page, in an empty folder beside the checkout's .venv
    When they run in bash
    Then they succeed, and rejects.csv is the one the page shows, line for line"""
    script, shown = walkthrough()
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    rejects = (tmp_path / "mydata" / "clean" / "rejects.csv").read_text(encoding="utf-8")
    assert rejects == shown
    clean = (tmp_path / "mydata" / "clean" / "full_data.csv").read_text(encoding="utf-8").splitlines()
    assert clean[0] == "customer_id,name,balance,joined,churned,plan"
    assert clean[1] == '1,"Ann Lee",34.5,2023-01-15,false,"basic"'
    assert len(clean) == 1 + 9
