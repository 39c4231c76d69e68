"""A draft Table Schema for a CSV file, from the types pyarrow infers on its first rows."""

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from etl.read import BOM, FileInfo, opened, read_sample
from etl.schema import FALSE, TRUE

YES, NO = ("yes", "Yes", "YES", "y", "Y"), ("no", "No", "NO", "n", "N")  # read as true and false too
FEW = 12  # at most this many distinct values (and at most half the rows): a closed list
KINDS = {"integer": pa.types.is_integer, "number": pa.types.is_floating, "boolean": pa.types.is_boolean}
PROFILE = "https://datapackage.org/profiles/2.1/tableschema.json"
KINDS |= {"date": pa.types.is_date, "datetime": pa.types.is_timestamp}


def describe(name: str, typed: pa.ChunkedArray, text: pa.ChunkedArray) -> dict[str, Any]:
    """A field: its type, required where no value is missing, categories or enum where values are few."""
    kind = next((k for k, test in KINDS.items() if test(typed.type)), "string")
    field: dict[str, Any] = {"name": name, "type": kind, "constraints": {}}
    seen = set(pc.unique(text.drop_null()).to_pylist())
    if kind == "datetime" and any(" " in v for v in seen):
        field["format"] = "%Y-%m-%d %H:%M:%S"
    if kind == "boolean":
        field["trueValues"] = [v for v in (*TRUE, *YES) if v in seen] or list(TRUE)
        field["falseValues"] = [v for v in (*FALSE, *NO) if v in seen] or list(FALSE)
    if typed.null_count == 0 and len(typed):
        field["constraints"]["required"] = True
    if kind in ("integer", "string") and 0 < len(seen) <= min(FEW, len(typed) // 2):
        values = sorted(pc.unique(typed.drop_null()).to_pylist())
        field |= {"categories": values} if kind == "string" else {}
        field["constraints"] |= {"enum": values} if kind == "integer" else {}
    return {k: v for k, v in field.items() if v != {}}


def draft(path: Path, rows: int) -> dict[str, Any]:
    """Read the header and `rows` rows twice, typed and as text, and describe each column."""
    info, data = FileInfo(path, path.name), b""
    read_sample(info, "expected a CSV file with a header row")  # text, not empty
    with opened(info) as stream:
        while data.count(b"\n") <= rows + info.header_lines and (chunk := stream.read(1 << 20)):
            data += chunk
    lines = data.removeprefix(BOM).split(b"\n")[: rows + 1 + info.header_lines]
    body, skip = pa.py_buffer(b"\n".join(lines)), pv.ReadOptions(skip_rows=info.header_lines)
    parse = pv.ParseOptions(delimiter="\t" if b"\t" in lines[0] else ",")
    bools = pv.ConvertOptions(strings_can_be_null=True, true_values=[*TRUE, *YES], false_values=[*FALSE, *NO])
    typed = pv.read_csv(body, skip, parse, bools)
    as_text = pv.ConvertOptions(column_types=dict.fromkeys(typed.column_names, pa.string()))
    text = pv.read_csv(body, skip, parse, as_text)
    fields = [describe(n, typed.column(n), text.column(n)) for n in typed.column_names]
    title = path.name.lower().removesuffix(".gz").rsplit(".", 1)[0]
    draft = {"$schema": PROFILE, "title": title, "fieldsMatch": "exact", "missingValues": [""]}
    return draft | {"fields": fields}


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m etl infer", description=__doc__)
    parser.add_argument("file", type=Path, help="a CSV file with a header row (plain or gzip)")
    parser.add_argument("--rows", type=int, default=10_000, help="how many rows to infer from (10000)")
    opts = parser.parse_args(argv)
    print(json.dumps(draft(opts.file, opts.rows), indent=2, ensure_ascii=False))
