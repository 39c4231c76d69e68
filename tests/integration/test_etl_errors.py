"""Bad input: a non-zero exit and one clear line naming the file and what was expected; never a traceback."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable

import pytest

from coilgen.dictionary import col_info_csv
from etl.read import block_size

ROW86 = "\t".join(["1"] * 86)
CSV86 = ",".join(["1"] * 86)
CSV85 = ",".join(["1"] * 85)


def header(n: int) -> str:
    return ",".join(str(i) for i in range(n))


def seed_eval(rows: int, targets: int) -> dict[str, bytes]:
    return {
        "test.csv": (header(85) + "\n" + (CSV85 + "\n") * rows).encode(),
        "gt.csv": ("0\n" + "0\n" * targets).encode(),
    }


def zipped() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.csv", header(86) + "\n" + CSV86 + "\n")
    return buf.getvalue()


CASES: dict[str, tuple[Callable[[], dict[str, bytes]], str]] = {
    "empty folder": (dict, "empty input (no data files)"),
    "only placeholders": (
        lambda: {"_SUCCESS": b"", "empty.csv": b"", ".keep": b"x"},
        "empty input (no data files, ignored: .keep, _SUCCESS, empty.csv)",
    ),
    "only the dictionary": (
        lambda: {"col_info.csv": col_info_csv()},
        "empty input (only dictionary files",
    ),
    "unknown shape": (
        lambda: {"data.txt": ("\t".join(["1"] * 12) + "\n").encode() * 3},
        "data.txt: unknown file shape: rows have 12 tab-separated fields; expected COIL 2000 rows",
    ),
    "binary": (
        lambda: {"train.csv": b"\x89PNG\r\n\x1a\n\x00\x00" * 50},
        "train.csv: binary content, not text",
    ),
    "zip archive": (lambda: {"coil.zip": zipped()}, "coil.zip: is a zip archive; expected the data files"),
    "broken gzip": (
        lambda: {"train.csv.gz": b"\x1f\x8b\x08\x00garbage"},
        "train.csv.gz: cannot be read as gzip",
    ),
    "header only": (
        lambda: {"train.csv": (header(86) + "\n").encode()},
        "train.csv: no data rows, only a header",
    ),
    "empty gzip": (lambda: {"train.csv.gz": gzip.compress(b"")}, "train.csv.gz: no data rows"),
    "unrecognised header": (
        lambda: {"people.csv": b"name,age,city\nann,3,x\n"},
        "people.csv: unrecognised first line 'name,age,city'",
    ),
    "header and rows disagree": (
        lambda: {"train.csv": (header(86) + "\n" + (CSV85 + "\n") * 3).encode()},
        "train.csv: the header has 86 fields but the rows have 85",
    ),
    "targets without eval": (
        lambda: {"gt.csv": b"0\n1\n0\n"},
        "gt.csv: targets file without its eval rows (expected ticeval2000.txt or test.csv beside it)",
    ),
    "eval without targets": (
        lambda: {"test.csv": (header(85) + "\n" + CSV85 + "\n").encode()},
        "test.csv: eval rows without their targets file (expected tictgts2000.txt or gt.csv beside it)",
    ),
    "fewer targets than eval rows": (
        lambda: seed_eval(rows=10, targets=9),
        "test.csv has 10 rows but its targets file gt.csv has only 9",
    ),
    "more targets than eval rows": (
        lambda: seed_eval(rows=10, targets=12),
        "gt.csv has 2 more rows than its eval file test.csv (10 rows)",
    ),
    "dictionary does not match": (
        lambda: {
            "col_info.csv": col_info_csv().replace(b"MOSHOOFD", b"MOSHOOFX"),
            "ticdata2000.txt": (ROW86 + "\n").encode(),
        },
        "col_info.csv: data dictionary does not match the schema 'COIL 2000': "
        "column 5 is MOSHOOFX, expected MOSHOOFD",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_with_one_clear_line(case, tmp_path, run_etl):
    """Given an input folder with one kind of bad input
    When the ETL runs as the processing job runs it
    Then it exits 1, prints exactly one line on stderr naming the file and what was expected,
    and leaves no full_data.csv"""
    build, message = CASES[case]
    inp = tmp_path / "in"
    inp.mkdir()
    for name, content in build().items():
        (inp / name).write_bytes(content)
    result = run_etl(inp, tmp_path / "out")
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("etl: error: ")
    assert message in result.stderr
    assert not (tmp_path / "out" / "full_data.csv").exists()


def test_a_missing_input_folder_is_named(tmp_path, run_etl):
    """Given no input folder at all
    When the ETL runs
    Then it says which folder it expected"""
    result = run_etl(tmp_path / "nowhere", tmp_path / "out")
    assert result.returncode == 1
    assert (
        result.stderr == f"etl: error: input directory {tmp_path / 'nowhere'} does not exist; "
        "expected the downloaded input data there\n"
    )


def test_a_bad_argument_is_a_usage_error(tmp_path, run_etl):
    """Given a reject fraction outside 0..1
    When the ETL starts
    Then argparse refuses it with exit code 2"""
    result = run_etl(tmp_path, tmp_path / "out", "--max-reject-fraction", "2")
    assert result.returncode == 2
    assert "--max-reject-fraction must be between 0 and 1" in result.stderr


@pytest.mark.parametrize("rows", [5, 4000])  # 4000 rows: the long line starts in the reader's second block
def test_a_line_that_never_ends_is_refused_not_buffered(tmp_path, run_etl, rows):
    """Given a file whose first rows are fine but which then runs on for 2 MB without a line end
    When the ETL runs
    Then it stops with one line naming the file and the line, instead of holding it all in memory"""
    inp = tmp_path / "in"
    inp.mkdir()
    text = ("\t".join(["1"] * 86) + "\n") * rows
    (inp / "ticdata2000.txt").write_bytes(text.encode() + b"1\t" * (1 << 20))
    result = run_etl(inp, tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr == (
        f"etl: error: ticdata2000.txt: line {rows + 1} is longer than {block_size(86)} bytes; "
        "expected rows of a few hundred\n"
    )
