"""COIL 2000's layout rules: its files are recognised by content (by name where content cannot tell), the
headerless UCI text files, the seed's numbered CSVs, Caravan.csv's codes header with Purchase as No/Yes,
eval files joined row by row to their targets file, and the data dictionary checked against the schema.

The schema (etl/examples/coil2000/schema.json, "etl:layout": "coil2000") gives each field its column's
code in the raw files as the custom property coil2000:code; the last field is the target."""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.clean import MISSING, OK, TRIM, TYPE, constrain, convert, original, reason
from etl.outputs import file_stats
from etl.read import Block, EtlError, FileInfo, bad, blocks, opened, read_sample
from etl.schema import Schema

FIELD_PROPERTIES = ("coil2000:code",)
LABELLED, EVAL, TARGETS, DICTIONARY = "labelled", "eval", "targets", "dictionary"
DATA_ROLES = (LABELLED, EVAL)
PAIRS = {"ticeval2000": "tictgts2000", "test": "gt"}  # eval stem -> targets stem
DICTIONARIES = {"dictionary", "col_info", "ticdatadescr"}
TARGET_WORDS = {"PURCHASE": ("No", "Yes")}  # Caravan.csv's "Purchase" column: No/Yes for the target's 0/1
ELSEWHERE = (
    "; this is one of {} instances (ShardedByS3Key sends each object to one instance): process eval and "
    "targets files on one instance (ProcessingInstanceCount=1) or upload labelled rows"
)


@dataclass
class CoilFile(FileInfo):
    more: dict[str, Any] = field(default_factory=dict)  # its header, target words, blank lines above

    def __post_init__(self) -> None:
        self.folder, _, base = self.name.rpartition("/")
        self.stem = base.lower().removesuffix(".gz").rsplit(".", 1)[0]


class Job(NamedTuple):
    info: CoilFile
    role: str
    companion: CoilFile | None = None  # an eval file's targets file, whose rows join its rows
    companion_role: str = ""


def codes(schema: Schema) -> list[str]:
    """Each field's code in the raw files (its coil2000:code)."""
    found = [str(f.extra.get("coil2000:code", "")).upper() for f in schema.fields]
    if not all(found):
        raise EtlError(f"{schema.source}: every field needs its coil2000:code for the coil2000 layout rules")
    return found


def expected(schema: Schema) -> str:
    n = len(schema.fields)
    return (
        f"expected {schema.title} rows: {n} (labelled), {n - 1} (eval) or 1 (targets) tab- or comma-"
        "separated integer fields a line, maybe under a header (0,1,... or the codes), plain or gzip; or the "
        "data dictionary"
    )


def sniff(found: FileInfo, schema: Schema) -> CoilFile:
    """Recognise a file by its content: its role, layout, delimiter, header and width."""
    info = CoilFile(found.path, found.name)
    n_columns, expect, more = len(schema.fields), expected(schema), info.more
    roles, n_features, code_list = (
        {n_columns: LABELLED, n_columns - 1: EVAL, 1: TARGETS},
        n_columns - 1,
        codes(schema),
    )
    lines = read_sample(info, expect)
    first = lines[0].rstrip(b" \t")
    if info.stem in DICTIONARIES or first.strip(b'" ').upper().startswith(b"DATA DICTIONARY"):
        info.role = info.layout = DICTIONARY
        return info
    info.delimiter, kind = ("\t", "tab") if b"\t" in first else (",", "comma")
    fields = [f.strip().strip('"').strip() for f in first.decode("latin-1").split(info.delimiter)]
    n, upper, target = len(fields), [f.upper() for f in fields], (code_list[-1], *TARGET_WORDS)
    wide, info.layout = n in (n_features, n_columns), "uci" if info.delimiter == "\t" else "csv"
    more.update(header=None, words=None)
    if upper == ["0"] or (wide and upper == [str(i) for i in range(n)]):  # "0": gt.csv's header, or a target
        more["header"], info.layout = "numbered" if wide else "numbered?", "seed"
    elif (wide and upper[:n_features] == code_list[:n_features]) or (n == 1 and upper[0] in target):
        if n == n_columns and upper[-1] not in target:
            names = " or ".join([code_list[-1], *(w.title() for w in TARGET_WORDS)])
            raise bad(info, f"unrecognised last header field {upper[-1]!r}; expected {names}")
        more["header"], info.layout, more["words"] = "named", "named", TARGET_WORDS.get(upper[-1])
    elif n == 1:  # a headerless targets file of words (Yes/No)
        more["words"] = next((w for w in TARGET_WORDS.values() if fields[0] in w), None)
    if not (more["header"] or more["words"]) and 2 * sum(f.lstrip("+-").isdigit() for f in fields) < n:
        shown = f"{first[:80].decode('latin-1')!r} ({n} {kind}-separated fields)"
        raise bad(info, f"unrecognised first line {shown}; {expect}")
    blank_lines, info.header_lines = info.header_lines, info.header_lines + 1 if more["header"] else 0
    below = lines[1:] if more["header"] and more["header"] != "numbered?" else lines
    rows = [line.rstrip(b" ") for line in below if line.strip(b" \t,")][:200]
    info.tab_end = info.delimiter == "\t" and bool(rows) and all(row.endswith(b"\t") for row in rows)
    if not rows:
        raise bad(info, f"no data rows, only a header; {expect}")
    widths = Counter(len(row.rstrip(b" \t").split(info.delimiter.encode())) for row in rows)
    info.ncols = max(widths, key=lambda n: (widths[n], n))  # the usual width, whatever a bad row says
    if info.ncols not in roles:
        raise bad(info, f"unknown file shape: rows have {info.ncols} {kind}-separated fields; {expect}")
    if info.header_lines and n != info.ncols:
        raise bad(info, f"the header has {n} fields but the rows have {info.ncols}; expected the same number")
    info.role, info.columns, more["blank_lines"] = roles[info.ncols], list(range(n_columns)), blank_lines
    return info


