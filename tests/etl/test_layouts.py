"""Every raw layout users drop into raw/ comes out as the same clean schema."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from coilgen import ROW_FAULTS
from etl.etl import CLEAN_NAMES, CODES, L0_LABELS, L2_LABELS, main

ENGINES = ("arrow", "python")


def run(inp: Path, out: Path, *args: str) -> int:
    return main(["--input-dir", str(inp), "--output-dir", str(out), *args])


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "variant",
    [{}, {"gzip": True}, {"crlf": True, "trailing_blanks": True}],
    ids=["plain", "gzip", "crlf-trailing-blanks"],
)
def test_uci_and_seed_files_give_the_same_clean_data(dataset, tmp_path, engine, variant):
    """Given the same generated rows written as the UCI text files and as the seed's CSVs
    When the ETL runs on each (plain, gzip, or CRLF with trailing blanks)
    Then every full_data.csv is byte-identical to the one from the plain seed CSVs"""
    expected_out = tmp_path / "expected"
    assert run(dataset(layout="seed", rows=3000, seed=7).out_dir, expected_out, "--engine", "python") == 0
    expected = (expected_out / "full_data.csv").read_bytes()
    for layout in ("uci", "seed"):
        data = dataset(layout=layout, rows=3000, seed=7, **variant)
        out = tmp_path / layout
        assert run(data.out_dir, out, "--engine", engine) == 0
        assert (out / "full_data.csv").read_bytes() == expected, layout
    rows = rows_of(expected_out / "full_data.csv")
    assert rows[0] == list(CLEAN_NAMES)
    assert len(rows) == 1 + 3000


@pytest.mark.parametrize("engine", ENGINES)
def test_named_csv_with_purchase_yes_no_becomes_the_clean_schema(dataset, tmp_path, engine):
    """Given Caravan.csv (header of the 85 codes + Purchase, values Yes/No)
    When the ETL runs
    Then full_data.csv is what pandas makes of it: Purchase as 0/1, codes renamed, two columns decoded"""
    data = dataset(layout="named", rows=2500, seed=11)
    assert run(data.out_dir, tmp_path / "out", "--engine", engine) == 0
    df = pd.read_csv(data.out_dir / "Caravan.csv")
    df["Purchase"] = df["Purchase"].map({"No": 0, "Yes": 1})
    df.columns = list(CODES)
    df = df.rename(columns=dict(zip(CODES, CLEAN_NAMES, strict=True)))
    df["zip_agg_customer_subtype"] = df["zip_agg_customer_subtype"].map(dict(enumerate(L0_LABELS, 1)))
    df["zip_agg_customer_main_type"] = df["zip_agg_customer_main_type"].map(dict(enumerate(L2_LABELS, 1)))
    assert (tmp_path / "out" / "full_data.csv").read_text(encoding="utf-8") == df.to_csv(index=False)


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


def test_both_engines_agree_on_faulty_data(dataset, tmp_path):
    """Given UCI and seed files with every kind of row fault
    When the ETL runs with the pyarrow engine and with the standard-library engine
    Then both write the same clean rows and the same rejects"""
    for layout in ("uci", "seed"):
        data = dataset(layout=layout, rows=5000, seed=21, faults=list(ROW_FAULTS), fault_rate=0.002)
        outs = {}
        for engine in ENGINES:
            outs[engine] = tmp_path / f"{layout}-{engine}"
            assert run(data.out_dir, outs[engine], "--engine", engine) == 0
        for name in ("full_data.csv", "rejects.csv"):
            assert (outs["arrow"] / name).read_bytes() == (outs["python"] / name).read_bytes(), name


def test_inputs_are_never_modified(dataset, tmp_path):
    """Given generated input files
    When the ETL runs
    Then every input file has the same bytes afterwards"""
    data = dataset(layout="uci", rows=800, seed=2, faults=["bad-values"])
    before = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in data.out_dir.iterdir()}
    assert run(data.out_dir, tmp_path / "out") == 0
    after = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in data.out_dir.iterdir()}
    assert after == before


def test_without_pyarrow_the_standard_library_engine_gives_the_same_result(dataset, tmp_path, run_etl):
    """Given a bare Python with neither pyarrow nor numpy (nor pandas) installed
    When etl.py runs there with the default engine
    Then it uses the standard-library engine and writes the same full_data.csv as with pyarrow"""
    bare = Path(sys.base_prefix) / "bin" / "python3"
    check = subprocess.run([str(bare), "-c", "import pyarrow"], capture_output=True, check=False)
    if check.returncode == 0:
        pytest.skip(f"{bare} has pyarrow")
    data = dataset(layout="uci", rows=1500, seed=17, faults=["bad-values"])
    assert run_etl(data.out_dir, tmp_path / "bare", python=str(bare)).returncode == 0
    assert run(data.out_dir, tmp_path / "arrow", "--engine", "arrow") == 0
    report = json.loads((tmp_path / "bare" / "report.json").read_text())
    assert report["engine"] == "python"
    for name in ("full_data.csv", "rejects.csv"):
        assert (tmp_path / "bare" / name).read_bytes() == (tmp_path / "arrow" / name).read_bytes()


def test_asking_for_the_arrow_engine_without_pyarrow_is_a_clear_error(tmp_path, run_etl):
    bare = Path(sys.base_prefix) / "bin" / "python3"
    result = run_etl(tmp_path, tmp_path / "out", "--engine", "arrow", python=str(bare))
    if "pyarrow" not in result.stderr:
        pytest.skip(f"{bare} has pyarrow")
    assert result.returncode == 1
    assert result.stderr == "etl: error: --engine arrow needs pyarrow and numpy, not installed here\n"
