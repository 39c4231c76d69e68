"""Each injected fault kind ends where a user looks for it: a rejected row, an ignored file or an error."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from coilgen import ROW_FAULTS
from tests.support.etl import main

REASONS = {
    "bad-values": ("is not an integer", "its maximum", "its minimum", "categories", "missing value"),
    "short-rows": ("expected 86 fields, found", "expected 85 fields, found"),
    "wrong-columns": ("expected 86 fields, found", "expected 85 fields, found"),
    "garbage-bytes": ("is not an integer",),
}


def read_rejects(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("kind", ROW_FAULTS)
@pytest.mark.parametrize("layout", ["uci", "seed"])
def test_each_faulty_row_is_rejected_at_its_line_with_its_reason(dataset, tmp_path, layout, kind):
    """Given generated files where about 0.4% of rows carry one kind of fault
    When the ETL runs
    Then exactly those rows are in rejects.csv (file, line, reason, the row as read) and the rest are clean"""
    data = dataset(layout=layout, rows=5000, seed=3, faults=[kind], fault_rate=0.004)
    out = tmp_path / "out"
    assert main(["--input-dir", str(data.out_dir), "--output-dir", str(out)]) == 0
    rejects = read_rejects(out / "rejects.csv")
    expected = {(name, line) for name, f in data.files.items() for line in f.fault_lines.get(kind, [])}
    assert expected, "the generator injected nothing"
    assert {(r["source_file"], int(r["line"])) for r in rejects} == expected
    assert all(any(phrase in r["reason"] for phrase in REASONS[kind]) for r in rejects)
    lines = {
        name: (data.out_dir / name).read_bytes().split(b"\n")
        for name in data.files
        if name.endswith((".txt", ".csv"))
    }
    for r in rejects:  # the row as read (minus its line end)
        raw = lines[r["source_file"]][int(r["line"]) - 1]
        assert r["row"] == raw.decode("utf-8", "backslashreplace")
    full = (out / "full_data.csv").read_bytes().count(b"\n") - 1
    assert full == data.rows - len(expected)
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["rows_rejected"] == len(expected)
    assert report["totals"]["rows_written"] == full
    assert sum(report["totals"]["rejected_by_reason"].values()) == len(expected)


def test_an_empty_placeholder_file_is_ignored(dataset, tmp_path):
    """Given a folder with a zero-byte placeholder beside the data
    When the ETL runs
    Then it succeeds and the report lists the placeholder as ignored"""
    data = dataset(layout="seed", rows=300, seed=4, faults=["empty-file"])
    out = tmp_path / "out"
    assert main(["--input-dir", str(data.out_dir), "--output-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert {"path": "placeholder.csv", "reason": "zero-byte placeholder"} in report["ignored"]
    assert report["totals"]["rows_written"] == 300


def test_a_binary_file_fails_the_run_naming_the_file(dataset, tmp_path, run_etl):
    """Given a folder where one file named like data holds binary bytes
    When the ETL runs
    Then it exits non-zero with one line naming that file and saying what was expected"""
    data = dataset(layout="seed", rows=300, seed=4, faults=["binary-file"])
    result = run_etl(data.out_dir, tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("etl: error: blob.csv: binary content, not text; expected COIL 2000 rows")
    assert not (tmp_path / "out" / "full_data.csv").exists()
