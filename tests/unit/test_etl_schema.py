"""The ETL for anyone's data: the Table Schema it loads (or refuses), the draft `infer` prints, and a CSV
that is not COIL (text, decimal, date, yes/no) cleaned by its schema. In-process, on small files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from etl import clean, outputs
from etl.cli import main
from etl.examples.coil2000 import SCHEMA as COIL_SCHEMA
from etl.infer import draft
from etl.schema import SchemaError, load

CUSTOMERS = """customer_id,name,balance,joined,churned,plan
1,Ann Lee,34.50,2023-01-15,no,basic
2,Bo Chen,120.00,2022-11-02,yes,premium
3,Cy Diaz,0.5,2024-03-30,no,basic
4,Di Evans,12.25,2023-07-04,no,basic
5,"Eve Fox, Jr.",8.00,2023-02-28,yes,family
6,Flo Gray,99.99,2021-12-31,no,premium
7,Gus Hill,0,2024-01-01,no,basic
8,Hal Ito,15.75,2023-05-05,yes,family
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (path := folder / name).write_text(text, encoding="utf-8")
    return path


def schema_file(tmp_path: Path, schema: dict[str, Any]) -> Path:
    return write(tmp_path, "schema.json", json.dumps(schema))


def run(tmp_path: Path, schema: Path, *args: str) -> tuple[int, list[list[str]], list[list[str]]]:
    """Run the ETL on tmp_path/in: (exit code, full_data rows, rejects rows), headers kept."""
    out = tmp_path / "out"
    code = main(
        ["--schema", str(schema), "--input-dir", str(tmp_path / "in"), "--output-dir", str(out), *args]
    )
    read = lambda name: list(csv.reader((out / name).open(encoding="utf-8"))) if (out / name).exists() else []  # noqa: E731
    return code, read("full_data.csv"), read("rejects.csv")


def test_the_shipped_schema_and_the_coil_example_load():
    assert load().title == load(COIL_SCHEMA).title == "COIL 2000"


def test_infer_drafts_types_required_and_closed_lists_from_the_first_rows(tmp_path):
    """Given a CSV with text, decimal, date and yes/no columns
    When infer runs on it
    Then the draft names each column with the type pyarrow infers, required where no value is missing,
    categories for the text column with few values, and trueValues/falseValues as the file spells them"""
    schema = draft(write(tmp_path, "customers.csv", CUSTOMERS), rows=100)
    fields = {f["name"]: f for f in schema["fields"]}
    assert [(f["name"], f["type"]) for f in schema["fields"]] == [
        ("customer_id", "integer"), ("name", "string"), ("balance", "number"),
        ("joined", "date"), ("churned", "boolean"), ("plan", "string"),
    ]  # fmt: skip
    assert all(f["constraints"]["required"] for f in schema["fields"])
    assert fields["plan"]["categories"] == ["basic", "family", "premium"]
    assert (fields["churned"]["trueValues"], fields["churned"]["falseValues"]) == (["yes"], ["no"])
    assert "categories" not in fields["name"]
    assert load(schema_file(tmp_path, schema)).names == list(fields)  # the draft is a schema this ETL runs


