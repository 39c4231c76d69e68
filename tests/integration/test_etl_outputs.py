"""The outputs: written atomically, the reject threshold enforced, a useful report and progress log."""

from __future__ import annotations

import csv
import json
import shutil

from tests.support.etl import main


def test_too_many_rejects_fail_the_run_saying_how_many_and_why(dataset, tmp_path, run_etl):
    """Given files where about 3% of rows have bad values (the default maximum is 1%)
    When the ETL runs
    Then it exits non-zero saying how many rows failed and why, leaves no full_data.csv,
    and still writes rejects.csv and a report saying it failed"""
    data = dataset(layout="uci", rows=4000, seed=9, faults=["bad-values", "short-rows"], fault_rate=0.03)
    out = tmp_path / "out"
    result = run_etl(data.out_dir, out)
    assert result.returncode == 1
    n = data.faulty_rows
    assert result.stderr.startswith(
        f"etl: error: {n} of 4000 rows ({100 * n / 4000:.2f}%) failed validation, "
        "above --max-reject-fraction 0.01 (the pipeline parameter MaxRejectFraction): "
    )
    assert "wrong number of fields" in result.stderr
    assert result.stderr.rstrip().endswith("see rejects.csv")
    assert sorted(p.name for p in out.iterdir()) == ["rejects.csv", "report.json"]
    with open(out / "rejects.csv", encoding="utf-8", newline="") as f:
        assert len(list(csv.DictReader(f))) == n
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed"
    assert report["error"] == result.stderr.removeprefix("etl: error: ").rstrip("\n")
    assert report["totals"]["rows_rejected"] == n


def test_a_higher_maximum_lets_the_same_data_through(dataset, tmp_path, run_etl):
    """Given the same 3%-faulty files
    When the ETL runs with --max-reject-fraction 0.05
    Then it succeeds and writes the valid rows"""
    data = dataset(layout="uci", rows=4000, seed=9, faults=["bad-values", "short-rows"], fault_rate=0.03)
    result = run_etl(data.out_dir, tmp_path / "out", "--max-reject-fraction", "0.05")
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "out" / "full_data.csv").read_bytes().count(b"\n") - 1
    assert written == 4000 - data.faulty_rows


def test_a_run_failing_midway_leaves_no_clean_file_and_no_partial_file(dataset, tmp_path, run_etl):
    """Given an output folder holding an older full_data.csv, and input whose targets file runs out
    after the labelled rows have been written
    When the ETL runs
    Then it fails, and the folder holds neither a full_data.csv (old or partial) nor any temporary file"""
    data = dataset(layout="seed", rows=3000, seed=1)
    inp = tmp_path / "in"
    shutil.copytree(data.out_dir, inp)
    gt = (inp / "gt.csv").read_bytes().split(b"\n")
    (inp / "gt.csv").write_bytes(b"\n".join(gt[:-20]) + b"\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "full_data.csv").write_text("stale\n")
    result = run_etl(inp, out)
    assert result.returncode == 1
    assert "test.csv has" in result.stderr
    assert "its targets file gt.csv has only" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


def test_report_counts_every_file_and_the_totals(dataset, tmp_path):
    """Given the UCI files with some bad rows
    When the ETL runs
    Then report.json gives per file rows read/written/rejected by reason and durations, and the totals"""
    data = dataset(layout="uci", rows=2000, seed=12, faults=["bad-values"], fault_rate=0.005)
    out = tmp_path / "out"
    assert main(["--input-dir", str(data.out_dir), "--output-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "succeeded"
    files = {f["path"]: f for f in report["files"]}
    assert set(files) == {"dictionary.txt", "ticdata2000.txt", "ticeval2000.txt", "tictgts2000.txt"}
    assert files["ticeval2000.txt"]["paired_with"] == "tictgts2000.txt"
    for name in ("ticdata2000.txt", "ticeval2000.txt"):
        f = files[name]
        assert f["rows_read"] == data.files[name].rows
        assert f["rows_rejected"] == data.files[name].faulty_rows
        assert f["rows_written"] == f["rows_read"] - f["rows_rejected"]
        assert sum(f["rejected_by_reason"].values()) == f["rows_rejected"]
        assert f["seconds"] >= 0
    assert report["totals"]["rows_read"] == 2000
    assert report["totals"]["rows_written"] == 2000 - data.faulty_rows
    assert report["outputs"] == {
        "full_data": "full_data.csv",
        "rejects": "rejects.csv",
        "report": "report.json",
    }
    assert report["seconds"] >= 0
    assert report["started_at"].endswith("Z")


def test_progress_is_logged_at_the_requested_interval(dataset, tmp_path, run_etl):
    """Given a long-enough input
    When the ETL runs with --progress-seconds 0 (every batch)
    Then stdout carries progress lines with rows done, the rate and the current file"""
    data = dataset(layout="uci", rows=45000, seed=6)
    result = run_etl(data.out_dir, tmp_path / "out", "--progress-seconds", "0")
    assert result.returncode == 0, result.stderr
    progress = [ln for ln in result.stdout.splitlines() if "progress:" in ln]
    assert len(progress) >= 3
    assert "rows/s" in progress[0]
    assert "file ticdata2000.txt" in progress[0]
    assert result.stderr == ""
