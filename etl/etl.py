#!/usr/bin/env python3
"""Clean the COIL 2000 insurance data: the processing step of the pipeline.

    python3 etl.py --input-dir D --output-dir O [--input-url URL] [--max-reject-fraction 0.01]

Reads every data file it recognises in D (the UCI tab-separated files, the seed's CSVs with a numbered
header, a named CSV with the 85 codes + Purchase Yes/No; plain or gzip; LF or CRLF), joins eval rows to
their targets by row order, validates each value against its column's domain and writes to O:

- ``full_data.csv``: 86 clean columns (customer subtype and main type decoded to their labels),
  labelled rows first, then eval rows with their targets;
- ``rejects.csv``: every rejected row as read, with source file, line number and reason;
- ``report.json``: per file rows read / written / rejected by reason, totals, durations.

With several processing instances (ShardedByS3Key) each instance names its files after its host:
``full_data-<host>.csv``, ``rejects-<host>.csv``, ``report-<host>.json``.

Exit 0 on success; otherwise exit 1 (bad input, too many rejects) or 2 (bad arguments) with one line
on stderr saying what is wrong. A failed run leaves no full_data file behind.

This file is uploaded as-is to the scikit-learn processing image (Python 3.9, pandas 1.1.3, pyarrow
14.0.1), so it uses the standard library only, plus pyarrow for speed when it is importable.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import gzip
import importlib
import importlib.util
import io
import json
import logging
import os
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple

LOG = logging.getLogger("etl")

DEFAULT_INPUT_DIR = "/opt/ml/processing/input/data"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output"
RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"
MARKER_NAMES = frozenset({"_SUCCESS"})
SNIFF_BYTES = 64 * 1024
MAX_LINE = 1024 * 1024  # a COIL row is ~200 bytes: a longer "line" is not this data
BLOCK_BYTES = 2 * 1024 * 1024  # arrow engine: bytes of input per batch
TARGET_BLOCK_BYTES = 64 * 1024  # a targets line is ~2 bytes: ~32k rows a block, like a data block
BATCH_LINES = 20_000  # python engine: lines per batch
PROGRESS_SECONDS = 10.0

# --- the schema (../shared/reference/coil2000.md) -------------------------------------------------

# nr code clean_name domain; domains: L0..L4 code tables, lo-hi ranges, "count" (0-99).
_COLUMN_TABLE = """
1 MOSTYPE zip_agg_customer_subtype L0
2 MAANTHUI zip_agg_number_of_houses 1-10
3 MGEMOMV zip_agg_avg_size_household 1-6
4 MGEMLEEF zip_agg_avg_age L1
5 MOSHOOFD zip_agg_customer_main_type L2
6 MGODRK zip_agg_roman_catholic L3
7 MGODPR zip_agg_protestant L3
8 MGODOV zip_agg_other_religion L3
9 MGODGE zip_agg_no_religion L3
10 MRELGE zip_agg_married L3
11 MRELSA zip_agg_living_together L3
12 MRELOV zip_agg_other_relation L3
13 MFALLEEN zip_agg_singles L3
14 MFGEKIND zip_agg_household_without_children L3
15 MFWEKIND zip_agg_household_with_children L3
16 MOPLHOOG zip_agg_high_level_education L3
17 MOPLMIDD zip_agg_medium_level_education L3
18 MOPLLAAG zip_agg_lower_level_education L3
19 MBERHOOG zip_agg_high_status L3
20 MBERZELF zip_agg_entrepreneur L3
21 MBERBOER zip_agg_farmer L3
22 MBERMIDD zip_agg_middle_management L3
23 MBERARBG zip_agg_skilled_labourers L3
24 MBERARBO zip_agg_unskilled_labourers L3
25 MSKA zip_agg_social_class_a L3
26 MSKB1 zip_agg_social_class_b1 L3
27 MSKB2 zip_agg_social_class_b2 L3
28 MSKC zip_agg_social_class_c L3
29 MSKD zip_agg_social_class_d L3
30 MHHUUR zip_agg_rented_house L3
31 MHKOOP zip_agg_home_owners L3
32 MAUT1 zip_agg_1_car L3
33 MAUT2 zip_agg_2_cars L3
34 MAUT0 zip_agg_no_car L3
35 MZFONDS zip_agg_national_health_service L3
36 MZPART zip_agg_private_health_insurance L3
37 MINKM30 zip_agg_income_<_30.000 L3
38 MINK3045 zip_agg_income_30-45.000 L3
39 MINK4575 zip_agg_income_45-75.000 L3
40 MINK7512 zip_agg_income_75-122.000 L3
41 MINK123M zip_agg_income_>123.000 L3
42 MINKGEM zip_agg_average_income 0-9
43 MKOOPKLA zip_agg_purchasing_power_class 0-9
44 PWAPART contri_private_third_party_ins L4
45 PWABEDR contri_third_party_ins_(firms) L4
46 PWALAND contri_third_party_ins_(agriculture) L4
47 PPERSAUT contri_car_policies L4
48 PBESAUT contri_delivery_van_policies L4
49 PMOTSCO contri_motorcycle/scooter_policies L4
50 PVRAAUT contri_lorry_policies L4
51 PAANHANG contri_trailer_policies L4
52 PTRACTOR contri_tractor_policies L4
53 PWERKT contri_agricultural_machines_policies L4
54 PBROM contri_moped_policies L4
55 PLEVEN contri_life_ins L4
56 PPERSONG contri_private_accident_ins_policies L4
57 PGEZONG contri_family_accidents_ins_policies L4
58 PWAOREG contri_disability_ins_policies L4
59 PBRAND contri_fire_policies L4
60 PZEILPL contri_surfboard_policies L4
61 PPLEZIER contri_boat_policies L4
62 PFIETS contri_bicycle_policies L4
63 PINBOED contri_property_ins_policies L4
64 PBYSTAND contri_ss_ins_policies L4
65 AWAPART nbr_private_third_party_ins count
66 AWABEDR nbr_third_party_ins_(firms) count
67 AWALAND nbr_third_party_ins_(agriculture) count
68 APERSAUT nbr_car_policies count
69 ABESAUT nbr_delivery_van_policies count
70 AMOTSCO nbr_motorcycle/scooter_policies count
71 AVRAAUT nbr_lorry_policies count
72 AAANHANG nbr_trailer_policies count
73 ATRACTOR nbr_tractor_policies count
74 AWERKT nbr_agricultural_machines_policies count
75 ABROM nbr_moped_policies count
76 ALEVEN nbr_life_ins count
77 APERSONG nbr_private_accident_ins_policies count
78 AGEZONG nbr_family_accidents_ins_policies count
79 AWAOREG nbr_disability_ins_policies count
80 ABRAND nbr_fire_policies count
81 AZEILPL nbr_surfboard_policies count
82 APLEZIER nbr_boat_policies count
83 AFIETS nbr_bicycle_policies count
84 AINBOED nbr_property_ins_policies count
85 ABYSTAND nbr_ss_ins_policies count
86 CARAVAN nbr_mobile_home_policies 0-1
"""

L0_LABELS = (
    "High Income, expensive child",
    "Very Important Provincials",
    "High status seniors",
    "Affluent senior apartments",
    "Mixed seniors",
    "Career and childcare",
    "Dinki's (double income no kids)",
    "Middle class families",
    "Modern, complete families",
    "Stable family",
    "Family starters",
    "Affluent young families",
    "Young all american family",
    "Junior cosmopolitan",
    "Senior cosmopolitans",
    "Students in apartments",
    "Fresh masters in the city",
    "Single youth",
    "Suburban youth",
    "Etnically diverse",
    "Young urban have-nots",
    "Mixed apartment dwellers",
    "Young and rising",
    "Young, low educated",
    "Young seniors in the city",
    "Own home elderly",
    "Seniors in apartments",
    "Residential elderly",
    "Porchless seniors: no front yard",
    "Religious elderly singles",
    "Low income catholics",
    "Mixed seniors",
    "Lower class large families",
    "Large family, employed child",
    "Village families",
    "Couples with teens 'Married with children'",
    "Mixed small town dwellers",
    "Traditional families",
    "Large religous families",
    "Large family farms",
    "Mixed rurals",
)
L2_LABELS = (
    "Successful hedonists",
    "Driven Growers",
    "Average Family",
    "Career Loners",
    "Living well",
    "Cruising Seniors",
    "Retired and Religeous",
    "Family with grown ups",
    "Conservative families",
    "Farmers",
)
DOMAINS: Dict[str, Tuple[int, int]] = {
    "L0": (1, 41),
    "L1": (1, 6),
    "L2": (1, 10),
    "L3": (0, 9),
    "L4": (0, 9),
    "count": (0, 99),
}


@dataclass(frozen=True)
class Column:
    nr: int
    code: str
    clean_name: str
    domain: str
    lo: int
    hi: int


def _parse_columns() -> Tuple[Column, ...]:
    columns = []
    for line in _COLUMN_TABLE.strip().splitlines():
        nr, code, clean_name, domain = line.split(" ")
        if domain in DOMAINS:
            lo, hi = DOMAINS[domain]
        else:
            lo_text, hi_text = domain.split("-")
            lo, hi = int(lo_text), int(hi_text)
        columns.append(Column(int(nr), code, clean_name, domain, lo, hi))
    return tuple(columns)


COLUMNS = _parse_columns()
CODES = tuple(c.code for c in COLUMNS)
CLEAN_NAMES = tuple(c.clean_name for c in COLUMNS)
N_FEATURES = 85  # columns 1-85; column 86 (CARAVAN) is the target
N_COLUMNS = 86
DECODED = {0: L0_LABELS, 4: L2_LABELS}  # column index -> labels (code 1 = labels[0])
MAX_TOKEN = 99  # the largest value any column allows


def csv_field(text: str) -> str:
    """A field as pandas' to_csv (csv.QUOTE_MINIMAL) writes it."""
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


