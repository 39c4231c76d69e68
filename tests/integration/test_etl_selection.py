"""Which files a run reads: the object the trigger passed, and never markers, placeholders or hidden files."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.etl import main


def test_an_object_url_selects_exactly_that_file(dataset, tmp_path):
    """Given the S3 prefix download of s3://b/raw/Caravan.csv, which also brought Caravan.csv.bak
    When the ETL runs with --input-url s3://b/raw/Caravan.csv
    Then only Caravan.csv is processed and the .bak is reported as ignored"""
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(dataset(layout="named", rows=100, seed=1).out_dir / "Caravan.csv", inp / "Caravan.csv")
    shutil.copy(dataset(layout="named", rows=250, seed=2).out_dir / "Caravan.csv", inp / "Caravan.csv.bak")
    out = tmp_path / "out"
    assert (
        main(["--input-dir", str(inp), "--output-dir", str(out), "--input-url", "s3://b/raw/Caravan.csv"])
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["rows_written"] == 100
    assert report["ignored"] == [{"path": "Caravan.csv.bak", "reason": "not the input object Caravan.csv"}]


def test_a_folder_url_processes_every_file_in_the_folder(dataset, tmp_path):
    """Given a folder input (marker mode) with the UCI files in a sub-folder
    When the ETL runs with a folder URL
    Then every data file is processed"""
    inp = tmp_path / "in"
    shutil.copytree(dataset(layout="uci", rows=300, seed=3).out_dir, inp / "batch1")
    out = tmp_path / "out"
    assert main(["--input-dir", str(inp), "--output-dir", str(out), "--input-url", "s3://b/raw/"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["rows_written"] == 300
    assert {f["path"] for f in report["files"]} >= {"batch1/ticdata2000.txt", "batch1/ticeval2000.txt"}


def test_markers_placeholders_and_hidden_files_are_ignored(dataset, tmp_path):
    """Given the seed CSVs, a _SUCCESS marker, a zero-byte placeholder, hidden files (one binary) and
    Spark's temporary folder and staging file (contract.datafiles: the rule the trigger applies too)
    When the ETL runs
    Then it succeeds on the data alone and reports each ignored file with why"""
    inp = tmp_path / "in"
    shutil.copytree(dataset(layout="seed", rows=200, seed=4).out_dir, inp)
    (inp / "_SUCCESS").write_bytes(b"")
    (inp / "upload.csv").write_bytes(b"")
    (inp / ".DS_Store").write_bytes(b"\x00\x01binary")
    (inp / ".cache").mkdir()
    (inp / ".cache" / "x.csv").write_text("not,data\n")
    (inp / "_temporary" / "0").mkdir(parents=True)  # Spark's work folder, and its staging file
    (inp / "_temporary" / "0" / "part-00000.csv").write_text("1,2\n")
    (inp / ".spark-staging-1a2b").write_text("1,2\n")
    out = tmp_path / "out"
    assert main(["--input-dir", str(inp), "--output-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["rows_written"] == 200
    assert report["ignored"] == [
        {"path": ".DS_Store", "reason": "hidden file (path segment '.DS_Store' starts with '.')"},
        {
            "path": ".spark-staging-1a2b",
            "reason": "hidden file (path segment '.spark-staging-1a2b' starts with '.')",
        },
        {"path": "_SUCCESS", "reason": "temporary or marker file (path segment '_SUCCESS' starts with '_')"},
        {"path": "upload.csv", "reason": "zero-byte placeholder"},
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.csv", "input object missing.csv (from --input-url s3://b/raw/missing.csv) is not in"),
        ("_SUCCESS", "input object _SUCCESS (from --input-url) is a temporary or marker file (path segment"),
    ],
)
def test_an_object_url_that_is_not_data_is_an_error(dataset, tmp_path, run_etl, name, message):
    """Given an object URL naming a file that is absent, or a marker
    When the ETL runs
    Then it fails with one line saying so"""
    inp = tmp_path / "in"
    shutil.copytree(dataset(layout="seed", rows=50, seed=4).out_dir, inp)
    (inp / "_SUCCESS").write_bytes(b"")
    result = run_etl(inp, tmp_path / "out", "--input-url", f"s3://b/raw/{name}")
    assert result.returncode == 1
    assert message in result.stderr
