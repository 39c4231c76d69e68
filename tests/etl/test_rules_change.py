"""Editing the rules module changes what every layout writes, and nothing else has to change.

The worked example of docs/etl.md ("Change the cleaning rules"), run on a copy of the package: decode
one more column (MGEMLEEF, average age, through code table L1) and narrow one domain (MAANTHUI, number
of houses, from 1-10 to 1-5).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contract.artifact import bundle
from etl.rules import CLEAN_NAMES, code_table
from tests.etl.conftest import ETL_PACKAGE

AGE, HOUSES = CLEAN_NAMES.index("zip_agg_avg_age"), CLEAN_NAMES.index("zip_agg_number_of_houses")
EDITS = (
    ('DECODED = ("MOSTYPE", "MOSHOOFD")', 'DECODED = ("MOSTYPE", "MGEMLEEF", "MOSHOOFD")'),
    ("MAANTHUI zip_agg_number_of_houses 1-10\n", "MAANTHUI zip_agg_number_of_houses 1-5\n"),
)


@pytest.fixture(scope="module")
def edited_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ETL bundle built from a copy of the package whose rules.py carries the two edits."""
    copy = tmp_path_factory.mktemp("edited") / "etl"
    shutil.copytree(ETL_PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    text = (copy / "rules.py").read_text(encoding="utf-8")
    for old, new in EDITS:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (copy / "rules.py").write_text(text, encoding="utf-8")
    path = copy.parent / "etl.pyz"
    path.write_bytes(bundle(copy))
    return path


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.mark.parametrize("layout", ["uci", "seed", "named"])
def test_one_more_decoded_column_and_a_narrower_domain_apply_to_every_layout(
    layout, dataset, tmp_path, run_etl, edited_bundle
):
    """Given a layout's files, and the rules edited to decode MGEMLEEF and narrow MAANTHUI to 1-5
    When the ETL runs with the shipped rules and with the edited ones
    Then the edited run writes the same rows minus those with more than 5 houses, its average age as
    the L1 labels, and rejects exactly the removed rows, each at its line with the narrowed domain"""
    data = dataset(layout=layout, rows=1200, seed=41)
    assert run_etl(data.out_dir, tmp_path / "shipped").returncode == 0
    cmd = [
        sys.executable,
        str(edited_bundle),
        "--input-dir",
        str(data.out_dir),
        "--output-dir",
        str(tmp_path / "edited"),
    ]
    result = subprocess.run([*cmd, "--max-reject-fraction", "1"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    shipped, edited = (
        rows(tmp_path / "shipped" / "full_data.csv"),
        rows(tmp_path / "edited" / "full_data.csv"),
    )
    assert edited[0] == shipped[0] == list(CLEAN_NAMES)
    ages = code_table("L1")[1]
    kept = [r for r in shipped[1:] if int(r[HOUSES]) <= 5]
    expected = [[*r[:AGE], ages[int(r[AGE]) - 1], *r[AGE + 1 :]] for r in kept]
    assert edited[1:] == expected
    assert 0 < len(kept) < len(shipped) - 1
    rejects = rows(tmp_path / "edited" / "rejects.csv")[1:]
    assert len(rejects) == len(shipped) - 1 - len(kept)
    assert rows(tmp_path / "shipped" / "rejects.csv")[1:] == []
    for source, line, reason, raw in rejects:
        houses = raw.split("\t" if layout == "uci" else ",")[HOUSES]
        assert reason == f"MAANTHUI (column 2): {houses} is outside its domain 1-5"
        physical = (data.out_dir / source).read_text(encoding="utf-8").split("\n")[int(line) - 1]
        assert physical == raw
