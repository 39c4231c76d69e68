"""Checking and decoding blocks of rows by the rules, with pyarrow.compute and numpy."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.layout import EtlError, FileInfo
from etl.read import Block, blocks
from etl.rules import CLEAN_NAMES, COLUMNS, N_COLUMNS, N_FEATURES, Column, code_table

MISSING, NOT_CODE, HUGE, WRONG = -(2**31), 1 - 2**31, 2 - 2**31, 3 - 2**31  # outside every domain
LO, HI = np.array([(c.lo, c.hi) for c in COLUMNS], dtype=np.int32).T.copy()
TOKENS = pa.array([str(i).encode() for i in range(int(HI.max()) + 1)], pa.binary())
LABELS = {i: pa.array(c.labels) for i, c in enumerate(COLUMNS) if c.labels}
SCHEMA = pa.schema([(n, pa.string() if i in LABELS else pa.int32()) for i, n in enumerate(CLEAN_NAMES)])
Reject = tuple[int, bytes, str, str]  # line, the row as read, reason, category


def original(field: bytes) -> bytes:  # the file's bytes of a field read as latin-1
    return field.decode("utf-8").encode("latin-1")


def parse(raw: bytes, words: tuple[str, ...] | None, first: int) -> int:
    """A value that is not a canonical code: blanks and quotes around it do not count; a sign may lead."""
    text = original(raw).strip(b" \t\r\n\"'")
    if not text:
        return MISSING
    if words is not None:
        return first + words.index(word) if (word := text.decode("latin-1")) in words else NOT_CODE
    digits = text[1:] if text[:1] in (b"+", b"-") else text  # isdigit: ASCII only (int() takes "1_0")
    return NOT_CODE if not digits.isdigit() else HUGE if len(digits.lstrip(b"0")) > 9 else int(text)


def column_codes(columns: list[pa.Array], words: str | None = None) -> np.ndarray:
    """Each value's code (or MISSING / NOT_CODE / HUGE), one row a column; only non-canonical ones parsed."""
    first, labels = code_table(words) if words else (0, None)
    values = pa.chunked_array(columns, pa.binary())
    index = pc.index_in(values, value_set=pa.array(labels) if labels else TOKENS).combine_chunks()
    codes: np.ndarray = pc.fill_null(index, -1).to_numpy() + np.int32(first)
    if len(odd := np.flatnonzero(codes < first)):
        codes[odd] = [parse(raw, labels, first) for raw in values.take(odd).to_pylist()]
    return codes.reshape(len(columns), -1)


def block_codes(block: Block, info: FileInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes of every column of the rules, line numbers, positions in the block) of the non-blank rows."""
    transposed = np.full((N_COLUMNS, len(block.lines)), MISSING, dtype=np.int32)  # columns contiguous
    if block.columns:
        transposed[:N_FEATURES] = column_codes(block.columns[:N_FEATURES])
        if info.ncols == N_COLUMNS:
            transposed[N_FEATURES:] = column_codes(block.columns[N_FEATURES:], info.words)
    blank = np.flatnonzero(transposed[0] == MISSING)  # an empty line reads as all missing
    blank = blank[(transposed[: info.ncols, blank] == MISSING).all(axis=0)]
    rows = np.delete(np.arange(len(block.lines)), blank)
    return (transposed[:, rows] if len(blank) else transposed).T, block.lines[rows], rows


def problem(col: Column, value: int, raw: bytes, words: str | None) -> tuple[str, str]:
    """(reason, category) of a value outside its column's domain."""
    shown, ws = repr(raw.decode("utf-8", "backslashreplace")), code_table(words)[1] if words else ()
    outside = f"{shown[:22] + '...' if value == HUGE else value} is outside its domain {col.lo}-{col.hi}"
    text, category = (
        ("missing value", "missing value") if value == MISSING
        else (f"{shown} is not {' or '.join(ws)}", f"not {'/'.join(ws)}") if value == NOT_CODE and ws
        else (f"{shown} is not an integer", "not an integer") if value == NOT_CODE
        else (outside, "outside its domain")
    )  # fmt: skip
    return f"{col.code} (column {col.nr}): {text}", f"{col.code}: {category}"