OUTPUT_HEADER = (",".join(csv_field(n) for n in CLEAN_NAMES) + "\n").encode()

# --- errors ---------------------------------------------------------------------------------------


class EtlError(Exception):
    """Bad input or a failed run: the message is the one line the user sees."""


# --- value validation (shared by both engines) ----------------------------------------------------

TARGET_01 = "0/1"
TARGET_YES_NO = "Yes/No"


def _output_token(index: int, value: int) -> bytes:
    labels = DECODED.get(index)
    if labels is not None:
        return csv_field(labels[value - 1]).encode()
    return str(value).encode()


# For each column, the canonical input tokens it accepts, mapped to the output token.
TOKEN_MAPS: Tuple[Dict[bytes, bytes], ...] = tuple(
    {str(v).encode(): _output_token(i, v) for v in range(c.lo, c.hi + 1)} for i, c in enumerate(COLUMNS)
)
TARGET_MAPS = {
    TARGET_01: {b"0": b"0", b"1": b"1"},
    TARGET_YES_NO: {b"No": b"0", b"Yes": b"1"},
}


def _show(raw: bytes) -> str:
    return repr(raw.decode("utf-8", "backslashreplace"))


def check_value(index: int, raw: bytes, target_kind: str = TARGET_01) -> Tuple[Optional[bytes], str, str]:
    """Validate one value of column `index` (0-based): (output token or None, reason, reason category)."""
    col = COLUMNS[index]
    where = "%s (column %d)" % (col.code, col.nr)
    token_map = TARGET_MAPS[target_kind] if index == N_FEATURES else TOKEN_MAPS[index]
    token = token_map.get(raw)
    if token is not None:
        return token, "", ""
    text = raw.strip(b" \t\r\n\"'")
    token = token_map.get(text)
    if token is not None:
        return token, "", ""
    if not text:
        return None, "%s: missing value" % where, "%s: missing value" % col.code
    if index == N_FEATURES and target_kind == TARGET_YES_NO:
        return None, "%s: %s is not Yes or No" % (where, _show(raw)), "%s: not Yes/No" % col.code
    digits = text[1:] if text[:1] in (b"+", b"-") else text
    if not digits.isdigit():  # bytes.isdigit: ASCII digits only (int() would also take "1_0")
        return None, "%s: %s is not an integer" % (where, _show(raw)), "%s: not an integer" % col.code
    significant = digits.lstrip(b"0")
    if len(significant) > 9:  # far outside every domain; int() refuses strings over 4,300 digits
        return (
            None,
            "%s: %s (%d digits) is outside its domain %d-%d"
            % (where, _show(text[:20] + b"..."), len(digits), col.lo, col.hi),
            "%s: outside its domain" % col.code,
        )
    value = int(significant or b"0") * (-1 if text[:1] == b"-" else 1)
    if col.lo <= value <= col.hi:
        return token_map[str(value).encode()], "", ""
    return (
        None,
        "%s: %d is outside its domain %d-%d" % (where, value, col.lo, col.hi),
        "%s: outside its domain" % col.code,
    )


@dataclass
class RowResult:
    line: Optional[bytes]  # the output line (without its end) or None when rejected
    reason: str = ""
    category: str = ""


def check_row(fields: Sequence[bytes], target_kind: str, expected: int) -> RowResult:
    """Validate a split row of `expected` fields (86, or 85 for an eval row without its target)."""
    if len(fields) != expected:
        return RowResult(
            None, "expected %d fields, found %d" % (expected, len(fields)), "wrong number of fields"
        )
    tokens = []
    problems = []
    category = ""
    for i, raw in enumerate(fields):
        token, reason, cat = check_value(i, raw, target_kind)
        if token is None:
            problems.append(reason)
            category = category or cat
        else:
            tokens.append(token)
    if problems:
        return RowResult(None, "; ".join(problems), category)
    return RowResult(b",".join(tokens))


# --- discovering and recognising the input files --------------------------------------------------

LABELLED = "labelled"  # 86 columns incl. the target
EVAL = "eval"  # 85 columns; the target comes from a targets file
TARGETS = "targets"  # 1 column
DICTIONARY = "dictionary"

EXPECTED_SHAPES = (
    "expected COIL 2000 rows: 86 (labelled), 85 (eval) or 1 (targets) tab- or comma-separated "
    "integer fields per line, optionally with a numbered header (0,1,...) or the column codes "
    "(+ Purchase), plain or gzip; or the data dictionary"
)
PAIRS = {"ticeval2000": "tictgts2000", "test": "gt"}  # eval stem -> targets stem
DICTIONARY_STEMS = {"dictionary", "col_info", "ticdatadescr"}


