"""full_data.csv holds what the seed article's ETL writes, for the seed's own layout."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from tests.support.etl import main

BASELINE = Path(__file__).resolve().parents[2] / "bench" / "etl_baseline.py"


def seed_etl(raw: Path, out: Path) -> None:
    """The seed's ETL logic (SM02/SM04 etl.py): the benchmark's baseline script, run as it is."""
    subprocess.run([sys.executable, str(BASELINE), str(raw), str(out)], check=True, timeout=120)


def test_full_data_holds_the_seed_etl_output(dataset, tmp_path):
    """Given the seed's files (train.csv, test.csv, gt.csv, col_info.csv) at the real data's size
    When our ETL and the seed's ETL both run on them
    Then both full_data.csv files have the same header line, byte for byte, and read as CSV the same rows
    and values (9822 rows: labelled first, then eval + targets); only the quoting of labels differs:
    pyarrow's writer quotes every text value, pandas only those holding a comma"""
    data = dataset(layout="seed", rows=9822, seed=2000)
    seed_etl(data.out_dir, tmp_path / "seed_full_data.csv")
    assert main(["--input-dir", str(data.out_dir), "--output-dir", str(tmp_path / "ours")]) == 0
    ours, seeds = (
        (tmp_path / "ours" / "full_data.csv").read_bytes(),
        (tmp_path / "seed_full_data.csv").read_bytes(),
    )
    assert ours.split(b"\n", 1)[0] == seeds.split(b"\n", 1)[0]
    assert rows(ours) == rows(seeds)
    assert len(rows(ours)) == 1 + 9822
    assert b'"Modern, complete families"' in ours


def rows(text: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.decode("utf-8"))))
