"""Fuzzing the ETL with broken files: a clear error or accounted rejects, never a crash or partial output.

Each case starts from small generated files in one of the three layouts (plain or gzip, LF or CRLF) and
breaks them with one to three mutations: truncation at any byte (mid-line, mid-gzip-stream), another
delimiter (``;``, ``|``, mixed), wrong column counts, lines over 1 MiB, non-UTF-8 bytes, NUL bytes,
random binary, blank or header-only files, gzip of garbage, mixed line ends, quoting, a mismatched
data dictionary, marker and hidden files, eval rows without their targets and vice versa. The ETL's
``main`` runs in-process (it returns its exit code: nothing may escape it), a sample runs as the
processing job runs it, in a subprocess. The properties:

- the exit code is 0 or 1, never an exception (in a subprocess: never a traceback);
- exit 1: stderr is one line, ``etl: error: ...``, naming the offending file (or the input folder, or
  pointing at rejects.csv when too many rows failed); no clean data file and no temporary file is left;
- exit 0: the clean data file has the 86-column header, every row has 86 values inside their domains,
  the report accounts for every row (written + rejected == read, and read == the file's non-blank
  lines below its header), rejects.csv lists exactly the rejected rows;
- the input files are never modified;
- the job run as a subprocess (the bundle the pipeline ships) answers as the in-process run does.

The tally (cases, exit codes, crashes, partial outputs) goes to build/hardening-etl-fuzz.json.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import random
import re
import subprocess
import sys
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coilgen import generate
from coilgen.dictionary import COIL
from contract.artifact import bundle
from etl import cli
from etl.examples.coil2000 import SCHEMA
from etl.examples.coil2000.layout import DATA_ROLES
from etl.read import BOM, block_size

BLOCK_BYTES = block_size(86)  # the reader's block for COIL's 86 columns

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "build" / "hardening-etl-fuzz.json"
GZ_MAGIC = b"\x1f\x8b"
BASE_ROWS = 40  # rows per generated dataset: small, so a case costs milliseconds
EVAL_PARTNERS = {"ticeval2000.txt": "tictgts2000.txt", "test.csv": "gt.csv"}
DICTIONARIES = ("dictionary.txt", "col_info.csv")

Files = dict[str, bytes]
Draw = Callable[[st.SearchStrategy[Any]], Any]


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- the tally ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)  # test -> cases run
    outcomes: Counter[str] = field(default_factory=Counter)  # exit_0 / exit_1 / crash / other_exit
    violations: Counter[str] = field(default_factory=Counter)  # property -> times broken
    mutations: Counter[str] = field(default_factory=Counter)  # mutation kind -> cases using it
    rows: Counter[str] = field(default_factory=Counter)  # rows read / written / rejected over exit-0 cases

    def as_dict(self) -> dict[str, Any]:
        total = sum(self.cases.values())
        return {
            "suite": "tests/hardening/test_fuzz_etl.py",
            "command": ".venv/bin/pytest tests/hardening/test_fuzz_etl.py -q",
            "cases": total,
            "exit_0": self.outcomes["exit_0"],
            "exit_1": self.outcomes["exit_1"],
            "crashes": self.outcomes["crash"],
            "other_exit_codes": self.outcomes["other_exit"],
            "partial_outputs": self.violations["partial output"],
            "temporary_files_left": self.violations["temporary file left"],
            "inputs_modified": self.violations["input modified"],
            "violations": dict(sorted(self.violations.items())),
            "cases_by_test": dict(sorted(self.cases.items())),
            "cases_by_mutation": dict(sorted(self.mutations.items())),
            "rows_in_exit_0_cases": dict(sorted(self.rows.items())),
        }


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def record_figures() -> Iterator[None]:
    yield
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(TALLY.as_dict(), indent=2) + "\n", encoding="utf-8")


# -- the starting data -------------------------------------------------------------------------------


@cache
def base_files(layout: str, gz: bool, crlf: bool) -> tuple[tuple[str, bytes], ...]:
    """A generated dataset (with its data dictionary, where the layout has one) as (name, bytes) pairs."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, layout=layout, rows=BASE_ROWS, seed=7, gzip=gz, crlf=crlf)
        return tuple(sorted((p.name, p.read_bytes()) for p in Path(tmp).iterdir()))