def plan(infos: list[CoilFile], schema: Schema, hosts: int) -> list[Job]:
    """The dictionaries, the labelled files, then each eval file with its targets file: paired by name,
    else the only pair in a folder."""
    jobs = [Job(f, DICTIONARY) for f in infos if f.role == DICTIONARY] + [
        Job(f, LABELLED) for f in infos if f.role == LABELLED
    ]
    evals, targets, pairs = [f for f in infos if f.role == EVAL], [f for f in infos if f.role == TARGETS], []
    for ev in list(evals):
        here = [t for t in targets if t.folder == ev.folder]
        named = [t for t in here if t.stem == PAIRS.get(ev.stem)]
        if named or (len(here) == 1 and [e.folder for e in evals].count(ev.folder) == 1):
            pairs.append(Job(ev, EVAL, tg := (named or here)[0], TARGETS))
            evals.remove(ev)
            targets.remove(tg)
            if tg.more["header"] == "numbered?":  # gt.csv's "0" is a header if test.csv has one
                tg.more["header"], tg.layout = (
                    ("numbered" if ev.more["header"] == "numbered" else None),
                    ev.layout,
                )
                tg.header_lines = tg.more["blank_lines"] + 1 if tg.more["header"] else 0
    if left := targets or evals:
        what = "targets file without its eval rows" if targets else "eval rows without their targets file"
        beside = "ticeval2000.txt or test.csv" if targets else "tictgts2000.txt or gt.csv"
        raise bad(left[0], f"{what} (expected {beside} beside it){ELSEWHERE.format(hosts) * (hosts > 1)}")
    return jobs + sorted(pairs, key=lambda p: p.info.name)


def job_blocks(job: Job, schema: Schema, files: list[dict[str, Any]]) -> Iterator[Block]:
    """The blocks of a job: none of a dictionary (checked), an eval file's with their targets' column."""
    if job.role == DICTIONARY:
        return check_dictionary(job.info, schema)
    if job.companion is None:
        return words(blocks(job.info), job.info, schema)
    return paired(job, schema, files)


def words(source: Iterator[Block], info: CoilFile, schema: Schema) -> Iterator[Block]:
    """The target column's words (No/Yes) as their codes; any other value is a note (rejected)."""
    for block in source:
        if not info.more["words"] or not block.columns:
            yield block
            continue
        *features, raw = block.columns
        words, notes = info.more["words"], {}
        read = as_codes(raw, words)
        for j in np.flatnonzero(pc.is_null(read).to_numpy(False)).tolist():
            value = original(raw[j].as_py())
            if value.strip(TRIM.encode()):
                f, shown = schema.fields[-1], value.decode("utf-8", "backslashreplace")
                what = f"{f.name} (column {len(schema.fields)}): {shown!r} is not {' or '.join(words)}"
                notes[j] = (what, f"{f.name}: not {'/'.join(words)}")
        filled = pc.fill_null(read, raw.view(pa.string())).view(pa.binary())
        yield Block([*features, filled], block.lines, block.odd, notes, block.columns)


def as_codes(raw: pa.Array, names: tuple[str, ...]) -> pa.Array:
    """Each word's code as text ("0" for the first word ...), null where the value is not one of them."""
    index = pc.index_in(pc.utf8_trim(raw.view(pa.string()), TRIM), value_set=pa.array(names))
    return pc.cast(index, pa.string())


