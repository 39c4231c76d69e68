"""Which files a run reads, what each one is (by content; by name where content cannot tell), and in order."""

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from contract.datafiles import not_data
from etl.rules import CODES, COLUMNS, N_COLUMNS, N_FEATURES, TARGET_WORDS, code_table

LABELLED, EVAL, TARGETS, DICTIONARY = "labelled", "eval", "targets", "dictionary"
ROLES = {N_COLUMNS: LABELLED, N_FEATURES: EVAL, 1: TARGETS}
PAIRS = {"ticeval2000": "tictgts2000", "test": "gt"}  # eval stem -> targets stem
DICTIONARIES = {"dictionary", "col_info", "ticdatadescr"}
BOM, GZIP, ZIP, SAMPLE = b"\xef\xbb\xbf", b"\x1f\x8b", b"PK\x03\x04", 64 * 1024
EXPECTED = (
    f"expected COIL 2000 rows: {N_COLUMNS} (labelled), {N_FEATURES} (eval) or 1 (targets) tab- or comma-"
    "separated integer fields a line, maybe under a header (0,1,... or the codes), plain or gzip; or the "
    "data dictionary"
)
ELSEWHERE = (
    "; this is one of {} instances (ShardedByS3Key sends each object to one instance): process eval and "
    "targets files on one instance (ProcessingInstanceCount=1) or upload labelled rows"
)


class EtlError(Exception):
    """Bad input or a failed run: the message is the one line the user sees."""


@dataclass
class FileInfo:
    path: Path
    name: str  # relative to the input folder
    gzip: bool = False
    bom: bool = False
    role: str = ""
    layout: str = ""  # uci | seed | named | csv | dictionary
    delimiter: str = ","
    ncols: int = 0
    header: str | None = None  # numbered | named | "numbered?" (gt.csv's "0": decided when paired)
    header_lines: int = 0  # the physical lines down to the header
    tab_end: bool = False  # the rows end in a tab, which is not a field (as the old reader had it)
    words: str | None = None  # the code table the target's words are read through (TARGET_WORDS)

    def __post_init__(self) -> None:
        self.folder, _, base = self.name.rpartition("/")
        self.stem = base.lower().removesuffix(".gz").rsplit(".", 1)[0]


def bad(info: FileInfo, message: str) -> EtlError:  # the one-line error of a file
    return EtlError(f"{info.name}: {message}")


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


def read_sample(info: FileInfo) -> list[bytes]:
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
        raise bad(info, f"binary content, not text; {EXPECTED}")
    lines = text.splitlines()
    return lines[:-1] if len(sample) == SAMPLE and len(lines) > 1 else lines  # the last may be cut off