@dataclass
class FileInfo:
    path: Path
    name: str  # relative to the input dir, with "/"
    size: int
    gzip: bool = False
    role: str = ""
    layout: str = ""  # uci | seed | named | csv | dictionary
    delimiter: bytes = b","
    ncols: int = 0
    header: Optional[str] = None  # None | "numbered" | "named"
    target_kind: str = TARGET_01
    quoted: bool = False
    first_line: bytes = b""

    @property
    def stem(self) -> str:
        base = self.name.rsplit("/", 1)[-1].lower()
        if base.endswith(".gz"):
            base = base[:-3]
        return base.rsplit(".", 1)[0] if "." in base else base

    @property
    def folder(self) -> str:
        return self.name.rsplit("/", 1)[0] if "/" in self.name else ""


def open_binary(info: FileInfo) -> IO[bytes]:
    if info.gzip:
        return io.BufferedReader(gzip.GzipFile(str(info.path), "rb"), buffer_size=1 << 20)  # type: ignore[arg-type]
    return open(info.path, "rb", buffering=1 << 20)


@contextlib.contextmanager
def reading(info: FileInfo) -> Iterator[IO[bytes]]:
    """open_binary, with a read error anywhere in the file (a gzip cut off or corrupted past the part
    sniffed, an I/O error) turned into the one-line error naming the file."""
    try:
        with open_binary(info) as f:
            yield f
    except (OSError, EOFError, zlib.error) as exc:
        if info.gzip:
            raise EtlError(
                "%s: cannot be read as gzip (%s); expected a valid gzip file" % (info.name, exc)
            ) from exc
        raise EtlError("%s: cannot be read (%s)" % (info.name, exc)) from exc


def input_object_name(input_url: Optional[str]) -> Optional[str]:
    """The one object's file name for an object URL (not ending in "/"); None for a folder URL."""
    if input_url and not input_url.endswith("/"):
        return input_url.rsplit("/", 1)[-1]
    return None