class Targets:
    """A targets file's values in row order, one byte a row, and the reasons of the bad ones."""

    def __init__(self, info: CoilFile, of: CoilFile, schema: Schema) -> None:
        self.info, self.of, self.at, self.problems, parts = info, of, 0, {}, [np.zeros(0, np.int8)]
        field = schema.fields[-1]
        for block in words(blocks(info), info, schema):
            raw = block.columns[0] if block.columns else pa.array([], pa.binary())
            values, problem = convert(field, raw)
            values = constrain(field, values, problem, False) if len(raw) else values
            problem[list(block.notes or {})] = TYPE  # not one of the words
            rows = np.flatnonzero(problem != MISSING)  # not an empty line
            lines = np.concatenate([block.lines[rows], np.array([o[0] for o in block.odd], dtype=np.int64)])
            order, done = np.argsort(lines, kind="stable"), sum(len(p) for p in parts)
            codes = np.concatenate([pc.fill_null(values, 0).to_numpy(False)[rows], np.zeros(len(block.odd))])
            fails = np.concatenate([problem[rows] != OK, np.ones(len(block.odd), bool)])[order]
            for k, i in zip(np.flatnonzero(fails).tolist(), order[fails].tolist(), strict=True):
                if i >= len(rows):
                    found = (
                        f"expected 1 field, found {block.odd[i - len(rows)][2]}",
                        "target: wrong number of fields",
                    )
                else:
                    note = (block.notes or {}).get(int(rows[i]))
                    found = note or reason(
                        field,
                        len(schema.fields) - 1,
                        int(problem[rows[i]]),
                        raw[int(rows[i])],
                    )
                self.problems[done + k] = (f"{info.name} line {lines[i]}: {found[0]}", found[1])
            parts.append(codes[order].astype(np.int8))
        self.codes = np.concatenate(parts)

    def take(self, n: int) -> int:
        """Hand out the next n targets (for the rows of the eval file `of`): the index of the first one."""
        if self.at + n > len(self.codes):
            rows = sum(len(b.lines) + len(b.odd) for b in blocks(self.of))
            has = f"has {rows} rows but its targets file {self.info.name} has only {len(self.codes)}"
            raise EtlError(f"{self.of.name} {has}; expected one target per eval row")
        self.at += n
        return self.at - n


def paired(job: Job, schema: Schema, files: list[dict[str, Any]]) -> Iterator[Block]:
    """An eval file's blocks, each row (and each row with a wrong number of fields) taking its target; the
    targets file's stats after the eval file's (the last of `files`)."""
    assert job.companion is not None
    files[-1]["paired_with"] = job.companion.name
    files.append(stats := file_stats(job.companion, job.companion_role) | {"paired_with": job.info.name})
    targets = Targets(job.companion, job.info, schema)
    for block in blocks(job.info):
        records = np.sort(np.concatenate([block.lines, np.array([o[0] for o in block.odd], dtype=np.int64)]))
        at = targets.take(len(records)) + np.searchsorted(records, block.lines)
        column = pa.array(targets.codes[at]).cast(pa.string()).view(pa.binary())
        notes = {j: targets.problems[int(a)] for j, a in enumerate(at.tolist()) if int(a) in targets.problems}
        yield Block([*block.columns, column] if block.columns else [], block.lines, block.odd, notes)
    if left := len(targets.codes) - targets.at:
        more = f"{left} more rows than its eval file {job.info.name} ({files[-2]['rows_read']} rows)"
        raise EtlError(f"{targets.info.name} has {more}; expected one target per eval row")
    stats.update(rows_read=len(targets.codes), rows_written=files[-2]["rows_written"])


def check_dictionary(info: FileInfo, schema: Schema) -> Iterator[Block]:
    """The data dictionary must name the same columns, in the same order, as the schema's codes."""
    with opened(info) as stream:
        text = stream.read(4 * 1024 * 1024).decode("cp1252", "replace")  # the UCI file's encoding
    rows = [p for p in (line.strip().strip('"').split() for line in text.splitlines()) if len(p) >= 2]
    found = {int(p[0]): p[1] for p in reversed(rows) if p[0].isdigit() and p[1].isupper() and p[1].isalnum()}
    if not found:
        what = f"expected the dictionary.txt / col_info.csv that describes the {len(schema.fields)} columns"
        raise bad(info, f"not a {schema.title} data dictionary (no 'Nr Name Description' lines); {what}")
    for nr, code in enumerate(codes(schema), 1):
        if found.get(nr) != code:
            got = f"column {nr} is {found.get(nr, 'missing')}, expected {code}"
            raise bad(info, f"data dictionary does not match the schema {schema.title!r}: {got}")
    yield from ()