@cache
def big_gzip() -> bytes:
    """A named-layout gzip whose text (~1.4 MB) is longer than the reader's first 1 MiB buffer."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, layout="named", rows=8000, seed=11, gzip=True)
        return (Path(tmp) / "Caravan.csv.gz").read_bytes()


def unpack(data: bytes) -> tuple[bytes, bool]:
    """(the text, whether it was gzip); a broken gzip is taken as it is."""
    if data[:2] == GZ_MAGIC:
        try:
            return gzip.decompress(data), True
        except (OSError, EOFError, zlib.error):
            return data, False
    return data, False


def edit(files: Files, name: str, change: Callable[[bytes], bytes]) -> None:
    """Apply a text change inside the file (inside its gzip stream when it is gzip)."""
    text, gz = unpack(files[name])
    new = change(text)
    files[name] = gzip.compress(new, mtime=0) if gz else new


def data_names(files: Files) -> list[str]:
    names = sorted(n for n in files if n.rsplit("/", 1)[-1].split(".")[0] not in ("", "_SUCCESS"))
    return names or sorted(files)


def split_lines(text: bytes) -> list[bytes]:
    return text.split(b"\n")


def grow(files: Files, name: str, factor: int) -> None:
    """Repeat the file's lines below the first `factor` times (and its eval/targets partner's alike), so
    that what a mutation adds lies beyond the first 64 KiB the ETL samples to recognise the file."""

    def change(text: bytes) -> bytes:
        first, _, rest = text.partition(b"\n")
        if rest and not rest.endswith(b"\n"):
            rest += b"\n"
        return first + b"\n" + rest * factor

    base = name.rsplit(".gz", 1)[0]
    partners = {**EVAL_PARTNERS, **{v: k for k, v in EVAL_PARTNERS.items()}}
    for target in (name, *(n for n in files if n.rsplit(".gz", 1)[0] == partners.get(base))):
        edit(files, target, change)


# -- the mutations -------------------------------------------------------------------------------------


def m_truncate(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    if draw(st.booleans()):  # the raw bytes: for a gzip, a cut in the middle of its deflate stream
        data = files[name]
        files[name] = data[: draw(st.integers(0, len(data)))]
    else:
        edit(files, name, lambda text: text[: rnd.randint(0, len(text))])


def m_delimiter(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    kind = draw(st.sampled_from([b";", b"|", b"\t,", b"mixed"]))
    some = draw(st.booleans())

    def change(text: bytes) -> bytes:
        lines = split_lines(text)
        own = b"\t" if b"\t" in lines[0] else b","
        out = []
        for line in lines:
            if some and rnd.random() < 0.7:
                out.append(line)
            elif kind == b"mixed":
                fields = line.split(own)
                joined = fields[0]
                for f in fields[1:]:
                    joined += rnd.choice([b",", b";", b"|", b"\t", b", "]) + f
                out.append(joined)
            elif kind == b"\t,":
                out.append(line.replace(own, b"," if own == b"\t" else b"\t"))
            else:
                out.append(line.replace(own, kind))
        return b"\n".join(out)

    edit(files, name, change)


def m_columns(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    share = draw(st.sampled_from([0.02, 0.3, 1.0]))

    def change(text: bytes) -> bytes:
        lines = split_lines(text)
        own = b"\t" if b"\t" in lines[0] else b","
        for i, line in enumerate(lines):
            if line.strip() and rnd.random() < share:
                fields = line.rstrip(b"\r").split(own)
                if rnd.random() < 0.5:
                    del fields[-rnd.randint(1, min(5, len(fields))) :]
                else:
                    fields.extend([b"0"] * rnd.randint(1, 90))
                lines[i] = own.join(fields) + (b"\r" if line.endswith(b"\r") else b"")
        return b"\n".join(lines)

    edit(files, name, change)


def m_huge_line(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    style = draw(st.sampled_from(["digits", "fields", "quoted", "printable", "no-newline"]))
    if style == "quoted":  # csv's default field limit is 128 KiB: quoted fields above it and up to 1 MiB
        size = draw(st.sampled_from([100_000, 131_073, 600_000, BLOCK_BYTES - 1, BLOCK_BYTES + 10]))
    else:
        size = BLOCK_BYTES + draw(st.sampled_from([-2, -1, 0, 1, 2, 4096]))
    if draw(st.booleans()):
        grow(files, name, 12)
    payload: bytes = {
        "digits": b"7" * size,
        "fields": (b"1," * (size // 2 + 1))[:size],
        "quoted": b'"' + b"1" * size + b'"',
        "printable": bytes(rnd.choice(b"abcxyz0123456789 ,;|\t") for _ in range(256)) * (size // 256 + 1),
        "no-newline": b"3" * size,
    }[style]

    def change(text: bytes) -> bytes:
        if style == "no-newline":
            return text.rstrip(b"\r\n") + b"\n" + payload
        lines = split_lines(text)
        lines.insert(rnd.randint(0, len(lines)), payload)
        return b"\n".join(lines)

    edit(files, name, change)


def m_non_utf8(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    kind = draw(st.sampled_from(["bytes", "latin-1 word", "bom", "utf-16"]))
    if draw(st.booleans()):
        grow(files, name, 12)

    def change(text: bytes) -> bytes:
        if kind == "bom":
            return b"\xef\xbb\xbf" + text
        if kind == "utf-16":
            return text.decode("latin-1").encode("utf-16")
        out = bytearray(text)
        for _ in range(rnd.randint(1, 8)):
            junk = bytes(rnd.randint(0x80, 0xFF) for _ in range(rnd.randint(1, 4)))
            if kind == "latin-1 word":
                junk = "café".encode("latin-1")
            at = rnd.randint(0, len(out))
            out[at:at] = junk
        return bytes(out)

    edit(files, name, change)


def m_nul(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    kind = draw(st.sampled_from(["scattered", "line", "replace"]))
    late = draw(st.booleans())
    if late:
        grow(files, name, 12)

    def change(text: bytes) -> bytes:
        out = bytearray(text)
        low = len(out) * 9 // 10 if late else 0
        if kind == "line":
            at = out.find(b"\n", rnd.randint(low, len(out)))
            at = len(out) if at < 0 else at + 1
            out[at:at] = b"\x00" * rnd.randint(1, 300) + b"\n"
        else:
            for _ in range(rnd.randint(1, 6)):
                at = rnd.randint(low, max(low, len(out) - 1))
                if kind == "replace" and at < len(out):
                    out[at] = 0
                else:
                    out[at:at] = b"\x00"
        return bytes(out)

    edit(files, name, change)


MAGICS = (b"", b"\x89PNG\r\n\x1a\n", b"PK\x03\x04", b"%PDF-1.7\n", b"\x7fELF", GZ_MAGIC, b"\xef\xbb\xbf")


def m_binary(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from([*data_names(files), "blob.csv"]))
    magic = draw(st.sampled_from(MAGICS))
    body = draw(st.binary(min_size=0, max_size=2048))
    files[name] = magic + body if magic or body else b"\x00"


def m_blank(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    text = draw(st.text(alphabet=" \t\r\n", max_size=40)).encode()
    files[name] = gzip.compress(text, mtime=0) if draw(st.booleans()) else text


def m_header_only(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    keep = draw(st.integers(1, 2))
    tail = draw(st.sampled_from([b"", b"\n", b"\r\n", b"\n\n  \n", b"\t"]))
    edit(files, name, lambda text: b"\n".join(split_lines(text)[:keep]).rstrip(b"\r\n") + tail)


def m_gzip_garbage(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    kind = draw(st.sampled_from(["gzip of binary", "gzip of text", "magic + junk", "flip", "tail", "twice"]))
    junk = draw(st.binary(min_size=1, max_size=1024))
    text, _ = unpack(files[name])
    if kind == "gzip of binary":
        files[name] = gzip.compress(junk, mtime=0)
    elif kind == "gzip of text":
        printable = bytes(b % 95 + 32 for b in junk)
        files[name] = gzip.compress(printable, mtime=0)
    elif kind == "magic + junk":
        files[name] = GZ_MAGIC + draw(st.sampled_from([b"", b"\x08\x00"])) + junk
    elif kind == "flip":  # corrupt the deflate stream (or its CRC) of a real gzip
        data = bytearray(gzip.compress(text, mtime=0))
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randint(10, len(data) - 1)] ^= 1 << rnd.randint(0, 7)
        files[name] = bytes(data)
    elif kind == "tail":  # a valid gzip followed by bytes that are not another gzip member
        files[name] = gzip.compress(text, mtime=0) + junk
    else:  # two gzip members: valid gzip, the text twice
        files[name] = gzip.compress(text, mtime=0) + gzip.compress(text, mtime=0)


def m_line_ends(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    ends = draw(
        st.lists(
            st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b" \r\n", b"\r\r\n", b"\t\n"]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )

    def change(text: bytes) -> bytes:
        lines = [line.rstrip(b"\r") for line in split_lines(text)]
        return b"".join(line + rnd.choice(ends) for line in lines if line)

    edit(files, name, change)


def m_quotes(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    kind = draw(st.sampled_from(["quote fields", "lone quote", "quoted newline"]))
    if draw(st.booleans()):
        grow(files, name, 30)  # past the csv module's 128 KiB field limit

    def change(text: bytes) -> bytes:
        lines = split_lines(text)
        own = b"\t" if b"\t" in lines[0] else b","
        i = rnd.randint(0, min(len(lines) - 1, 40))
        fields = lines[i].split(own)
        j = rnd.randint(0, len(fields) - 1)
        if kind == "quote fields":
            lines[i] = own.join(b'"' + f + b'"' for f in fields)
        elif kind == "lone quote":
            fields[j] = b'"' + fields[j]
            lines[i] = own.join(fields)
        else:
            fields[j] = b'"1\n2"'
            lines[i] = own.join(fields)
        return b"\n".join(lines)

    edit(files, name, change)


def m_values(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    tokens = draw(
        st.lists(
            st.one_of(
                st.sampled_from(
                    [b"-1", b"x", b"", b"3.5", b"100", b"1e3", b"+1", b"01", b" 2 ", b"1_0", b"Yes"]
                ),
                st.binary(max_size=6).filter(lambda b: b"\n" not in b),
            ),
            min_size=1,
            max_size=6,
        )
    )

    def change(text: bytes) -> bytes:
        lines = split_lines(text)
        own = b"\t" if b"\t" in lines[0] else b","
        for token in tokens:
            i = rnd.randint(0, len(lines) - 1)
            fields = lines[i].split(own)
            fields[rnd.randint(0, len(fields) - 1)] = token
            lines[i] = own.join(fields)
        return b"\n".join(lines)

    edit(files, name, change)


def m_bitflip(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    data = bytearray(files[name])
    for _ in range(draw(st.integers(1, 4))):
        if data:
            data[rnd.randint(0, len(data) - 1)] ^= 1 << rnd.randint(0, 7)
    files[name] = bytes(data)


def m_dictionary(draw: Draw, rnd: random.Random, files: Files) -> None:
    present = [n for n in files if n.rsplit(".gz", 1)[0] in DICTIONARIES]
    kind = draw(st.sampled_from(["swap", "drop line", "rename", "random text", "data as dictionary", "add"]))
    if kind == "add" or not present:
        source = dict(base_files("uci", False, False))["dictionary.txt"]
        files["dictionary.txt"] = source if draw(st.booleans()) else source.replace(b"MOSTYPE", b"MOSTYP")
        return
    name = present[0]
    if kind == "data as dictionary":  # a data file named like the dictionary
        data = next(files[n] for n in data_names(files) if n != name)
        files[name] = data
        return
    if kind == "random text":
        files[name] = draw(st.binary(min_size=1, max_size=500).map(lambda b: bytes(x % 95 + 32 for x in b)))
        return

    def change(text: bytes) -> bytes:
        lines = split_lines(text)
        numbered = [i for i, ln in enumerate(lines) if re.match(rb'\s*"?\d+[\s,]', ln)]
        i = rnd.choice(numbered) if numbered else 0
        if kind == "drop line":
            del lines[i]
        elif kind == "rename":
            lines[i] = re.sub(rb"[A-Z][A-Z0-9]+", b"WRONG", lines[i], count=1)
        elif len(numbered) > 1:  # swap two entries' codes
            k = rnd.choice([n for n in numbered if n != i])
            lines[i], lines[k] = lines[k], lines[i]
        return b"\n".join(lines)

    edit(files, name, change)


EXTRAS: dict[str, Callable[[Draw], bytes]] = {
    "_SUCCESS": lambda d: b"",
    "sub/_SUCCESS": lambda d: b"done\n",
    ".hidden.csv": lambda d: d(st.binary(max_size=200)),
    ".part-0001.tmp": lambda d: b"1,2,3\n",
    "sub/.cache/x.csv": lambda d: b"\x00\x01",
    "placeholder.csv": lambda d: b"",
    "sub/empty.txt.gz": lambda d: b"",
}


def m_extras(draw: Draw, rnd: random.Random, files: Files) -> None:
    chosen = draw(st.lists(st.sampled_from(sorted(EXTRAS)), min_size=1, max_size=4, unique=True))
    if draw(st.integers(0, 4)) == 0:  # nothing but markers, placeholders and hidden files
        files.clear()
    for name in chosen:
        files[name] = EXTRAS[name](draw)


def m_pair(draw: Draw, rnd: random.Random, files: Files) -> None:
    evals = [n for n in files if n.rsplit(".gz", 1)[0] in EVAL_PARTNERS]
    kind = draw(
        st.sampled_from(
            ["drop eval", "drop targets", "fewer targets", "more targets", "move eval", "rename targets"]
        )
    )
    if not evals:  # named layout: a targets file alone
        files["gt.csv"] = b"0\n" + b"1\n0\n" * draw(st.integers(1, 5))
        return
    ev = evals[0]
    suffix = ".gz" if ev.endswith(".gz") else ""
    tg = EVAL_PARTNERS[ev.removesuffix(".gz")] + suffix
    if tg not in files:  # an earlier mutation took it away already
        files[tg] = b"0\n"
    if kind == "drop eval":
        del files[ev]
    elif kind == "drop targets":
        del files[tg]
    elif kind == "fewer targets":
        n = draw(st.integers(1, 5))
        edit(files, tg, lambda t: b"\n".join(split_lines(t.rstrip(b"\r\n"))[:-n]) + b"\n")
    elif kind == "more targets":
        edit(files, tg, lambda t: t + b"0\n" * draw(st.integers(1, 5)))
    elif kind == "move eval":
        files["sub/" + ev] = files.pop(ev)
    else:
        files["labels" + suffix] = files.pop(tg)


def m_rename(draw: Draw, rnd: random.Random, files: Files) -> None:
    name = draw(st.sampled_from(data_names(files)))
    new = draw(
        st.sampled_from(["data.bin", "x.csv.gz", "DATA.CSV", "données 2000.csv", "a b/c.csv", "noext"])
    )
    if new not in files:
        files[new] = files.pop(name)


MUTATIONS: dict[str, Callable[[Draw, random.Random, Files], None]] = {
    "truncate": m_truncate,
    "delimiter": m_delimiter,
    "column count": m_columns,
    "huge line": m_huge_line,
    "non-utf8": m_non_utf8,
    "nul bytes": m_nul,
    "random binary": m_binary,
    "blank": m_blank,
    "header only": m_header_only,
    "gzip garbage": m_gzip_garbage,
    "line ends": m_line_ends,
    "quotes": m_quotes,
    "bad values": m_values,
    "bit flips": m_bitflip,
    "dictionary": m_dictionary,
    "markers and hidden files": m_extras,
    "eval/targets": m_pair,
    "rename": m_rename,
}


class Case:
    """Files to drop in the input folder and the job's arguments (a plain class: hypothesis prints its
    short repr for a failing case, not every byte of every file)."""

    def __init__(
        self,
        files: Files,
        mutations: list[str],
        input_url: str | None = None,
        hosts: int = 1,
        max_reject_fraction: float = 0.01,
    ) -> None:
        self.files = files
        self.mutations = mutations
        self.input_url = input_url
        self.hosts = hosts
        self.max_reject_fraction = max_reject_fraction

    def __repr__(self) -> str:
        sizes = {n: len(b) for n, b in sorted(self.files.items())}
        return (
            f"Case(mutations={self.mutations}, input_url={self.input_url!r}, hosts={self.hosts}, "
            f"max_reject_fraction={self.max_reject_fraction}, sizes={sizes})"
        )


@st.composite
def broken_inputs(draw: Draw) -> Case:
    layout = draw(st.sampled_from(("uci", "seed", "named")))
    files = dict(base_files(layout, draw(st.booleans()), draw(st.booleans())))
    kinds = draw(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3))
    rnd = draw(st.randoms(use_true_random=False))
    for kind in kinds:
        MUTATIONS[kind](draw, rnd, files)
    mode = draw(st.sampled_from(["folder", "folder", "object", "none"]))
    url = None
    if mode == "folder":
        url = "s3://data-bucket/raw/upload/"
    elif mode == "object":
        top = sorted(n for n in files if "/" not in n) or ["missing.csv"]
        url = "s3://data-bucket/raw/upload/" + draw(st.sampled_from([*top, "missing.csv"]))
    return Case(
        files,
        kinds,
        url,
        hosts=draw(st.sampled_from([1, 1, 1, 2])),
        max_reject_fraction=draw(st.sampled_from([0.01, 0.01, 0.25, 1.0])),
    )


# -- running and checking ----------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    stderr: str
    input_dir: Path
    output_dir: Path
    answer: tuple[Any, ...] = ()  # what a user sees, to compare runs: exit, error, clean data, rejects

    def observe(self, root: Path) -> None:
        out = self.output_dir
        clean = [p.read_bytes() for p in sorted(out.glob("full_data*.csv"))]
        reports = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("report*.json"))]
        rejects = [r.get("totals", {}).get("rejected_by_reason") for r in reports]
        self.answer = (self.code, self.stderr.strip().replace(str(root), "<tmp>"), clean, rejects)


def lay_out(case: Case, root: Path) -> tuple[Path, Path, list[str], dict[str, str]]:
    """Write the case's files; returns input dir, output dir, the job's arguments and the input hashes."""
    input_dir, output_dir = root / "input", root / "output"
    input_dir.mkdir()
    for name, data in case.files.items():
        path = input_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    config = root / "resourceconfig.json"
    if case.hosts > 1:
        hosts = [f"algo-{i + 1}" for i in range(case.hosts)]
        config.write_text(json.dumps({"current_host": "algo-1", "hosts": hosts}), encoding="utf-8")
    args = ["--schema", str(SCHEMA), "--input-dir", str(input_dir), "--output-dir", str(output_dir)]
    args += ["--resource-config", str(config), "--max-reject-fraction", str(case.max_reject_fraction)]
    if case.input_url:
        args += ["--input-url", case.input_url]
    return input_dir, output_dir, args, snapshot(input_dir)


def snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run_in_process(args: list[str]) -> tuple[int, str]:
    """The ETL's main in this process: it returns the exit code; an exception escaping it (the job would die
    with a traceback) is counted as a crash and fails the test as it is."""
    stderr = io.StringIO()
    escaped = True
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(args)
        escaped = False
    finally:
        if escaped:
            TALLY.outcomes["crash"] += 1
            TALLY.violations["exception escaped main"] += 1
    return code, stderr.getvalue()


@cache
def bundle_path() -> Path:
    """The bundle the pipeline ships (etl.pyz), built from this checkout."""
    path = Path(tempfile.mkdtemp(prefix="etl-bundle-")) / "etl.pyz"
    path.write_bytes(bundle(Path(cli.__file__).parent))
    return path


def run_subprocess(args: list[str]) -> tuple[int, str]:
    cmd = [sys.executable, str(bundle_path()), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if "Traceback" in done.stderr:
        TALLY.outcomes["crash"] += 1
        TALLY.violations["traceback on stderr"] += 1
    return done.returncode, done.stderr


def violated(name: str, condition: bool, detail: str) -> None:
    if not condition:
        TALLY.violations[name] += 1
        raise AssertionError(f"{name}: {detail}")


def count_rows(data: bytes, has_header: bool) -> int:
    """The data rows the file holds: lines (ended by LF, CRLF or CR, as pyarrow's reader reads them) with
    more than blanks and delimiters, below the header when it has one."""
    text, _ = unpack(data)
    lines = text.removeprefix(BOM).splitlines()
    if has_header:
        first = next((i for i, ln in enumerate(lines) if ln.strip(b" \t,")), len(lines))
        lines = lines[first + 1 :]
    return sum(1 for ln in lines if ln.strip(b" \t,"))


LABELS = {i: set(f.labels.to_pylist()) for i, f in enumerate(COIL.fields) if f.labels is not None}
HEADER = (",".join(f'"{n}"' if "," in n else n for n in COIL.names) + "\n").encode()


def check_clean_rows(path: Path) -> int:
    raw = path.read_bytes()
    violated("86-column header", raw.startswith(HEADER), f"{path.name} starts {raw[:60]!r}")
    rows = 0
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            rows += 1
            violated("86 values a row", len(row) == len(COIL.fields), f"row {rows} has {len(row)}: {row[:5]}")
            for i, value in enumerate(row):
                f = COIL.fields[i]
                inside = value.isdigit() and f.c.get("minimum", 0) <= int(value) <= f.c.get("maximum", 0)
                ok = value in LABELS[i] if i in LABELS else inside
                violated("values inside their domains", ok, f"row {rows} {f.name}={value!r}")
    return rows


def check_run(case: Case, run: Run) -> None:
    """Every property of one run (the tally counts outcomes and broken properties)."""
    code, out = run.code, run.output_dir
    TALLY.outcomes["exit_0" if code == 0 else "exit_1" if code == 1 else "other_exit"] += 1
    violated("exit code 0 or 1", code in (0, 1), f"exit {code}, stderr {run.stderr!r}")
    violated("no traceback", "Traceback" not in run.stderr, run.stderr)
    left = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    violated(
        "temporary file left",
        not [n for n in left if n.startswith(".") or n.endswith(".tmp")],
        f"output folder holds {left}",
    )
    report_name = next((n for n in left if n.startswith("report") and n.endswith(".json")), None)
    report: dict[str, Any] = (
        json.loads((out / report_name).read_text(encoding="utf-8")) if report_name else {}
    )
    if code != 0:
        lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
        violated("one line on stderr", len(lines) == 1, f"stderr {run.stderr!r}")
        line = lines[0]
        violated("etl: error: prefix", line.startswith("etl: error: "), line)
        names = [*case.files, *(n.rsplit("/", 1)[-1] for n in case.files), str(run.input_dir)]
        threshold = re.search(r"failed validation, above --max-reject-fraction|no valid rows", line)
        violated(
            "the error names the file",
            any(n and n in line for n in names) or (threshold is not None and "rejects" in line),
            line,
        )
        violated("partial output", not [n for n in left if n.startswith("full_data")], f"left {left}")
        violated("report says failed", report.get("status") == "failed", f"report {report.get('status')}")
        if "error" in report:
            violated("report holds the error", line == "etl: error: " + report["error"], line)
        return
    violated("quiet success", run.stderr.strip() == "", f"stderr {run.stderr!r}")
    violated("report says succeeded", report.get("status") == "succeeded", f"report {report}")
    clean = out / report["outputs"]["full_data"]
    violated("clean data written", clean.is_file(), f"output folder holds {left}")
    written = check_clean_rows(clean)
    totals = report["totals"]
    violated("rows written == clean rows", totals["rows_written"] == written, f"{totals} vs {written}")
    violated(
        "written + rejected == read",
        totals["rows_written"] + totals["rows_rejected"] == totals["rows_read"],
        str(totals),
    )
    limit = csv.field_size_limit(sys.maxsize)  # a rejected row is kept whole, up to the 1 MiB line limit
    try:
        with (out / report["outputs"]["rejects"]).open(encoding="utf-8", newline="") as f:
            rejects = sum(1 for _ in csv.reader(f)) - 1
    finally:
        csv.field_size_limit(limit)
    violated("rejects.csv lists the rejects", rejects == totals["rows_rejected"], f"{rejects} vs {totals}")
    for entry in report["files"]:
        if entry["role"] not in DATA_ROLES:
            continue
        violated(
            "written + rejected == read",
            entry["rows_written"] + entry["rows_rejected"] == entry["rows_read"],
            str(entry),
        )
        violated(
            "an accepted data file yields rows",
            entry["rows_read"] > 0,
            f"{entry['path']} was read as data, yet no row came out of it: {entry}",
        )
        data = case.files[entry["path"]]
        if b'"' not in unpack(data)[0]:  # quoted CSV rows may span lines
            expected = count_rows(data, entry["layout"] in ("seed", "named"))
            violated(
                "every row of the file read (none silently dropped)",
                entry["rows_read"] == expected,
                f"{entry['path']}: report says {entry['rows_read']} rows read, the file holds {expected}",
            )
    TALLY.rows.update(
        rows_read=totals["rows_read"],
        rows_written=totals["rows_written"],
        rows_rejected=totals["rows_rejected"],
    )


def fuzz_once(case: Case, test: str, runner: Callable[[list[str]], tuple[int, str]] | None = None) -> Run:
    TALLY.cases[test] += 1
    TALLY.mutations.update(set(case.mutations))
    with tempfile.TemporaryDirectory() as tmp:
        input_dir, output_dir, args, before = lay_out(case, Path(tmp))
        if runner is None:
            code, stderr = run_in_process(args)
        else:
            code, stderr = runner(args)
        run = Run(code, stderr, input_dir, output_dir)
        violated("input modified", snapshot(input_dir) == before, "the input folder changed")
        check_run(case, run)
        run.observe(Path(tmp))
        return run


# -- the tests -----------------------------------------------------------------------------------------


@fuzz_settings(900)
@given(case=broken_inputs())
def test_broken_files_give_a_clear_error_or_accounted_rejects(case: Case) -> None:
    """Given generated files broken in one to three ways, when the ETL runs on them (in-process), then it
    exits 0 with every row accounted for or 1 with one line naming the file, leaving no partial output
    and the inputs untouched."""
    fuzz_once(case, "broken files")


@fuzz_settings(25)
@given(
    cut=st.floats(0.3, 0.999),
    kind=st.sampled_from(["truncate", "flip", "tail"]),
    junk=st.binary(min_size=1, max_size=64),
)
def test_a_gzip_broken_past_the_first_megabyte_is_a_clear_error(cut: float, kind: str, junk: bytes) -> None:
    """Given a gzip whose text is longer than what the ETL samples first, broken late in its stream
    (cut off, a corrupted byte, junk after the end), when the ETL runs, then it fails with one line
    naming the file, and no clean data is left."""
    data = bytearray(big_gzip())
    at = int(len(data) * cut)
    if kind == "truncate":
        data = data[:at]
    elif kind == "flip":
        data[at] ^= 0x5A
    else:  # junk after the gzip member (zero padding first, which gzip allows, then not a member)
        data += b"\x00" * len(junk) + b"X" + junk
    run = fuzz_once(Case({"Caravan.csv.gz": bytes(data)}, [f"gzip {kind} late"]), "late gzip damage")
    assert run.code == 1
    assert "Caravan.csv.gz" in run.stderr


@fuzz_settings(20)
@given(case=broken_inputs())
def test_the_job_as_a_subprocess_fails_the_same_clear_way(case: Case) -> None:
    """Given broken files, when the bundle the pipeline ships runs as the processing job runs it (a
    subprocess), then the same properties hold and it answers exactly as the in-process run does: no
    traceback ever reaches the log."""
    sub = fuzz_once(case, "subprocess", runner=run_subprocess)
    inproc = fuzz_once(case, "subprocess (in-process twin)")
    assert sub.answer == inproc.answer  # exit code, error line (temporary folder masked), outputs


# Regressions: the cases the fuzzer found, kept as plain examples.


def regression(files: Files, max_reject_fraction: float = 0.01) -> Run:
    return fuzz_once(Case(files, ["regression"], max_reject_fraction=max_reject_fraction), "regressions")


def test_a_corrupted_deflate_stream_is_a_clear_error() -> None:
    """Given a gzip whose deflate stream is corrupted near its start (zlib: invalid distance), when the ETL
    runs, then it fails with one line naming the file instead of a zlib traceback."""
    data = bytearray(dict(base_files("named", True, False))["Caravan.csv.gz"])
    data[20:40] = b"x" * 20
    run = regression({"Caravan.csv.gz": bytes(data)})
    assert run.code == 1
    assert run.stderr.startswith("etl: error: Caravan.csv.gz: cannot be read")


def test_a_gzip_cut_after_the_first_megabyte_is_a_clear_error() -> None:
    """Given a gzip cut off after more than 1 MiB of text (the sample the ETL reads first is whole), when
    the ETL runs, then it fails with one line naming the file instead of a traceback."""
    data = big_gzip()
    run = regression({"Caravan.csv.gz": data[: len(data) * 9 // 10]})
    assert run.code == 1
    assert run.stderr.startswith("etl: error: Caravan.csv.gz: cannot be read")


def test_a_csv_with_every_field_quoted_gives_the_same_clean_rows() -> None:
    """Given a named CSV whose every field is quoted, as some spreadsheets write CSV, when the ETL runs,
    then it writes the same clean data as for the file without quotes (a quote around a value is not
    part of it)."""
    plain = dict(base_files("named", False, False))["Caravan.csv"]
    quoted = b"\n".join(b'"' + ln.replace(b",", b'","') + b'"' if ln else ln for ln in plain.split(b"\n"))
    assert regression({"Caravan.csv": quoted}).answer == regression({"Caravan.csv": plain}).answer


def test_lines_ending_in_cr_alone_are_read_as_lines() -> None:
    """Given a file whose lines end in CR alone (classic Mac line ends), when the ETL runs, then it reads
    every row, as pyarrow's reader ends a line at a CR, instead of taking the file for one long line."""
    named = dict(base_files("named", False, False))["Caravan.csv"]
    run = regression({"Caravan.csv": named.replace(b"\n", b"\r")})
    assert run.code == 0
    assert run.answer == regression({"Caravan.csv": named}).answer


def test_a_value_of_thousands_of_digits_is_rejected_not_a_crash() -> None:
    """Given a row whose first value has 5,000 digits (int() refuses over 4,300), when the ETL runs, then
    the row is rejected as not an integer instead of a ValueError traceback."""
    lines = dict(base_files("named", False, False))["Caravan.csv"].split(b"\n")
    lines[5] = b"1" * 5000 + lines[5][lines[5].index(b",") :]
    run = regression({"Caravan.csv": b"\n".join(lines)}, max_reject_fraction=0.5)
    assert run.code == 0
    assert run.answer[3] == [{"zip_agg_customer_subtype: not an integer": 1}]


def test_a_target_of_thousands_of_digits_is_rejected_not_a_crash() -> None:
    """Given a targets file with a 5,000-digit target, when the ETL runs, then that eval row is rejected."""
    files = dict(base_files("uci", False, False))
    targets = files["tictgts2000.txt"].split(b"\n")
    targets[3] = b"9" * 5000
    files["tictgts2000.txt"] = b"\n".join(targets)
    run = regression(files, max_reject_fraction=0.5)
    assert run.code == 0
    assert run.answer[3] == [{"nbr_mobile_home_policies: not an integer": 1}]


def test_a_row_padded_past_the_block_size_between_ordinary_rows_is_read() -> None:
    """Given a valid row padded with trailing blanks to more than the reader's block, between ordinary
    rows, when the ETL runs, then that row is read as the others are (blanks around a value do not count)."""
    named = dict(base_files("named", False, False))["Caravan.csv"]
    lines = named.split(b"\n")
    lines[3] += b" " * BLOCK_BYTES
    run = regression({"Caravan.csv": b"\n".join(lines)})
    assert run.answer == regression({"Caravan.csv": named}).answer


def test_a_quoted_line_break_in_a_targets_file_is_one_bad_target() -> None:
    """Given seed eval rows whose targets file has a quoted line break ("1 / 0"), when the ETL runs,
    then the quoted value is one target (CSV quoting, as the old etl.py read it): the eval row it goes
    with is rejected as not an integer and the other rows keep their own targets."""
    files = dict(base_files("seed", False, False))
    targets = files["gt.csv"].split(b"\n")
    targets[2] = b'"1\n0"'
    files["gt.csv"] = b"\n".join(targets)
    run = regression(files)
    assert run.code == 1
    assert "1 nbr_mobile_home_policies: not an integer" in run.stderr
    assert run.answer[3] == [{"nbr_mobile_home_policies: not an integer": 1}]