def discover(
    input_dir: Path, input_url: Optional[str], sharded: bool = False
) -> Tuple[List[FileInfo], List[Dict[str, str]]]:
    """The candidate data files under input_dir (sorted) and the files ignored, with why.

    sharded: one of several instances (ShardedByS3Key sends each object to one instance), so an input
    object that is not here went to another instance: an empty shard, not an error."""
    if not input_dir.is_dir():
        raise EtlError(
            "input directory %s does not exist; expected the downloaded input data there" % input_dir
        )
    object_name = input_object_name(input_url)
    found: List[FileInfo] = []
    ignored: List[Dict[str, str]] = []
    for root, dirs, files in os.walk(input_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for fname in sorted(files):
            path = Path(root) / fname
            rel = path.relative_to(input_dir).as_posix()
            if object_name is not None and rel != object_name:
                ignored.append({"path": rel, "reason": "not the input object %s" % object_name})
            elif fname.startswith("."):
                ignored.append({"path": rel, "reason": "hidden file"})
            elif fname in MARKER_NAMES:
                ignored.append({"path": rel, "reason": "marker object"})
            elif path.stat().st_size == 0:
                ignored.append({"path": rel, "reason": "zero-byte placeholder"})
            else:
                found.append(FileInfo(path, rel, path.stat().st_size))
    if object_name is not None and not any(f.name == object_name for f in found):
        if any(i["path"] == object_name for i in ignored):
            reason = next(i["reason"] for i in ignored if i["path"] == object_name)
            raise EtlError(
                "input object %s (from --input-url) is a %s, not data; expected a data file"
                % (object_name, reason)
            )
        if sharded:
            return [], ignored
        raise EtlError(
            "input object %s (from --input-url %s) is not in %s; expected it downloaded there"
            % (object_name, input_url, input_dir)
        )
    found.sort(key=lambda f: f.name)
    return found, ignored


def _read_sample(info: FileInfo) -> bytes:
    with open(info.path, "rb") as f:
        magic = f.read(4)
    info.gzip = magic[:2] == b"\x1f\x8b"
    if magic == b"PK\x03\x04":
        raise EtlError(
            "%s: is a zip archive; expected the data files themselves (plain or gzip), not a zip" % info.name
        )
    with reading(info) as f:
        return f.read(SNIFF_BYTES)


_TEXT_BYTES = frozenset(range(32, 127)) | {9, 10, 13}


def _is_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    odd = sum(1 for b in sample if b not in _TEXT_BYTES)
    return odd > len(sample) * 0.10


def _split_header(line: bytes, delimiter: bytes) -> List[str]:
    text = line.decode("latin-1")
    fields = next(csv.reader([text])) if delimiter == b"," else text.split(delimiter.decode())
    return [f.strip().strip('"').strip() for f in fields]


def sniff(info: FileInfo) -> FileInfo:
    """Recognise a file by its content (and, where content is ambiguous, its name)."""
    sample = _read_sample(info)
    if _is_binary(sample):
        raise EtlError("%s: binary content, not text; %s" % (info.name, EXPECTED_SHAPES))
    lines = sample.split(b"\n")  # as the readers split: a CR alone does not end a line
    if len(sample) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut off
    nonblank = [ln for ln in lines if ln.strip()]
    if not nonblank:
        raise EtlError(
            "%s: no data rows (the file holds only blank lines); %s" % (info.name, EXPECTED_SHAPES)
        )
    first = nonblank[0].rstrip(b" \t\r")
    if b"\r" in first:
        raise EtlError(
            "%s: lines end in CR alone (or a CR is inside the first line); expected LF or CRLF line ends"
            % info.name
        )
    info.first_line = first
    head_text = first.decode("latin-1").strip().strip('"').upper()
    if info.stem in DICTIONARY_STEMS or head_text.startswith("DATA DICTIONARY"):
        info.role, info.layout = DICTIONARY, "dictionary"
        return info
    info.delimiter = b"\t" if b"\t" in first else b","
    info.quoted = b'"' in first or any(b'"' in ln for ln in nonblank[1:50])
    fields = _split_header(first, info.delimiter)
    upper = [f.upper() for f in fields]
    kind = "tab" if info.delimiter == b"\t" else "comma"
    if upper == [str(i) for i in range(len(fields))] and len(fields) in (N_FEATURES, N_COLUMNS):
        info.header, info.layout = "numbered", "seed"
    elif upper == ["0"]:
        # gt.csv's numbered header "0" looks like a target value: decided when the file is paired.
        info.header, info.layout = "numbered?", "seed"
    elif len(fields) in (N_FEATURES, N_COLUMNS) and upper[:N_FEATURES] == list(CODES[:N_FEATURES]):
        if len(fields) == N_COLUMNS and upper[-1] not in ("CARAVAN", "PURCHASE"):
            raise EtlError(
                "%s: unrecognised last header field %r; expected CARAVAN or Purchase"
                % (info.name, fields[-1])
            )
        info.header, info.layout = "named", "named"
        if upper[-1] == "PURCHASE":
            info.target_kind = TARGET_YES_NO
    elif upper in (["CARAVAN"], ["PURCHASE"]):
        info.header, info.layout = "named", "named"
        info.target_kind = TARGET_YES_NO if upper[0] == "PURCHASE" else TARGET_01
    elif fields in (["Yes"], ["No"]):
        info.layout = "csv"
        info.target_kind = TARGET_YES_NO
    elif 2 * sum(f.lstrip("+-").isdigit() for f in fields) < len(fields) or fields == [""]:
        shown = first[:80].decode("latin-1")
        raise EtlError(
            "%s: unrecognised first line %r (%d %s-separated fields); %s"
            % (info.name, shown, len(fields), kind, EXPECTED_SHAPES)
        )
    else:
        info.layout = "uci" if info.delimiter == b"\t" else "csv"
    body = nonblank[1:] if info.header in ("numbered", "named") else nonblank
    if not body:
        raise EtlError("%s: no data rows, only a header; %s" % (info.name, EXPECTED_SHAPES))
    counts: Dict[int, int] = {}
    for ln in body[:200]:
        n = len(ln.rstrip(b" \t\r").split(info.delimiter))
        counts[n] = counts.get(n, 0) + 1
    ncols = max(counts, key=lambda n: (counts[n], n))  # the usual row width, whatever a bad first row says
    roles = {N_COLUMNS: LABELLED, N_FEATURES: EVAL, 1: TARGETS}
    if ncols not in roles:
        raise EtlError(
            "%s: unknown file shape: rows have %d %s-separated fields; %s"
            % (info.name, ncols, kind, EXPECTED_SHAPES)
        )
    if info.header in ("numbered", "named") and len(fields) != ncols:
        raise EtlError(
            "%s: the header has %d fields but the rows have %d; expected the same number"
            % (info.name, len(fields), ncols)
        )
    info.role, info.ncols = roles[ncols], ncols
    return info


@dataclass
class Plan:
    labelled: List[FileInfo] = field(default_factory=list)
    pairs: List[Tuple[FileInfo, FileInfo]] = field(default_factory=list)
    dictionaries: List[FileInfo] = field(default_factory=list)


def make_plan(infos: List[FileInfo], hosts: int) -> Plan:
    """Order the work (labelled rows first, then eval rows with their targets) and pair eval files."""
    plan = Plan()
    evals = [f for f in infos if f.role == EVAL]
    targets = [f for f in infos if f.role == TARGETS]
    plan.labelled = [f for f in infos if f.role == LABELLED]
    plan.dictionaries = [f for f in infos if f.role == DICTIONARY]
    for ev in list(evals):
        want = PAIRS.get(ev.stem)
        match = [t for t in targets if t.folder == ev.folder and t.stem == want]
        if match:
            plan.pairs.append((ev, match[0]))
            evals.remove(ev)
            targets.remove(match[0])
    for folder in sorted({f.folder for f in evals + targets}):
        ev_here = [f for f in evals if f.folder == folder]
        tg_here = [f for f in targets if f.folder == folder]
        if len(ev_here) == 1 and len(tg_here) == 1:
            plan.pairs.append((ev_here[0], tg_here[0]))
            evals.remove(ev_here[0])
            targets.remove(tg_here[0])
    elsewhere = (
        "; this is one of %d instances (ShardedByS3Key sends each object to one instance), so its "
        "partner may have gone to another instance: process eval and targets files on one instance "
        "(ProcessingInstanceCount=1) or upload labelled rows" % hosts
        if hosts > 1
        else ""
    )
    if targets:
        t = targets[0]
        raise EtlError(
            "%s: targets file without its eval rows (expected ticeval2000.txt or test.csv beside it)%s"
            % (t.name, elsewhere)
        )
    if evals:
        e = evals[0]
        raise EtlError(
            "%s: eval rows without their targets file (expected tictgts2000.txt or gt.csv beside it)%s"
            % (e.name, elsewhere)
        )
    for ev, tg in plan.pairs:
        if tg.header == "numbered?":
            tg.header = "numbered" if ev.header == "numbered" else None
            tg.layout = ev.layout
    plan.pairs.sort(key=lambda p: p[0].name)
    return plan


def check_dictionary(info: FileInfo) -> None:
    """The data dictionary must describe the same 86 columns, in the same order, as the built-in schema."""
    with reading(info) as f:
        raw = f.read(4 * 1024 * 1024)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", "replace")
    found: Dict[int, str] = {}
    for line in text.splitlines():
        parts = line.strip().strip('"').split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isupper() and parts[1].isalnum():
            nr = int(parts[0])
            if 1 <= nr <= N_COLUMNS and nr not in found:
                found[nr] = parts[1]
    if not found:
        raise EtlError(
            "%s: not a COIL 2000 data dictionary (no 'Nr Name Description' lines); expected the "
            "dictionary.txt / col_info.csv that describes the 86 columns" % info.name
        )
    for col in COLUMNS:
        got = found.get(col.nr)
        if got is None:
            raise EtlError(
                "%s: data dictionary does not match the built-in schema: column %d (%s) is missing"
                % (info.name, col.nr, col.code)
            )
        if got != col.code:
            raise EtlError(
                "%s: data dictionary does not match the built-in schema: column %d is %s, expected %s"
                % (info.name, col.nr, got, col.code)
            )


# --- reading lines ----------------------------------------------------------------------------------


def _header_lines(info: FileInfo) -> int:
    """How many physical lines at the top are the header (plus blank lines before it)."""
    if not info.header or info.header == "numbered?":
        return 0
    n = 0
    with reading(info) as f:
        for line in f:
            n += 1
            if line.strip():
                return n
    return n


def _long_line(info: FileInfo, number: int) -> EtlError:
    return EtlError(
        "%s: line %d is longer than %d bytes; expected text rows of a few hundred bytes"
        % (info.name, number, MAX_LINE)
    )


def iter_fields(info: FileInfo) -> Iterator[Tuple[int, bytes, List[bytes]]]:
    """(line number, the line as read (its end may still be on it), fields) for each non-blank data line.

    Trailing blanks (and a trailing delimiter) are not part of the last field."""
    skip = _header_lines(info)
    with reading(info) as f:
        if info.quoted:
            text = io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape", newline="")
            reader = csv.reader(text, delimiter=info.delimiter.decode())
            try:
                for row in reader:
                    if reader.line_num <= skip or not any(x.strip() for x in row):
                        continue
                    fields = [x.encode("utf-8", "surrogateescape") for x in row]
                    yield reader.line_num, info.delimiter.join(fields), fields
            except csv.Error as exc:  # a quoted field over csv's field size limit, NUL on Python < 3.11
                raise EtlError(
                    "%s: line %d is not valid CSV (%s); expected text rows of a few hundred bytes"
                    % (info.name, reader.line_num, exc)
                ) from exc
            return
        delimiter = info.delimiter
        for number, line in enumerate(iter(functools.partial(f.readline, MAX_LINE), b""), 1):
            if len(line) == MAX_LINE and not line.endswith(b"\n"):
                raise _long_line(info, number)
            stripped = line.rstrip(b" \t\r\n")
            if stripped and number > skip:
                yield number, line, stripped.split(delimiter)


# --- outputs and counters ----------------------------------------------------------------------------


@dataclass
class FileStats:
    name: str
    role: str
    layout: str
    compression: Optional[str]
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rejected_by_reason: Dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    paired_with: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "path": self.name,
            "role": self.role,
            "layout": self.layout,
            "compression": self.compression,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "seconds": round(self.seconds, 3),
        }
        if self.paired_with:
            out["paired_with"] = self.paired_with
        return out


