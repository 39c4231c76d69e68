"""The files of a run, each read in blocks by pyarrow's streaming reader with its rows' line numbers; the
default layout (a CSV with a header row). An example's layout.py provides the same five names instead."""

import csv
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from contract.datafiles import not_data
from etl.schema import Schema

BOM, GZIP, ZIP, SAMPLE = b"\xef\xbb\xbf", b"\x1f\x8b", b"PK\x03\x04", 64 * 1024
BLOCK_BYTES = 1 << 19  # of input a block of rows of 8 or more fields: memory stays flat (a run or a row)
DATA = "data"
DATA_ROLES = (DATA,)  # the roles of the files whose rows are counted (a layout may read others)


class EtlError(Exception):  # bad input or a failed run: the message is the one line the user sees
    pass


@dataclass
class FileInfo:
    path: Path
    name: str  # relative to the input folder
    gzip: bool = False
    bom: bool = False
    role: str = DATA
    layout: str = "csv"
    delimiter: str = ","
    ncols: int = 0
    header_lines: int = 0  # the physical lines down to the header
    columns: list[int | None] = field(default_factory=list)  # each schema field's column (None: absent)
    tab_end: bool = False  # the rows end in a tab, which is not a field


class Job(NamedTuple):
    info: FileInfo
    role: str


class Block(NamedTuple):
    columns: list[pa.Array]  # the fields (bytes as latin-1 text) of the rows with the right number of them
    lines: np.ndarray  # their line numbers
    odd: list[tuple[int, bytes, int]]  # (line, the row as read, its number of fields) of the others
    notes: dict[int, tuple[str, str]] | None = None  # row -> (reason, category): rejected by the layout
    read: list[pa.Array] | None = None  # the columns as read, where the layout changed some (for rejects)


def bad(info: FileInfo, message: str) -> EtlError:  # the one-line error of a file
    return EtlError(f"{info.name}: {message}")


def expected(schema: Schema) -> str:  # what the layout reads, for the messages
    return f"expected {schema.title} data: a CSV file with a header row naming the schema's fields"


@contextmanager
def opened(info: FileInfo) -> Iterator[pa.NativeFile]:
    """The file's text (gunzipped, past a BOM); a read error, there or while reading, is a one-line error."""
    try:
        with pa.input_stream(str(info.path), compression="gzip" if info.gzip else None) as stream:
            stream.read(len(BOM) if info.bom else 0)
            yield stream
    except OSError as exc:
        gz = "; expected a valid gzip file" if info.gzip else ""
        raise bad(info, f"cannot be read{' as gzip' * info.gzip} ({exc}){gz}") from exc


def discover(folder: Path, url: str | None, sharded: bool) -> tuple[list[FileInfo], list[Any], str | None]:
    """The data files (sorted), the files ignored (with why) and the one object's name for an object URL."""
    if not folder.is_dir():
        raise EtlError(f"input directory {folder} does not exist; expected the downloaded input data there")
    wanted, found, ignored = url.rsplit("/", 1)[-1] if url and not url.endswith("/") else None, [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not_data(d) is None)
        for path in (Path(root) / f for f in sorted(files)):
            rel = path.relative_to(folder).as_posix()
            size = path.stat().st_size
            reason = f"not the input object {wanted}" if wanted not in (None, rel) else not_data(rel, size)
            (ignored.append({"path": rel, "reason": reason}) if reason else found.append(FileInfo(path, rel)))
    why = next((i["reason"] for i in ignored if i["path"] == wanted), None)
    if wanted is not None and not found and why:
        raise EtlError(f"input object {wanted} (from --input-url) is a {why}, not data; expected a data file")
    if wanted is not None and not found and not sharded:
        where = f"(from --input-url {url}) is not in {folder}; expected it downloaded there"
        raise EtlError(f"input object {wanted} {where}")
    return found, ignored, wanted  # sharded, a missing object went to another instance


def read_sample(info: FileInfo, expect: str) -> list[bytes]:
    """The first lines of the file (split as pyarrow's reader splits: at LF, CRLF or CR)."""
    with open(info.path, "rb") as f:
        magic = f.read(4)
    if magic == ZIP:
        raise bad(info, "is a zip archive; expected the data files themselves (plain or gzip)")
    info.gzip = magic[:2] == GZIP
    with opened(info) as stream:
        sample: bytes = stream.read(SAMPLE)
    info.bom, text = sample.startswith(BOM), sample.removeprefix(BOM)
    if b"\x00" in text or len(text.translate(None, bytes([9, 10, 13, *range(32, 127)]))) > len(text) // 10:
        raise bad(info, f"binary content, not text; {expect}")
    lines = text.splitlines()
    lines = lines[:-1] if len(sample) == SAMPLE and len(lines) > 1 else lines  # the last may be cut off
    if (at := next((i for i, line in enumerate(lines) if line.strip(b" \t,")), None)) is None:
        raise bad(info, f"no data rows (the file holds only blank lines); {expect}")
    info.header_lines = at  # blank lines above the first row (or header)
    return lines[at:]


