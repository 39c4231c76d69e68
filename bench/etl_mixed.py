"""A mixed-type CSV for the ETL benchmark: text, decimal, date, yes/no, category and integer columns.

    python bench/etl_mixed.py --rows N --out DIR    (DIR/customers.csv; its schema: mixed_schema.json)

Written in chunks with pyarrow's CSV writer (memory stays flat), deterministic for a row count.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

CHUNK = 250_000
NAMES = np.array(
    ["Ann Lee", "Bo Chen", "Cy Diaz", "Di Evans", "Eve Fox, Jr.", "Flo Gray", "Gus Hill", "Hal Ito"]
)
PLANS = np.array(["basic", "premium", "family"])
COUNTRIES = np.array(["NL", "DE", "FR", "GB", "US", "ES"])


def write(rows: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2000)
    with pv.CSVWriter(out / "customers.csv", table(rng, 0, 0).schema) as writer:
        for start in range(0, rows, CHUNK):
            writer.write_table(table(rng, start, min(CHUNK, rows - start)))


def table(rng: np.random.Generator, start: int, n: int) -> pa.Table:
    return pa.table(
        {
            "customer_id": np.arange(start + 1, start + n + 1),
            "name": NAMES[rng.integers(0, len(NAMES), n)],
            "balance": np.round(rng.gamma(2.0, 150.0, n), 2),
            "joined": pa.array(rng.integers(14000, 20000, n).astype("int32"), pa.date32()),
            "churned": np.where(rng.random(n) < 0.2, "yes", "no"),
            "plan": PLANS[rng.integers(0, len(PLANS), n)],
            "age": rng.integers(18, 90, n),
            "country": COUNTRIES[rng.integers(0, len(COUNTRIES), n)],
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write(args.rows, args.out)