class Sink:
    """Where rows go: the clean data file, the rejects file, the counters and the progress log."""

    def __init__(self, data: IO[bytes], rejects: IO[str], progress_seconds: float) -> None:
        self.data = data
        self.rejects = csv.writer(rejects, lineterminator="\n")
        self.rejects.writerow(["source_file", "line", "reason", "row"])
        self.progress_seconds = progress_seconds
        self.started = time.monotonic()
        self.last_progress = self.started
        self.rows_done = 0
        self.bytes_done = 0
        self.current = ""

    def write(self, payload: Any) -> None:
        self.data.write(payload)

    def reject(
        self, stats: FileStats, source: str, line: int, row: bytes, reason: str, category: str
    ) -> None:
        stats.rows_rejected += 1
        stats.rejected_by_reason[category] = stats.rejected_by_reason.get(category, 0) + 1
        self.rejects.writerow([source, line, reason, row.decode("utf-8", "backslashreplace")])

    def tick(self, rows: int, nbytes: int = 0) -> None:
        self.rows_done += rows
        self.bytes_done += nbytes
        now = time.monotonic()
        if now - self.last_progress >= self.progress_seconds:
            self.last_progress = now
            elapsed = now - self.started
            LOG.info(
                "progress: %d rows done (%.0f rows/s), %.1f MB read, file %s",
                self.rows_done,
                self.rows_done / elapsed if elapsed else 0.0,
                self.bytes_done / 1e6,
                self.current,
            )


def _short_targets(eval_info: FileInfo, target_info: FileInfo, eval_rows: int, targets: int) -> EtlError:
    return EtlError(
        "%s has %d rows but its targets file %s has only %d; expected one target per eval row"
        % (eval_info.name, eval_rows, target_info.name, targets)
    )


def _target_token(
    sink: Sink, stats: FileStats, tinfo: FileInfo, target: Tuple[int, bytes, List[bytes]]
) -> Tuple[Optional[bytes], str, str]:
    number, _line, fields = target
    if len(fields) != 1:
        return (
            None,
            "%s line %d: expected 1 field, found %d" % (tinfo.name, number, len(fields)),
            "target: wrong number of fields",
        )
    token, reason, category = check_value(N_FEATURES, fields[0], tinfo.target_kind)
    if token is None:
        return None, "%s line %d: %s" % (tinfo.name, number, reason), category
    return token, "", ""


# --- the python engine (standard library only) ----------------------------------------------------


def _flush(sink: Sink, out: List[bytes]) -> None:
    if out:
        out.append(b"")
        sink.write(b"\n".join(out))
        out.clear()


def python_labelled(info: FileInfo, sink: Sink, stats: FileStats) -> None:
    """Row by row: a dict look-up per value is the fast path, check_row explains the rest."""
    maps = [*TOKEN_MAPS[:N_FEATURES], TARGET_MAPS[info.target_kind]]
    getter = dict.get
    out: List[bytes] = []
    nbytes = pending = 0
    for number, line, fields in iter_fields(info):
        nbytes += len(line)
        pending += 1
        stats.rows_read += 1
        tokens = list(map(getter, maps, fields))
        if len(fields) == N_COLUMNS and None not in tokens:
            out.append(b",".join(tokens))  # type: ignore[arg-type]
        else:
            result = check_row(fields, info.target_kind, N_COLUMNS)
            if result.line is None:
                sink.reject(stats, info.name, number, line.rstrip(b"\r\n"), result.reason, result.category)
            else:
                out.append(result.line)
        if len(out) == BATCH_LINES:
            stats.rows_written += len(out)
            sink.tick(pending, nbytes)
            _flush(sink, out)
            nbytes = pending = 0
    stats.rows_written += len(out)
    sink.tick(pending, nbytes)
    _flush(sink, out)


def python_pair(info: FileInfo, tinfo: FileInfo, sink: Sink, stats: FileStats, tstats: FileStats) -> None:
    """Eval rows joined to their targets by row order, row by row."""
    maps = list(TOKEN_MAPS[:N_FEATURES])
    getter = dict.get
    targets = iter_fields(tinfo)
    out: List[bytes] = []
    nbytes = pending = 0
    for number, line, fields in iter_fields(info):
        target = next(targets, None)
        stats.rows_read += 1
        pending += 1
        if target is None:
            raise _short_targets(info, tinfo, _count_rows(info), tstats.rows_read)
        tstats.rows_read += 1
        nbytes += len(line)
        tokens = list(map(getter, maps, fields))
        if len(fields) != N_FEATURES or None in tokens:
            result = check_row(fields, TARGET_01, N_FEATURES)
            if result.line is None:
                sink.reject(stats, info.name, number, line.rstrip(b"\r\n"), result.reason, result.category)
                continue
            tokens = [result.line]
        ttoken, reason, category = _target_token(sink, tstats, tinfo, target)
        if ttoken is None:
            sink.reject(stats, info.name, number, line.rstrip(b"\r\n"), reason, category)
            continue
        tokens.append(ttoken)
        out.append(b",".join(tokens))  # type: ignore[arg-type]
        if len(out) == BATCH_LINES:
            stats.rows_written += len(out)
            tstats.rows_written += len(out)
            sink.tick(pending, nbytes)
            _flush(sink, out)
            nbytes = pending = 0
    stats.rows_written += len(out)
    tstats.rows_written += len(out)
    sink.tick(pending, nbytes)
    _flush(sink, out)
    extra = sum(1 for _ in targets)
    if extra:
        raise _long_targets(info, tinfo, extra, stats.rows_read)


def _count_rows(info: FileInfo) -> int:
    return sum(1 for _ in iter_fields(info))


def _long_targets(eval_info: FileInfo, target_info: FileInfo, extra: int, eval_rows: int) -> EtlError:
    return EtlError(
        "%s has %d more rows than its eval file %s (%d rows); expected one target per eval row"
        % (target_info.name, extra, eval_info.name, eval_rows)
    )


# --- the arrow engine (pyarrow.compute on blocks of lines) --------------------------------------------


