"""full_data.csv equals what the seed article's ETL writes, for the seed's own layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from etl.etl import CLEAN_NAMES, CODES, L0_LABELS, L2_LABELS, main


def seed_etl(raw: Path, out: Path) -> None:
    """The seed's ETL logic (SM02/SM04 etl.py), in brief: whole-file reads, join, stack, rename, decode."""
    train = pd.read_csv(raw / "train.csv")
    test = pd.read_csv(raw / "test.csv")
    gt = pd.read_csv(raw / "gt.csv")
    train.columns = list(CODES)
    test.columns = list(CODES[:85])
    gt.columns = ["CARAVAN"]
    full = pd.concat([train, pd.concat([test, gt], axis=1)], ignore_index=True)
    full = full.rename(columns=dict(zip(CODES, CLEAN_NAMES, strict=True)))
    full = full.replace(
        {
            "zip_agg_customer_subtype": dict(enumerate(L0_LABELS, 1)),
            "zip_agg_customer_main_type": dict(enumerate(L2_LABELS, 1)),
        }
    )
    full.to_csv(out, index=False)


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
