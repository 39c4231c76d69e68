"""Every raw layout users drop into raw/ comes out as the same clean schema."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from coilgen.dictionary import CODES, COIL, L0_LABELS, L2_LABELS
from etl.read import BOM
from tests.support.etl import main

CLEAN_NAMES = COIL.names


def run(inp: Path, out: Path, *args: str) -> int:
    return main(["--input-dir", str(inp), "--output-dir", str(out), *args])


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.mark.parametrize(
    "variant",
    [{}, {"gzip": True}, {"crlf": True, "trailing_blanks": True}],
    ids=["plain", "gzip", "crlf-trailing-blanks"],
)
def test_uci_and_seed_files_give_the_same_clean_data(dataset, tmp_path, variant):
    """Given the same generated rows written as the UCI text files and as the seed's CSVs
    When the ETL runs on each (plain, gzip, or CRLF with trailing blanks)
    Then every full_data.csv is byte-identical to the one from the plain seed CSVs"""
    expected_out = tmp_path / "expected"
    assert run(dataset(layout="seed", rows=3000, seed=7).out_dir, expected_out) == 0
    expected = (expected_out / "full_data.csv").read_bytes()
    for layout in ("uci", "seed"):
        data = dataset(layout=layout, rows=3000, seed=7, **variant)
        out = tmp_path / layout
        assert run(data.out_dir, out) == 0
        assert (out / "full_data.csv").read_bytes() == expected, layout
    rows = rows_of(expected_out / "full_data.csv")
    assert rows[0] == list(CLEAN_NAMES)
    assert len(rows) == 1 + 3000


def test_named_csv_with_purchase_yes_no_becomes_the_clean_schema(dataset, tmp_path):
    """Given Caravan.csv (header of the 85 codes + Purchase, values Yes/No)
    When the ETL runs
    Then full_data.csv is what pandas makes of it: Purchase as 0/1, codes renamed, two columns decoded"""
    data = dataset(layout="named", rows=2500, seed=11)
    assert run(data.out_dir, tmp_path / "out") == 0
    df = pd.read_csv(data.out_dir / "Caravan.csv")
    df["Purchase"] = df["Purchase"].map({"No": 0, "Yes": 1})
    df.columns = list(CODES)
    df = df.rename(columns=dict(zip(CODES, CLEAN_NAMES, strict=True)))
    df["zip_agg_customer_subtype"] = df["zip_agg_customer_subtype"].map(dict(enumerate(L0_LABELS, 1)))
    df["zip_agg_customer_main_type"] = df["zip_agg_customer_main_type"].map(dict(enumerate(L2_LABELS, 1)))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "full_data.csv"), df)


def test_a_folder_mixing_layouts_puts_labelled_rows_first_then_eval_rows(dataset, tmp_path):
    """Given one folder holding the UCI files, the seed CSVs and a named CSV
    When the ETL runs
    Then all rows are written: every labelled file (by name), then each eval file joined to its targets"""
    inp = tmp_path / "in"
    inp.mkdir()
    parts = {layout: dataset(layout=layout, rows=600, seed=5) for layout in ("uci", "seed", "named")}
    for data in parts.values():
        for f in data.out_dir.iterdir():
            if f.name not in ("dictionary.txt",):  # one dictionary is enough
                shutil.copy(f, inp / f.name)
    assert run(inp, tmp_path / "out") == 0
    rows = rows_of(tmp_path / "out" / "full_data.csv")[1:]
    singles = {}
    for layout, data in parts.items():
        assert run(data.out_dir, tmp_path / layout) == 0
        singles[layout] = rows_of(tmp_path / layout / "full_data.csv")[1:]
    n_train = {k: parts[k].labelled_rows for k in parts}
    expected = (
        singles["named"]  # Caravan.csv
        + singles["uci"][: n_train["uci"]]  # ticdata2000.txt
        + singles["seed"][: n_train["seed"]]  # train.csv
        + singles["seed"][n_train["seed"] :]  # test.csv + gt.csv
        + singles["uci"][n_train["uci"] :]  # ticeval2000.txt + tictgts2000.txt
    )
    assert rows == expected


def test_inputs_are_never_modified(dataset, tmp_path):
    """Given generated input files
    When the ETL runs
    Then every input file has the same bytes afterwards"""
    data = dataset(layout="uci", rows=800, seed=2, faults=["bad-values"])
    before = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in data.out_dir.iterdir()}
    assert run(data.out_dir, tmp_path / "out") == 0
    after = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in data.out_dir.iterdir()}
    assert after == before


@pytest.mark.parametrize("layout", ["uci", "seed", "named"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_utf8_byte_order_mark_is_accepted_in_every_text_layout(dataset, tmp_path, layout, gz):
    """Given a layout's files saved as Excel's "CSV UTF-8" does (a UTF-8 BOM first), plain or gzip
    When the ETL runs
    Then it writes the same full_data.csv as for the files without the BOM, and rejects nothing"""
    data = dataset(layout=layout, rows=800, seed=13, gzip=gz)
    inp = tmp_path / "in"
    inp.mkdir()
    for f in data.out_dir.iterdir():
        text = gzip.decompress(f.read_bytes()) if gz else f.read_bytes()
        (inp / f.name).write_bytes(gzip.compress(BOM + text) if gz else BOM + text)
    assert run(data.out_dir, tmp_path / "without") == 0
    assert run(inp, tmp_path / "with") == 0
    for name in ("full_data.csv", "rejects.csv"):
        assert (tmp_path / "with" / name).read_bytes() == (tmp_path / "without" / name).read_bytes()