class ArrowEngine:
    """Validates and rewrites whole blocks of lines with pyarrow.compute and numpy; the rare rows the
    fast path cannot take go through the same per-row checks as the python engine.

    Arrays are built with Array.from_buffers and read back through their buffers: pa.array(),
    pa.scalar() and to_numpy() would import pandas (seconds and ~80 MB) for nothing."""

    def __init__(self) -> None:
        self.pa: Any = importlib.import_module("pyarrow")
        self.pc: Any = importlib.import_module("pyarrow.compute")
        self.np: Any = importlib.import_module("numpy")
        # malloc hands freed blocks back; arrow's default allocator keeps them: peak memory then grows
        # with the run's length instead of staying flat.
        self.pa.set_memory_pool(self.pa.system_memory_pool())
        np = self.np
        self.value_set = self.binary([str(i).encode() for i in range(MAX_TOKEN + 1)])
        self.lo = np.array([c.lo for c in COLUMNS[:N_FEATURES]], dtype=np.int32)
        self.hi = np.array([c.hi for c in COLUMNS[:N_FEATURES]], dtype=np.int32)
        self.labels = {
            i: self.binary([b""] + [csv_field(label).encode() for label in labels])
            for i, labels in DECODED.items()
        }
        self.target_sets = {
            kind: (self.binary(list(m.keys())), self.binary(list(m.values())))
            for kind, m in TARGET_MAPS.items()
        }

    # -- array helpers --
    def binary(self, items: Sequence[bytes]) -> Any:
        np, pa = self.np, self.pa
        offsets = np.zeros(len(items) + 1, dtype=np.int32)
        offsets[1:] = np.cumsum([len(x) for x in items]) if items else []
        return pa.Array.from_buffers(
            pa.binary(), len(items), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(items))]
        )

    def ints(self, values: Any) -> Any:
        np, pa = self.np, self.pa
        values = np.ascontiguousarray(values, dtype=np.int64)
        return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])

    def repeat(self, token: bytes, n: int) -> Any:
        np, pa = self.np, self.pa
        offsets = np.arange(n + 1, dtype=np.int32) * len(token)
        return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(token * n)])

    def numbers(self, arr: Any, fill: int = -1) -> Any:
        """An int32 arrow array as numpy, nulls replaced by `fill`."""
        np = self.np
        n, off = len(arr), arr.offset
        validity, data = arr.buffers()[0], arr.buffers()[1]
        if data is None or n == 0:
            return np.zeros(0, dtype=np.int32)
        values = np.frombuffer(data, dtype=np.int32)[off : off + n]
        if arr.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[off : off + n]
            values = np.where(bits.astype(bool), values, fill)
        return values

    # -- reading --
    def blocks(self, info: FileInfo, block_bytes: int = BLOCK_BYTES) -> Iterator[Tuple[int, Any, int]]:
        """(number of the first line, a block of whole lines as a binary array, bytes read)."""
        pc = self.pc
        skip = _header_lines(info)
        first_line = 1
        rest = b""
        with reading(info) as f:
            while True:
                chunk = f.read(block_bytes)
                if chunk:
                    data = rest + chunk
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        if len(data) > MAX_LINE:
                            raise _long_line(info, first_line)
                        rest = data
                        continue
                    data, rest = data[:cut], data[cut + 1 :]
                else:
                    data, rest = rest, b""
                    if not data:
                        return
                lines = pc.split_pattern(self.binary([data]), pattern=b"\n").flatten()
                lengths = self.numbers(pc.binary_length(lines))
                if len(lengths) and lengths.max() >= MAX_LINE:  # as the python engine's readline limit
                    raise _long_line(info, first_line + int(self.np.argmax(lengths >= MAX_LINE)))
                if first_line <= skip:
                    drop = min(skip - first_line + 1, len(lines))
                    lines = lines.slice(drop)
                    first_line += drop
                if len(lines):
                    yield first_line, lines, len(data) + 1
                first_line += len(lines)
                if not chunk:
                    return

    def prepare(self, info: FileInfo, lines: Any) -> Tuple[Any, Any]:
        """(indexes of the non-blank lines, their text trimmed, with "," between fields)."""
        pa, pc, np = self.pa, self.pc, self.np
        trimmed = pc.ascii_rtrim(lines.view(pa.string()), characters=" \t\r").view(pa.binary())
        nonblank = np.flatnonzero(self.numbers(pc.binary_length(trimmed)) > 0)
        if len(nonblank) < len(trimmed):
            trimmed = trimmed.take(self.ints(nonblank))
        if info.delimiter != b",":
            trimmed = pc.replace_substring(trimmed, pattern=info.delimiter, replacement=b",")
        return nonblank, trimmed

    def target_blocks(self, info: FileInfo) -> Iterator[Tuple[Any, Any]]:
        for first_line, lines, _ in self.blocks(info, TARGET_BLOCK_BYTES):
            nonblank, text = self.prepare(info, lines)
            yield first_line + nonblank, text

    # -- validating and writing --
    def values(self, text: Any, ncols: int) -> Any:
        """The rows' values as an (n, ncols) int matrix, -1 where a field is not a canonical 0-99."""
        pc = self.pc
        flat = pc.split_pattern(text, pattern=b",").flatten()
        return self.numbers(pc.index_in(flat, value_set=self.value_set)).reshape(-1, ncols)

    def render(self, text: Any, values: Any, target: Any) -> Any:
        """Output lines, each ending in a newline, for fully valid rows."""
        pc, np = self.pc, self.np
        n = len(text)
        rest = (
            pc.split_pattern(text, pattern=b",", max_splits=5).flatten().take(self.ints(np.arange(n) * 6 + 5))
        )
        if target is None:  # the row's own last field is the target, already a canonical 0/1
            tail = [rest]
        else:
            if values.shape[1] == N_COLUMNS:  # drop the row's own last field (Yes/No) first
                rest = pc.split_pattern(rest, pattern=b",", max_splits=1, reverse=True).flatten()
                rest = rest.take(self.ints(np.arange(n) * 2))
            tail = [rest, target]
        cols = [self.labels[0].take(self.ints(values[:, 0]))]
        cols += [self.value_set.take(self.ints(values[:, k])) for k in (1, 2, 3)]
        cols.append(self.labels[4].take(self.ints(values[:, 4])))
        joined = pc.binary_join_element_wise(*cols, *tail, self.repeat(b",", n))
        return pc.binary_join_element_wise(joined, self.repeat(b"", n), self.repeat(b"\n", n))

    def write(self, sink: Sink, lines: Any) -> None:
        if not len(lines):
            return
        np = self.np
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
            lines.offset : lines.offset + len(lines) + 1
        ]
        sink.write(memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])])

    def labelled(self, info: FileInfo, sink: Sink, stats: FileStats) -> None:
        self._run(info, None, sink, stats)

    def pair(self, info: FileInfo, tinfo: FileInfo, sink: Sink, stats: FileStats, tstats: FileStats) -> None:
        targets = _ArrowTargets(self, tinfo, tstats)
        self._run(info, targets, sink, stats)
        targets.finish(info, stats.rows_read)

    def _run(self, info: FileInfo, targets: Optional[_ArrowTargets], sink: Sink, stats: FileStats) -> None:
        pc, np = self.pc, self.np
        ncols = N_FEATURES if targets else N_COLUMNS
        for first_line, lines, nbytes in self.blocks(info):
            nonblank, text = self.prepare(info, lines)
            n = len(nonblank)
            stats.rows_read += n
            counts = self.numbers(pc.count_substring(text, pattern=b",")) + 1
            shaped = np.flatnonzero(counts == ncols)
            shaped_text = text.take(self.ints(shaped))
            values = self.values(shaped_text, ncols) if len(shaped) else np.zeros((0, ncols), dtype=np.int32)
            feats = values[:, :N_FEATURES]
            ok = np.zeros(n, dtype=bool)
            ok[shaped] = ((feats >= self.lo) & (feats <= self.hi)).all(axis=1)
            target_index = np.full(n, -1, dtype=np.int64)
            t_lines: Any = None
            t_text: Any = None
            if targets is not None:
                t_lines, t_text = targets.take(n)
                if len(t_lines) < n:
                    raise _short_targets(info, targets.info, _count_rows(info), targets.stats.rows_read)
                keys, tokens = self.target_sets[targets.info.target_kind]
                target_index = self.numbers(pc.index_in(t_text, value_set=keys))
            elif info.target_kind == TARGET_YES_NO:
                keys, tokens = self.target_sets[TARGET_YES_NO]
                if len(shaped):
                    last = pc.split_pattern(shaped_text, pattern=b",", max_splits=1, reverse=True).flatten()
                    last = last.take(self.ints(np.arange(len(shaped)) * 2 + 1))
                    target_index[shaped] = self.numbers(pc.index_in(last, value_set=keys))
            else:
                tokens = None
                target_index[shaped] = np.where(values[:, N_FEATURES] <= 1, values[:, N_FEATURES], -1)
            ok &= target_index >= 0
            good = np.flatnonzero(ok)
            out = None
            if len(good):
                in_shaped = np.searchsorted(shaped, good)
                target = tokens.take(self.ints(target_index[good])) if tokens is not None else None
                out = self.render(text.take(self.ints(good)), values[in_shaped], target)
            bad = np.flatnonzero(~ok)
            rescued = self._slow_rows(
                info, lines, nonblank, bad, first_line, targets, t_lines, t_text, sink, stats
            )
            written = len(good) + len(rescued)
            stats.rows_written += written
            if targets is not None:
                targets.stats.rows_written += written
            if rescued:
                merged = list(zip(good.tolist(), out.to_pylist() if out is not None else []))  # noqa: B905
                merged.extend((pos, line + b"\n") for pos, line in rescued)
                merged.sort(key=lambda item: item[0])
                sink.write(b"".join(line for _, line in merged))
            elif out is not None:
                self.write(sink, out)
            sink.tick(n, nbytes)

    def _slow_rows(
        self,
        info: FileInfo,
        lines: Any,
        nonblank: Any,
        bad: Any,
        first_line: int,
        targets: Optional[_ArrowTargets],
        t_lines: Any,
        t_text: Any,
        sink: Sink,
        stats: FileStats,
    ) -> List[Tuple[int, bytes]]:
        """Per-row checks for the rows the fast path refused: rejects them with a reason, or returns the
        ones that are valid after all (non-canonical but correct values such as " 3" or "03")."""
        if not len(bad):
            return []
        rescued = []
        raw_lines = lines.take(self.ints(nonblank[bad])).to_pylist()
        ncols = N_FEATURES if targets else N_COLUMNS
        for j, pos in enumerate(bad.tolist()):
            number = first_line + int(nonblank[pos])
            raw = raw_lines[j].rstrip(b"\r")
            result = check_row(raw.rstrip(b" \t").split(info.delimiter), info.target_kind, ncols)
            if result.line is not None and targets is not None:
                t_raw = t_text.slice(pos, 1).to_pylist()[0]
                t_row = (int(t_lines[pos]), t_raw, t_raw.split(b","))
                token, reason, category = _target_token(sink, targets.stats, targets.info, t_row)
                result = (
                    RowResult(None, reason, category)
                    if token is None
                    else RowResult(result.line + b"," + token)
                )
            if result.line is None:
                sink.reject(stats, info.name, number, raw, result.reason, result.category)
            else:
                rescued.append((pos, result.line))
        return rescued


