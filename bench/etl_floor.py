"""The floor for this work: a plain streaming pyarrow read + write of the same bytes, no validation.

python bench/etl_floor.py OUT_CSV IN_CSV...
"""

from __future__ import annotations

import sys

import pyarrow.csv as pv


def copy(out: str, inputs: list[str]) -> None:
    for i, path in enumerate(inputs):
        reader = pv.open_csv(path, read_options=pv.ReadOptions(block_size=1 << 21))
        with pv.CSVWriter(f"{out}.{i}", reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)


if __name__ == "__main__":
    copy(sys.argv[1], sys.argv[2:])
