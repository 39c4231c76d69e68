"""full_data.csv equals what the seed article's ETL writes, for the seed's own layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from etl.etl import main

BASELINE = Path(__file__).resolve().parents[2] / "bench" / "etl_baseline.py"


def seed_etl(raw: Path, out: Path) -> None:
    """The seed's ETL logic (SM02/SM04 etl.py): the benchmark's baseline script, run as it is."""
    subprocess.run([sys.executable, str(BASELINE), str(raw), str(out)], check=True, timeout=120)


@pytest.mark.parametrize("engine", ["arrow", "python"])
def test_full_data_is_byte_identical_to_the_seed_etl_output(dataset, tmp_path, engine):
    """Given the seed's files (train.csv, test.csv, gt.csv, col_info.csv) at the real data's size
    When our ETL and the seed's ETL both run on them
    Then the two full_data.csv files are byte-identical (9822 rows: labelled first, then eval + targets)"""
    data = dataset(layout="seed", rows=9822, seed=2000)
    seed_etl(data.out_dir, tmp_path / "seed_full_data.csv")
    assert (
        main(["--input-dir", str(data.out_dir), "--output-dir", str(tmp_path / "ours"), "--engine", engine])
        == 0
    )
    ours = (tmp_path / "ours" / "full_data.csv").read_bytes()
    assert ours == (tmp_path / "seed_full_data.csv").read_bytes()
    assert ours.count(b"\n") == 1 + 9822
    assert b'"High Income, expensive child"' in ours or b'"Modern, complete families"' in ours
