"""Editing the schema changes what every layout writes, and nothing else has to change.

On a copy of the COIL example's schema: decode one more column (zip_agg_avg_age, average age, through
code table L1, as categories with labels) and narrow one domain (zip_agg_number_of_houses from 1-10 to
1-5, its maximum).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from coilgen.dictionary import COIL, L1_LABELS
from etl.examples.coil2000 import SCHEMA

AGE, HOUSES = COIL.names.index("zip_agg_avg_age"), COIL.names.index("zip_agg_number_of_houses")


@pytest.fixture(scope="module")
def edited_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The COIL example's schema with the two edits, as a user makes them in the JSON file."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    age, houses = schema["fields"][AGE], schema["fields"][HOUSES]
    age["categories"] = [{"value": i, "label": label} for i, label in enumerate(L1_LABELS, 1)]
    del age["constraints"]["minimum"], age["constraints"]["maximum"]
    houses["constraints"]["maximum"] = 5
    path = tmp_path_factory.mktemp("edited") / "schema.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.mark.parametrize("layout", ["uci", "seed", "named"])
def test_one_more_decoded_column_and_a_narrower_domain_apply_to_every_layout(
    layout, dataset, tmp_path, run_etl, edited_schema
):
    """Given a layout's files, and the schema edited to decode the average age and allow at most 5 houses
    When the ETL runs with the example's schema and with the edited one (--schema)
    Then the edited run writes the same rows minus those with more than 5 houses, the average age as the
    L1 labels, and rejects exactly the removed rows, each at its line with the narrowed maximum"""
    data = dataset(layout=layout, rows=1200, seed=41)
    assert run_etl(data.out_dir, tmp_path / "shipped").returncode == 0
    edited_run = ("--schema", str(edited_schema), "--max-reject-fraction", "1")
    result = run_etl(data.out_dir, tmp_path / "edited", *edited_run)
    assert result.returncode == 0, result.stderr
    shipped, edited = (
        rows(tmp_path / "shipped" / "full_data.csv"),
        rows(tmp_path / "edited" / "full_data.csv"),
    )
    assert edited[0] == shipped[0] == COIL.names
    kept = [r for r in shipped[1:] if int(r[HOUSES]) <= 5]
    expected = [[*r[:AGE], L1_LABELS[int(r[AGE]) - 1], *r[AGE + 1 :]] for r in kept]
    assert edited[1:] == expected
    assert 0 < len(kept) < len(shipped) - 1
    rejects = rows(tmp_path / "edited" / "rejects.csv")[1:]
    assert len(rejects) == len(shipped) - 1 - len(kept)
    assert rows(tmp_path / "shipped" / "rejects.csv")[1:] == []
    for source, line, reason, raw in rejects:
        houses = raw.split("\t" if layout == "uci" else ",")[HOUSES]
        assert reason == f"zip_agg_number_of_houses (column 2): '{houses}' is above its maximum 5"
        physical = (data.out_dir / source).read_text(encoding="utf-8").split("\n")[int(line) - 1]
        assert physical == raw
