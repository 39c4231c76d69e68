"""Reading a data file in blocks with pyarrow's streaming CSV reader, each row with its physical line."""

from collections.abc import Iterator
from itertools import chain
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

from etl.layout import FileInfo, bad, opened
from etl.rules import N_COLUMNS

BLOCK_BYTES = 1 << 19  # of input a block of full rows (fewer for fewer fields): memory stays flat


class Block(NamedTuple):
    columns: list[pa.Array]  # the fields (bytes) of the rows with the right number of them
    lines: np.ndarray  # their line numbers
    odd: list[tuple[int, bytes, int]]  # (line, the row as read, its number of fields) of the others


def blocks(info: FileInfo) -> Iterator[Block]:
    """The rows below the file's header, in order (blank lines among the odd rows are left out)."""
    odd: list[tuple[int, bytes, int]] = []

    def invalid(row: pv.InvalidRow) -> str:
        odd.append((row.number, row.text.encode("latin-1"), row.actual_columns - info.tab_end))
        return "skip"

    names = [str(i) for i in range(info.ncols + info.tab_end)]
    read = pv.ReadOptions(column_names=names, skip_rows=info.header_lines, encoding="latin-1")  # any byte
    read.use_threads = False  # one thread: the invalid rows' line numbers
    read.block_size = max(BLOCK_BYTES * info.ncols // N_COLUMNS, 1 << 16)  # a block holds as many rows
    parse = pv.ParseOptions(delimiter=info.delimiter, ignore_empty_lines=False, invalid_row_handler=invalid)
    convert = pv.ConvertOptions(column_types=dict.fromkeys(names, pa.binary()))
    line, sep = info.header_lines + 1, info.delimiter.encode()  # line: the first one not handed out
    with opened(info) as stream:
        try:
            for batch in chain(pv.open_csv(stream, read, parse, convert), [None]):  # None: odd rows left
                lines = line_numbers(line, len(batch) if batch else 0, [o[0] for o in odd])
                line = int(lines[-1]) + 1 if len(lines) else line if batch else 1 << 62
                mine, odd[:] = [o for o in odd if o[0] < line], [o for o in odd if o[0] >= line]
                rows = [o for o in mine if o[1].replace(sep, b"").strip()]
                yield Block(batch.columns[: info.ncols] if batch else [], lines, rows)
        except pa.ArrowInvalid as exc:  # "straddling": a row is longer than a block (the one after `line`)
            at = max([line, *(o[0] + 1 for o in odd)])
            long = f"line {at} is longer than {read.block_size} bytes; expected rows of a few hundred"
            raise bad(info, long if "straddl" in str(exc) else f"not valid CSV ({exc})") from exc


def line_numbers(start: int, n: int, taken: list[int]) -> np.ndarray:
    """The first n line numbers from `start` on not `taken` by the odd rows (pyarrow numbers only those)."""
    gaps = np.array(sorted(t for t in taken if t >= start), dtype=np.int64)
    gaps -= start + np.arange(len(gaps))  # how many rows come before each line taken
    return start + np.arange(n) + np.searchsorted(gaps, np.arange(n), side="right")