class _ArrowTargets:
    """The targets file, handed out in eval-row order as (line numbers, text) pieces."""

    def __init__(self, engine: ArrowEngine, info: FileInfo, stats: FileStats) -> None:
        self.engine = engine
        self.info = info
        self.stats = stats
        self.blocks = engine.target_blocks(info)
        self.pending: List[Tuple[Any, Any]] = []
        self.available = 0

    def take(self, n: int) -> Tuple[Any, Any]:
        np, pa = self.engine.np, self.engine.pa
        while self.available < n:
            block = next(self.blocks, None)
            if block is None:
                break
            self.pending.append(block)
            self.available += len(block[0])
        lines, texts = [], []
        need = n
        while need and self.pending:
            numbers, text = self.pending[0]
            if len(numbers) <= need:
                self.pending.pop(0)
                lines.append(numbers)
                texts.append(text)
                need -= len(numbers)
            else:
                lines.append(numbers[:need])
                texts.append(text.slice(0, need))
                self.pending[0] = (numbers[need:], text.slice(need))
                need = 0
        got = n - need
        self.available -= got
        self.stats.rows_read += got
        if not texts:
            return np.zeros(0, dtype=np.int64), self.engine.binary([])
        return np.concatenate(lines), pa.concat_arrays(texts) if len(texts) > 1 else texts[0]

    def finish(self, eval_info: FileInfo, eval_rows: int) -> None:
        extra = self.available + sum(len(numbers) for numbers, _ in self.blocks)
        if extra:
            raise _long_targets(eval_info, self.info, extra, eval_rows)


# --- the run --------------------------------------------------------------------------------------------