class Targets:
    """A targets file's codes in row order, one byte a row: -1 for a bad target, whose reason is kept."""

    def __init__(self, info: FileInfo, of: FileInfo) -> None:
        self.info, self.of, self.at, self.problems, parts = info, of, 0, {}, [np.zeros(0, np.int8)]
        for block in blocks(info):
            raw = block.columns[0] if block.columns else pa.array([], "binary")
            codes, done = column_codes([raw], info.words)[0], sum(len(p) for p in parts)
            rows = np.flatnonzero(codes != MISSING)  # not an empty line
            lines = np.concatenate([block.lines[rows], np.array([o[0] for o in block.odd], dtype=np.int64)])
            values = np.concatenate([codes[rows], np.full(len(block.odd), WRONG)])[order := np.argsort(lines)]
            bad = (values < LO[-1]) | (values > HI[-1])
            fields = [*raw.take(rows).to_pylist(), *(o[2] for o in block.odd)] if bad.any() else []
            for k, i in zip(np.flatnonzero(bad).tolist(), order[bad].tolist(), strict=True):
                found = (f"expected 1 field, found {fields[i]}", "target: wrong number of fields")
                if (v := int(values[k])) != WRONG:
                    found = problem(COLUMNS[-1], v, original(fields[i]), info.words)
                self.problems[done + k] = (f"{info.name} line {lines[i]}: {found[0]}", found[1])
            parts.append(np.where(bad, -1, values).astype(np.int8))
        self.codes = np.concatenate(parts)

    def take(self, n: int) -> int:
        """Hand out the next n targets (for the rows of the eval file `of`): the index of the first one."""
        if self.at + n > len(self.codes):
            rows = sum(len(block_codes(b, self.of)[1]) + len(b.odd) for b in blocks(self.of))
            has = f"has {rows} rows but its targets file {self.info.name} has only {len(self.codes)}"
            raise EtlError(f"{self.of.name} {has}; expected one target per eval row")
        self.at += n
        return self.at - n


def check(block: Block, info: FileInfo, targets: Targets | None = None) -> tuple[np.ndarray, list[Reject]]:
    """(the clean rows' codes, the rejects); an eval file's rows take their targets in order (docs/etl.md)."""
    codes, lines, rows = block_codes(block, info)
    count, words = f"expected {info.ncols} fields, found", [None] * N_FEATURES + [info.words]
    rejects = [(n, row, f"{count} {k}", "wrong number of fields") for n, row, k in block.odd]
    if targets is not None:
        records = np.sort(np.concatenate([lines, np.array([o[0] for o in block.odd], dtype=np.int64)]))
        at = targets.take(len(records)) + np.searchsorted(records, lines)
        codes[:, N_FEATURES] = targets.codes[at]
    bad = np.flatnonzero(((codes < LO) | (codes > HI)).any(axis=1))
    raw = zip(*(map(original, c.take(rows[bad]).to_pylist()) for c in block.columns), strict=True)
    for j, fields in zip(bad.tolist(), raw, strict=True):
        outside = [i for i in np.flatnonzero((codes[j] < LO) | (codes[j] > HI)).tolist() if i < info.ncols]
        found = [problem(COLUMNS[i], int(codes[j, i]), fields[i], words[i]) for i in outside]
        found += [targets.problems[int(at[j])]] if targets is not None and codes[j, -1] < 0 else []
        reason = "; ".join(text for text, _ in found)
        rejects.append((int(lines[j]), info.delimiter.encode().join(fields), reason, found[0][1]))
    return (np.delete(codes, bad, axis=0) if len(bad) else codes), sorted(rejects)


def render(codes: np.ndarray) -> pa.RecordBatch:
    """Clean rows as the output columns: decoded columns as their labels, the others as their codes."""
    arrays = [LABELS[i].take(pa.array(codes[:, i] - c.lo)) if i in LABELS else pa.array(codes[:, i])
              for i, c in enumerate(COLUMNS)]  # fmt: skip
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)
