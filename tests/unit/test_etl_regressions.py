"""Behaviour the old etl.py had, kept by the one engine: quoted fields, headerless Yes/No targets, a trailing
delimiter. In-process through etl.cli.main on small files (no subprocess)."""

import csv
from pathlib import Path

from coilgen.dictionary import CODES
from etl.cli import main
from etl.examples.coil2000 import SCHEMA

ROW = ["3", *["1"] * 84]  # 85 valid feature values


def run(tmp_path: Path, files: dict[str, str]) -> tuple[int, list[list[str]], list[list[str]]]:
    """Write the files, run the ETL, return (exit code, full_data rows, rejects rows), headers dropped."""
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir(parents=True)
    for name, text in files.items():
        (inp / name).write_text(text, encoding="utf-8")
    args = [
        "--schema",
        str(SCHEMA),
        "--input-dir",
        str(inp),
        "--output-dir",
        str(out),
        "--max-reject-fraction",
        "1",
    ]
    code = main([*args, "--resource-config", str(tmp_path / "none.json")])
    read = lambda name: list(csv.reader((out / name).open(encoding="utf-8")))[1:]  # noqa: E731
    return code, read("full_data.csv") if (out / "full_data.csv").exists() else [], read("rejects.csv")


def test_quoted_fields_are_read_as_their_values_and_bad_rows_keep_their_physical_line(tmp_path):
    """Given a comma file whose every field is quoted, with a short row on line 3
    When the ETL runs
    Then the quoted rows are cleaned as unquoted ones would be, and the short row is rejected at line 3"""
    quoted = lambda fields: ",".join(f'"{f}"' for f in fields) + "\n"  # noqa: E731
    plain_code, plain, _ = run(tmp_path / "plain", {"a.csv": (",".join([*ROW, "1"]) + "\n") * 3})
    code, rows, rejects = run(
        tmp_path / "q", {"a.csv": quoted([*ROW, "1"]) * 2 + quoted(ROW[:5]) + quoted([*ROW, "0"])}
    )
    assert (plain_code, code) == (0, 0)
    assert rows[:2] == plain[:2]
    assert rows[2][-1] == "0"
    assert [(r[1], r[2]) for r in rejects] == [("3", "expected 86 fields, found 5")]


def test_a_quoted_yes_is_a_target_word(tmp_path):
    """Given a named CSV whose Purchase column is quoted ("Yes", "No")
    When the ETL runs
    Then the rows are written with targets 1 and 0"""
    header = ",".join([*CODES[:85], "Purchase"]) + "\n"
    body = "".join(",".join([*ROW, f'"{w}"']) + "\n" for w in ("Yes", "No"))
    code, rows, rejects = run(tmp_path, {"named.csv": header + body})
    assert (code, [r[-1] for r in rows], rejects) == (0, ["1", "0"], [])


def test_a_headerless_targets_file_of_yes_and_no_pairs_with_its_eval_file(tmp_path):
    """Given an eval file of 85 fields and a targets file of bare Yes/No lines beside it
    When the ETL runs
    Then each eval row takes its target: Yes as 1, No as 0"""
    files = {"test.csv": (",".join(ROW) + "\n") * 3, "gt.csv": "Yes\nNo\nYes\n"}
    code, rows, rejects = run(tmp_path, files)
    assert (code, [r[-1] for r in rows], rejects) == (0, ["1", "0", "1"], [])


def test_a_trailing_tab_is_not_a_field_but_a_trailing_comma_is(tmp_path):
    """Given a tab file whose rows end in a tab, and a comma file whose rows end in a comma
    When the ETL runs on each
    Then the tab file's rows are clean (as the old etl.py read them); the comma row has a field too many"""
    tab_code, tab_rows, _ = run(tmp_path / "t", {"t.txt": ("\t".join([*ROW, "1"]) + "\t\n") * 2})
    comma_code, _, rejects = run(
        tmp_path / "c",
        {"c.csv": ("\n".join([",".join([*ROW, "1"])] * 3)) + "\n" + ",".join([*ROW, "1"]) + ",\n"},
    )
    assert (tab_code, len(tab_rows)) == (0, 2)
    assert (comma_code, [(r[1], r[2]) for r in rejects]) == (0, [("4", "expected 86 fields, found 87")])