def load_resource_config(path: str = RESOURCE_CONFIG) -> Tuple[Optional[str], List[str]]:
    """(current host, all hosts) from the processing job's resource config, when it exists."""
    p = Path(path)
    if not p.is_file():
        return None, []
    try:
        config = json.loads(p.read_text(encoding="utf-8"))
        return str(config["current_host"]), [str(h) for h in config["hosts"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise EtlError(
            "%s: unreadable resource config (%s); expected JSON with current_host and hosts" % (path, exc)
        ) from exc


def output_names(host: Optional[str], hosts: Sequence[str]) -> Dict[str, str]:
    if host and len(hosts) > 1:
        return {
            "full_data": "full_data-%s.csv" % host,
            "rejects": "rejects-%s.csv" % host,
            "report": "report-%s.json" % host,
        }
    return {"full_data": "full_data.csv", "rejects": "rejects.csv", "report": "report.json"}


def choose_engine(requested: str) -> str:
    """arrow when asked for, or (auto) when pyarrow and numpy are installed; found, not imported, so a
    run that fails on its input fails fast."""
    if requested == "python":
        return "python"
    missing = [m for m in ("pyarrow", "numpy") if importlib.util.find_spec(m) is None]
    if not missing:
        return "arrow"
    if requested == "arrow":
        raise EtlError("--engine arrow needs %s, not installed here" % " and ".join(missing))
    return "python"


def _arrow_engine(requested: str) -> Optional[ArrowEngine]:
    try:
        return ArrowEngine()
    except ImportError as exc:
        if requested == "arrow":
            raise EtlError("--engine arrow: pyarrow does not import (%s)" % exc) from exc
        LOG.warning("pyarrow does not import (%s): using the standard-library engine", exc)
        return None


def _temp(out_dir: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=str(out_dir), prefix="." + name + ".", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _write_json_atomically(path: Path, payload: Dict[str, Any]) -> None:
    tmp = _temp(path.parent, path.name)
    try:
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        os.replace(str(tmp), str(path))
    finally:
        if tmp.exists():
            tmp.unlink()


def _reason_summary(reasons: Dict[str, int], limit: int = 5) -> str:
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join("%d %s" % (n, r) for r, n in top[:limit])
    if len(top) > limit:
        text += ", and %d more reasons" % (len(top) - limit)
    return text


@dataclass
class Options:
    input_dir: Path
    output_dir: Path
    input_url: Optional[str] = None
    max_reject_fraction: float = 0.01
    engine: str = "auto"
    progress_seconds: float = PROGRESS_SECONDS
    resource_config: str = RESOURCE_CONFIG


def run(opts: Options) -> Dict[str, Any]:
    """Do the whole job; returns the report. Raises EtlError (after writing the report) on failure."""
    started = time.time()
    t0 = time.monotonic()
    host, hosts = load_resource_config(opts.resource_config)
    names = output_names(host, hosts)
    out_dir = opts.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    report: Dict[str, Any] = {
        "status": "failed",
        "input_dir": str(opts.input_dir),
        "input_url": opts.input_url,
        "output_dir": str(out_dir),
        "outputs": names,
        "host": host,
        "hosts": hosts,
        "max_reject_fraction": opts.max_reject_fraction,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
    }
    final_data = out_dir / names["full_data"]
    tmp_data = _temp(out_dir, names["full_data"])
    tmp_rejects = _temp(out_dir, names["rejects"])
    stats_list: List[FileStats] = []
    try:
        engine_name = choose_engine(opts.engine)
        report["engine"] = engine_name
        infos, ignored = discover(opts.input_dir, opts.input_url, sharded=len(hosts) > 1)
        report["ignored"] = ignored
        for item in ignored:
            LOG.info("ignored %s: %s", item["path"], item["reason"])
        infos = [sniff(i) for i in infos]
        plan = make_plan(infos, len(hosts))
        for d in plan.dictionaries:
            check_dictionary(d)
            stats_list.append(FileStats(d.name, DICTIONARY, "dictionary", "gzip" if d.gzip else None))
            LOG.info("data dictionary %s matches the built-in schema", d.name)
        if not plan.labelled and not plan.pairs:
            if len(hosts) > 1:
                object_name = input_object_name(opts.input_url)
                if object_name is not None and not infos:
                    report["note"] = (
                        "this instance received no object: the input object %s went to another of the "
                        "%d instances (ShardedByS3Key sends each object to one instance)"
                        % (object_name, len(hosts))
                    )
                else:
                    report["note"] = "this instance received no data files (one of %d instances)" % len(hosts)
                LOG.info("%s (%s)", report["note"], host)
            else:
                what = "only the data dictionary" if plan.dictionaries else "no data files"
                raise EtlError(
                    "%s: empty input (%s%s); %s"
                    % (
                        opts.input_dir,
                        what,
                        ", ignored: " + ", ".join(i["path"] for i in ignored) if ignored else "",
                        EXPECTED_SHAPES,
                    )
                )
        engine = _arrow_engine(opts.engine) if engine_name == "arrow" else None
        if engine is None:
            report["engine"] = "python"
        # (ExitStack, not a parenthesised with: that syntax is Python 3.10+; the image has 3.9)
        with contextlib.ExitStack() as stack:
            data = stack.enter_context(open(tmp_data, "wb", buffering=1 << 20))
            rejects = stack.enter_context(open(tmp_rejects, "w", encoding="utf-8", newline=""))
            data.write(OUTPUT_HEADER)
            sink = Sink(data, rejects, opts.progress_seconds)
            for info in plan.labelled:
                st = FileStats(info.name, LABELLED, info.layout, "gzip" if info.gzip else None)
                stats_list.append(st)
                sink.current = info.name
                LOG.info("reading %s (%s, %s layout, %d bytes)", info.name, LABELLED, info.layout, info.size)
                t = time.monotonic()
                if engine is not None and not info.quoted:
                    engine.labelled(info, sink, st)
                else:
                    python_labelled(info, sink, st)
                st.seconds = time.monotonic() - t
                LOG.info(
                    "%s: %d rows read, %d written, %d rejected",
                    info.name,
                    st.rows_read,
                    st.rows_written,
                    st.rows_rejected,
                )
            for ev, tg in plan.pairs:
                st = FileStats(ev.name, EVAL, ev.layout, "gzip" if ev.gzip else None, paired_with=tg.name)
                tst = FileStats(tg.name, TARGETS, tg.layout, "gzip" if tg.gzip else None, paired_with=ev.name)
                stats_list.extend([st, tst])
                sink.current = ev.name
                LOG.info("reading %s with targets %s (%s layout)", ev.name, tg.name, ev.layout)
                t = time.monotonic()
                if engine is not None and not ev.quoted and not tg.quoted:
                    engine.pair(ev, tg, sink, st, tst)
                else:
                    python_pair(ev, tg, sink, st, tst)
                st.seconds = tst.seconds = time.monotonic() - t
                LOG.info(
                    "%s: %d rows read, %d written, %d rejected",
                    ev.name,
                    st.rows_read,
                    st.rows_written,
                    st.rows_rejected,
                )
        data_files = [s for s in stats_list if s.role in (LABELLED, EVAL)]
        rows_read = sum(s.rows_read for s in data_files)
        rows_written = sum(s.rows_written for s in data_files)
        rows_rejected = sum(s.rows_rejected for s in data_files)
        reasons: Dict[str, int] = {}
        for s in data_files:
            for r, n in s.rejected_by_reason.items():
                reasons[r] = reasons.get(r, 0) + n
        fraction = rows_rejected / rows_read if rows_read else 0.0
        report["totals"] = {
            "rows_read": rows_read,
            "rows_written": rows_written,
            "rows_rejected": rows_rejected,
            "reject_fraction": round(fraction, 6),
            "rejected_by_reason": dict(sorted(reasons.items())),
        }
        os.replace(str(tmp_rejects), str(out_dir / names["rejects"]))
        if fraction > opts.max_reject_fraction:
            raise EtlError(
                "%d of %d rows (%.2f%%) failed validation, above --max-reject-fraction %g: %s; "
                "see %s"
                % (
                    rows_rejected,
                    rows_read,
                    100 * fraction,
                    opts.max_reject_fraction,
                    _reason_summary(reasons),
                    names["rejects"],
                )
            )
        if rows_read and not rows_written:
            raise EtlError("no valid rows: all %d rows were rejected; see %s" % (rows_read, names["rejects"]))
        os.replace(str(tmp_data), str(final_data))
        report["status"] = "succeeded"
        LOG.info(
            "done: %d rows written to %s, %d rejected (%.3f%%)",
            rows_written,
            final_data,
            rows_rejected,
            100 * fraction,
        )
        return report
    except EtlError as exc:
        report["error"] = str(exc)
        if final_data.exists():
            final_data.unlink()  # a failed run leaves no clean data behind, not even an older one
        raise
    finally:
        for tmp in (tmp_data, tmp_rejects):
            if tmp.exists():
                tmp.unlink()
        report["files"] = [s.as_dict() for s in stats_list]
        report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        report["seconds"] = round(time.monotonic() - t0, 3)
        _write_json_atomically(out_dir / names["report"], report)


def parse_args(argv: Optional[Sequence[str]]) -> Options:
    parser = argparse.ArgumentParser(prog="etl.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input-dir",
        type=Path,
        default=Path(DEFAULT_INPUT_DIR),
        help="where the input was downloaded (%(default)s)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(DEFAULT_OUTPUT_DIR),
        help="where to write the outputs (%(default)s)",
    )
    parser.add_argument(
        "--input-url",
        default=None,
        help="the S3 URL the job was started for; an object URL (not ending in /) selects that one file",
    )
    parser.add_argument(
        "--max-reject-fraction",
        type=float,
        default=0.01,
        help="fail when more than this share of rows is rejected (%(default)s)",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "arrow", "python"),
        default=os.environ.get("ETL_ENGINE", "auto"),
        help="auto (default; env ETL_ENGINE): pyarrow when importable, else the standard library",
    )
    parser.add_argument(
        "--progress-seconds", type=float, default=PROGRESS_SECONDS, help="progress log interval (%(default)s)"
    )
    # The local runner maps /opt/ml paths into a scratch folder and says where it put this file.
    parser.add_argument(
        "--resource-config",
        default=os.environ.get("LOCAL_RESOURCE_CONFIG", RESOURCE_CONFIG),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.max_reject_fraction <= 1.0:
        parser.error("--max-reject-fraction must be between 0 and 1")
    return Options(
        input_dir=args.input_dir,
        output_dir=args.output_dir,
        input_url=args.input_url,
        max_reject_fraction=args.max_reject_fraction,
        engine=args.engine,
        progress_seconds=args.progress_seconds,
        resource_config=args.resource_config,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    opts = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run(opts)
    except EtlError as exc:
        LOG.error("failed: %s", exc)
        print("etl: error: %s" % exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print("etl: error: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
