"""The seed article's ETL, as the benchmark baseline: read each CSV whole with pandas, join, stack,
rename, decode two columns, write one CSV.

    python bench/etl_baseline.py RAW_DIR OUT_CSV
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from coilgen.dictionary import CODES, COIL, L0_LABELS, L2_LABELS

CLEAN_NAMES = COIL.names


def seed_etl(raw: Path, out: Path) -> None:
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


if __name__ == "__main__":
    seed_etl(Path(sys.argv[1]), Path(sys.argv[2]))