def sniff(info: FileInfo) -> FileInfo:
    """Recognise a file by its content: its role, layout, delimiter, header and width."""
    lines = read_sample(info)
    if (at := next((i for i, line in enumerate(lines) if line.strip(b" \t,")), None)) is None:
        raise bad(info, f"no data rows (the file holds only blank lines); {EXPECTED}")
    first = lines[at].rstrip(b" \t")
    if info.stem in DICTIONARIES or first.strip(b'" ').upper().startswith(b"DATA DICTIONARY"):
        info.role = info.layout = DICTIONARY
        return info
    info.delimiter, kind = ("\t", "tab") if b"\t" in first else (",", "comma")
    fields = [f.strip().strip('"').strip() for f in first.decode("latin-1").split(info.delimiter)]
    n, upper, target = len(fields), [f.upper() for f in fields], (CODES[-1], *TARGET_WORDS)
    wide, info.layout = n in (N_FEATURES, N_COLUMNS), "uci" if info.delimiter == "\t" else "csv"
    if upper == ["0"] or (wide and upper == [str(i) for i in range(n)]):  # "0": gt.csv's header, or a target
        info.header, info.layout = "numbered" if wide else "numbered?", "seed"
    elif (wide and upper[:N_FEATURES] == list(CODES[:N_FEATURES])) or (n == 1 and upper[0] in target):
        if n == N_COLUMNS and upper[-1] not in target:
            names = " or ".join([CODES[-1], *(w.title() for w in TARGET_WORDS)])
            raise bad(info, f"unrecognised last header field {upper[-1]!r}; expected {names}")
        info.header, info.layout, info.words = "named", "named", TARGET_WORDS.get(upper[-1])
    elif n == 1:  # a headerless targets file of words (Yes/No)
        info.words = next((t for t in TARGET_WORDS.values() if fields[0] in code_table(t)[1]), None)
    if not (info.header or info.words) and 2 * sum(f.lstrip("+-").isdigit() for f in fields) < n:
        shown = f"{first[:80].decode('latin-1')!r} ({n} {kind}-separated fields)"
        raise bad(info, f"unrecognised first line {shown}; {EXPECTED}")
    info.header_lines = at + 1 if info.header else 0  # "numbered?": undone unless paired with a numbered file
    below = lines[info.header_lines if info.header != "numbered?" else 0 :]
    rows = [line.rstrip(b" ") for line in below if line.strip(b" \t,")][:200]
    info.tab_end = info.delimiter == "\t" and all(row.endswith(b"\t") for row in rows)
    if not rows:
        raise bad(info, f"no data rows, only a header; {EXPECTED}")
    widths = Counter(len(row.rstrip(b" \t").split(info.delimiter.encode())) for row in rows)
    info.ncols = max(widths, key=lambda n: (widths[n], n))  # the usual width, whatever a bad row says
    if info.ncols not in ROLES:
        raise bad(info, f"unknown file shape: rows have {info.ncols} {kind}-separated fields; {EXPECTED}")
    if info.header_lines and n != info.ncols:
        raise bad(info, f"the header has {n} fields but the rows have {info.ncols}; expected the same number")
    info.role = ROLES[info.ncols]
    return info


class Plan(NamedTuple):
    labelled: list[FileInfo]
    pairs: list[tuple[FileInfo, FileInfo]]
    dictionaries: list[FileInfo]


def make_plan(infos: list[FileInfo], hosts: int) -> Plan:
    """Pair each eval file with its targets file: by name, else the only pair in a folder."""
    plan = Plan([f for f in infos if f.role == LABELLED], [], [f for f in infos if f.role == DICTIONARY])
    evals, targets = [f for f in infos if f.role == EVAL], [f for f in infos if f.role == TARGETS]
    for ev in list(evals):
        here = [t for t in targets if t.folder == ev.folder]
        named = [t for t in here if t.stem == PAIRS.get(ev.stem)]
        if named or (len(here) == 1 and [e.folder for e in evals].count(ev.folder) == 1):
            plan.pairs.append((ev, tg := (named or here)[0]))
            evals.remove(ev)
            targets.remove(tg)
            if tg.header == "numbered?":  # gt.csv's "0" is a header if test.csv has one
                tg.header, tg.layout = ("numbered" if ev.header == "numbered" else None), ev.layout
                tg.header_lines = tg.header_lines if tg.header else 0
    if left := targets or evals:
        what = "targets file without its eval rows" if targets else "eval rows without their targets file"
        beside = "ticeval2000.txt or test.csv" if targets else "tictgts2000.txt or gt.csv"
        raise bad(left[0], f"{what} (expected {beside} beside it){ELSEWHERE.format(hosts) * (hosts > 1)}")
    plan.pairs.sort(key=lambda p: p[0].name)
    return plan


def check_dictionary(info: FileInfo) -> None:
    """The data dictionary must name the same columns, in the same order, as the rules."""
    with opened(info) as stream:
        text = stream.read(4 * 1024 * 1024).decode("cp1252", "replace")  # the UCI file's encoding
    rows = [p for p in (line.strip().strip('"').split() for line in text.splitlines()) if len(p) >= 2]
    found = {int(p[0]): p[1] for p in reversed(rows) if p[0].isdigit() and p[1].isupper() and p[1].isalnum()}
    if not found:
        what = f"expected the dictionary.txt / col_info.csv that describes the {N_COLUMNS} columns"
        raise bad(info, f"not a COIL 2000 data dictionary (no 'Nr Name Description' lines); {what}")
    for col in (c for c in COLUMNS if found.get(c.nr) != c.code):
        got = f"column {col.nr} is {found.get(col.nr, 'missing')}, expected {col.code}"
        raise bad(info, f"data dictionary does not match the built-in schema: {got}")