def test_a_csv_of_ones_own_is_cleaned_by_its_schema(tmp_path):
    """Given the drafted schema with a primary key and a minimum balance added, and a second upload with a
    duplicate id, a negative balance, a date that does not exist, a 'maybe' and an unknown plan
    When the ETL runs on both files
    Then the good rows are written as their types, and each bad row is rejected at its line with its reason"""
    schema = draft(write(tmp_path / "in", "customers.csv", CUSTOMERS), rows=100)
    schema["primaryKey"] = ["customer_id"]
    schema["fields"][2]["constraints"]["minimum"] = 0
    later = "customer_id,name,balance,joined,churned,plan\n9,Ida Jo,1.5,2024-02-29,yes,basic\n"
    later += (
        "2,Jo Kim,3,2024-01-02,no,basic\n10,Kai Lu,-4.5,2024-01-03,no,basic\n11,Lu Ma,5,2023-02-29,no,basic\n"
    )
    later += "12,Mo Ng,6,2024-01-05,maybe,basic\n13,Ned Oz,7,2024-01-06,no,gold\n"
    write(tmp_path / "in", "later.csv", later)
    code, rows, rejects = run(tmp_path, schema_file(tmp_path, schema), "--max-reject-fraction", "0.5")
    assert code == 0
    assert rows[0] == ["customer_id", "name", "balance", "joined", "churned", "plan"]
    assert rows[1] == ["1", "Ann Lee", "34.5", "2023-01-15", "false", "basic"]
    assert rows[5] == ["5", "Eve Fox, Jr.", "8", "2023-02-28", "true", "family"]
    assert rows[-1] == ["9", "Ida Jo", "1.5", "2024-02-29", "true", "basic"]
    assert [(r[0], r[1], r[2]) for r in rejects[1:]] == [
        ("later.csv", "3", "duplicate primary key (customer_id) = (2): also at customers.csv line 3"),
        ("later.csv", "4", "balance (column 3): '-4.5' is below its minimum 0.0"),
        ("later.csv", "5", "joined (column 4): '2023-02-29' is not a date (%Y-%m-%d)"),
        ("later.csv", "6", "churned (column 5): 'maybe' is not one of yes/no"),
        ("later.csv", "7", "plan (column 6): 'gold' is not one of its 3 categories"),
    ]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["title"] == "customers"
    assert report["totals"]["rejected_by_reason"]["duplicate primary key"] == 1


@pytest.mark.parametrize(
    ("match", "header", "ok"),
    [("exact", "a,b", True), ("exact", "b,a", False), ("exact", "A,b", False), ("equal", "b,a", True),
     ("equal", "a,b,c", False), ("subset", "c,b,a", True), ("subset", "a,c", False), ("superset", "b", True),
     ("superset", "a,c", False), ("partial", "c,a", True), ("partial", "c,d", False)],
)  # fmt: skip
def test_header_names_match_the_fields_as_fields_match_says_and_exactly(tmp_path, match, header, ok):
    """Given a schema with fields a and b (b not required) and a file with another header
    When the ETL runs
    Then it reads the columns by name or order as fieldsMatch says, names matching exactly (case too)"""
    fields = [{"name": "a", "type": "integer"}, {"name": "b", "type": "string"}]
    schema = schema_file(tmp_path, {"title": "t", "fieldsMatch": match, "fields": fields})
    values = {"a": "1", "b": "x", "c": "y", "d": "z"}
    write(
        tmp_path / "in",
        "t.csv",
        header + "\n" + ",".join(values.get(h, "?") for h in header.split(",")) + "\n",
    )
    code, rows, _ = run(tmp_path, schema)
    assert code == (0 if ok else 1)
    if ok:
        assert rows[1] == ["1" if "a" in header else "", "x" if "b" in header else ""]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("{", "schema.json: not a readable JSON file"),
        ({"fields": [{"name": "a", "type": "decimal"}]}, "fields[0] (a).type: 'decimal' is not supported"),
        ({"fields": [{"name": "a", "type": "integer", "categories": [1, "x"]}]},
         "fields[0] (a).categories[1].value: 'x' is not a integer"),
        ({"fields": [{"name": "a"}], "uniqueKeys": [["a"]]}, "schema.json.uniqueKeys: not supported"),
        ({"fields": [{"name": "a", "type": "string", "unit": "m"}]}, "fields[0].unit: not supported"),
        ({"fields": [{"name": "a", "type": "string", "constraints": {"unique": True}}]},
         "fields[0] (a).constraints.unique: not supported"),
        ({"fields": [{"name": "a", "type": "integer", "constraints": {"pattern": "x"}}]},
         "fields[0] (a).constraints.pattern: 'x' does not apply to a integer field"),
        ({"fields": [{"name": "a", "type": "string", "constraints": {"pattern": "("}}]},
         "fields[0] (a).constraints.pattern: not a valid regular expression"),
        ({"fields": [{"name": "a", "type": "date", "constraints": {"minimum": "1.1.2020"}}]},
         "fields[0] (a).constraints.minimum: '1.1.2020' is not a date (%Y-%m-%d)"),
        ({"fields": [{"name": "a"}], "fieldsMatch": "loose"}, "fieldsMatch: 'loose' is not one"),
        ({"fields": [{"name": "a"}], "primaryKey": ["b"]}, "primaryKey: ['b'] does not name"),
        ({"fields": [{"name": "a"}], "etl:layout": "nope"}, "etl:layout: 'nope' is not an example"),
    ],
)  # fmt: skip
def test_a_schema_using_what_is_not_supported_is_refused_naming_the_property(
    tmp_path, capsys, schema, message
):
    """Given a schema that is not JSON, names an unknown type, a category of another type, or a part of the
    standard this ETL does not implement
    When the ETL starts
    Then it exits 2 with one line naming the property, and writes nothing"""
    path = write(tmp_path, "schema.json", schema if isinstance(schema, str) else json.dumps(schema))
    with pytest.raises(SchemaError, match=None):
        load(path)
    write(tmp_path / "in", "t.csv", "a\n1\n")
    assert run(tmp_path, path) == (2, [], [])
    err = capsys.readouterr().err
    assert err.startswith("etl: error: ")
    assert err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "out").exists()