def sniff(info: FileInfo, schema: Schema) -> FileInfo:
    """A CSV file (comma- or tab-separated) whose header row names the schema's fields (its fieldsMatch)."""
    first = read_sample(info, expected(schema))[0].decode("utf-8", "replace")
    info.delimiter = "\t" if "\t" in first else ","
    header = next(csv.reader([first], delimiter=info.delimiter))
    info.ncols, info.header_lines, names = len(header), info.header_lines + 1, schema.names
    how = f"as the schema {schema.title!r} says (fieldsMatch {schema.match})"
    missing, extra = [n for n in names if n not in header], [h for h in header if h not in names]
    problem = (
        f"names {dup[0]!r} twice" if (dup := [h for h in header if header.count(h) > 1])
        else f"is {first[:80]!r}, not {','.join(names)[:80]!r}" if schema.match == "exact" and header != names
        else f"has no column {missing[0]!r}" if missing and schema.match in ("equal", "subset")
        else f"has a column {extra[0]!r} not in the schema" if extra and schema.match in ("equal", "superset")
        else "names none of the schema's fields" if len(missing) == len(names)
        else ""
    )  # fmt: skip
    if problem:
        raise bad(info, f"the header {problem}, {how}; {expected(schema)}")
    info.columns = [header.index(n) if n in header else None for n in names]
    return info


def plan(infos: list[FileInfo], schema: Schema, hosts: int) -> list[Job]:  # every file, in name order
    return [Job(i, DATA) for i in infos]


def job_blocks(job: Job, schema: Schema, files: list[dict[str, Any]]) -> Iterator[Block]:
    return blocks(job.info)


def block_size(ncols: int) -> int:
    """BLOCK_BYTES; less for a narrower file (COIL's targets: 64 KiB), whose blocks hold as many rows."""
    return max(1 << 16, BLOCK_BYTES * min(ncols, 8) // 8)


def reader(info: FileInfo, stream: pa.NativeFile, odd: list[Any], threads: bool) -> Any:
    """pyarrow's streaming reader of the rows below the header, every field as bytes (latin-1 reads any
    byte); a row of another width goes to `odd` as (line or None, the row as read, its width)."""

    def invalid(row: pv.InvalidRow) -> str:
        odd.append((row.number, row.text.encode("latin-1"), row.actual_columns - info.tab_end))
        return "skip"

    names = [str(i) for i in range(info.ncols + info.tab_end)]
    read = pv.ReadOptions(column_names=names, skip_rows=info.header_lines, encoding="latin-1")
    read.use_threads, read.block_size = threads, block_size(info.ncols)
    parse = pv.ParseOptions(delimiter=info.delimiter, ignore_empty_lines=False, invalid_row_handler=invalid)
    return pv.open_csv(stream, read, parse, pv.ConvertOptions(column_types=dict.fromkeys(names, pa.binary())))


def blocks(info: FileInfo) -> Iterator[Block]:
    """The rows below the file's header, in order (blank lines among the odd rows are left out). Parsed
    on every core while each line is a row; from the first block that may hold a row of another width
    (whose line number pyarrow gives only on one thread) or a parse error, again on one thread, the rows
    already handed out parsed and dropped (pyarrow skips rows only within a block)."""
    first, sep = 0, info.delimiter.encode()  # first: the first line not handed out
    for threads in (True, False):
        odd: list[Any] = []
        line = info.header_lines + 1  # the first line of the next batch
        with opened(info) as stream:
            try:
                for batch in chain(reader(info, stream, odd, threads), [None]):  # None: odd rows left
                    if threads and odd:
                        break
                    taken = odd[:]  # the odd rows of this block (on every core: none)
                    del odd[: len(taken)]
                    lines = line_numbers(line, len(batch) if batch else 0, [o[0] for o in taken])
                    line = int(max([line - 1, *lines[-1:], *(o[0] for o in taken)])) + 1
                    k = int(np.searchsorted(lines, first))  # rows handed out already
                    rows = [o for o in taken if o[1].replace(sep, b"").strip()]
                    columns = batch.slice(k).columns[: info.ncols] if batch else []
                    yield without_blanks(Block(columns, lines[k:], rows))
                    first = line
                else:
                    return
            except pa.ArrowInvalid as exc:  # "straddling": a row longer than a block (the one after `line`)
                if not threads:
                    at, size = max([line, *(o[0] + 1 for o in odd)]), block_size(info.ncols)
                    long = f"line {at} is longer than {size} bytes; expected rows of a few hundred"
                    raise bad(info, long if "straddl" in str(exc) else f"not valid CSV ({exc})") from exc


def without_blanks(block: Block) -> Block:
    """The block without its blank rows (every field empty or blanks): they are not rows."""
    trim: Callable[[pa.Array], pa.Array] = lambda c: pc.utf8_trim(c.view(pa.string()), " \t")  # noqa: E731
    blank: Callable[[pa.Array], np.ndarray] = lambda c: pc.equal(pc.utf8_length(trim(c)), 0).to_numpy(False)  # noqa: E731
    if not block.columns or not len(rows := np.flatnonzero(blank(block.columns[0]))):
        return block
    rows = rows[np.all([blank(c.take(rows)) for c in block.columns], axis=0)]
    keep = pa.array(np.delete(np.arange(len(block.lines)), rows))
    return Block([c.take(keep) for c in block.columns], np.delete(block.lines, rows), block.odd)


def line_numbers(start: int, n: int, taken: list[int]) -> np.ndarray:
    """The first n line numbers from `start` on not `taken` by the odd rows (pyarrow numbers only those)."""
    gaps = np.array(sorted(t for t in taken if t >= start), dtype=np.int64)
    gaps -= start + np.arange(len(gaps))  # how many rows come before each line taken
    return start + np.arange(n) + np.searchsorted(gaps, np.arange(n), side="right")