def test_a_run_above_the_threshold_leaves_only_its_finished_rejects_and_report_in_the_output_folder(
    tmp_path, monkeypatch
):
    """Given a CSV with one bad row in eight (the pipeline uploads the output folder continuously, even
    when the job fails)
    When the ETL runs with the default threshold
    Then while it reads, the output folder holds nothing (no partial file to upload); at the end it
    holds rejects.csv and report.json only, full_data.csv is nowhere, and no staging folder is left"""
    schema = draft(write(tmp_path / "in", "customers.csv", CUSTOMERS), rows=100)
    write(tmp_path / "in", "customers.csv", CUSTOMERS.replace("34.50", "x"))
    seen, write_block = [], outputs.Outputs.write

    def watched(self: outputs.Outputs, *args: Any) -> None:
        seen.append(sorted((tmp_path / "out").iterdir()))
        write_block(self, *args)

    monkeypatch.setattr(outputs.Outputs, "write", watched)
    code, rows, _ = run(tmp_path, schema_file(tmp_path, schema))
    assert (code, rows) == (1, [])
    assert seen, "no block was written"
    assert all(listing == [] for listing in seen)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rejects.csv", "report.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "schema.json"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["status"], report["totals"]["rows_rejected"]) == ("failed", 1)


def test_a_missing_value_that_reads_as_a_number_stays_missing_whatever_its_place_in_the_list(tmp_path):
    """Given an integer field whose missing values are "" and "0"
    When a block holds 0 and 5
    Then 0 is missing (not the number 0) and 5 is 5"""
    schema = {"missingValues": ["", "0"], "fields": [{"name": "a", "type": "integer"}]}
    field = load(schema_file(tmp_path, schema)).fields[0]
    values, problems = clean.convert(field, pa.array([b"0", b"5"], pa.binary()))
    assert (values.to_pylist(), problems.tolist()) == ([None, 5], [clean.MISSING, clean.OK])


def test_a_datetime_in_another_form_than_its_format_is_rejected_even_in_a_clean_block(tmp_path):
    # Given a datetime column in the standard's default format, and values in two other ISO forms
    schema = schema_file(
        tmp_path,
        {"title": "t", "fields": [{"name": "id", "type": "integer"}, {"name": "at", "type": "datetime"}]},
    )
    write(tmp_path / "in", "a.csv", "id,at\n1,2020-01-01T10:00:00\n2,2020-01-01\n3,2020-01-01 10:00\n")
    # When the ETL runs
    code, full, rejects = run(tmp_path, schema, "--max-reject-fraction", "0.9")
    # Then only the value in the format is written; the others are rejected, naming the format
    assert code == 0
    assert full == [["id", "at"], ["1", "2020-01-01 10:00:00"]]
    assert [r[1] for r in rejects[1:]] == ["3", "4"]
    assert all("is not a date and time (%Y-%m-%dT%H:%M:%S)" in r[2] for r in rejects[1:])
