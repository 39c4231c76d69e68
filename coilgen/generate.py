"""Generate COIL 2000-shaped data: every raw layout, real domains, deterministic for a seed.

The real rows may not be shipped (research/education licence), so tests, benchmarks and the demo use
this. Values follow the real columns' domains and rough shapes (most policy columns zero, counts only
where the matching contribution is non-zero, about 6% of targets 1).
"""

from __future__ import annotations

import gzip as gzip_module
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from coilgen.dictionary import CODES, N_COLUMNS, N_FEATURES, col_info_csv, dictionary_txt

LAYOUTS = ("uci", "seed", "named")
ROW_FAULTS = ("bad-values", "short-rows", "wrong-columns", "garbage-bytes")
FILE_FAULTS = ("empty-file", "binary-file")
FAULTS = ROW_FAULTS + FILE_FAULTS
REAL_TRAIN, REAL_EVAL = 5822, 4000  # the real split, kept in proportion
TARGET_RATE = 0.06  # 348/5822 and 238/4000 in the real data
CHUNK = 50_000  # rows generated at a time: memory stays flat for any row count
BAD_TOKENS = (b"-1", b"x", b"", b"3.5", b"100", b"1e3")


@dataclass
class FileManifest:
    """What went into one generated file: its data rows and the physical lines of injected faults."""

    name: str
    role: str  # labelled | eval | targets | dictionary | placeholder | binary
    rows: int = 0
    fault_lines: dict[str, list[int]] = field(default_factory=dict)

    @property
    def faulty_rows(self) -> int:
        return sum(len(v) for v in self.fault_lines.values())


@dataclass
class Generated:
    out_dir: Path
    layout: str
    labelled_rows: int
    eval_rows: int
    files: dict[str, FileManifest]

    @property
    def rows(self) -> int:
        return self.labelled_rows + self.eval_rows

    @property
    def faulty_rows(self) -> int:
        return sum(f.faulty_rows for f in self.files.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "layout": self.layout,
            "labelled_rows": self.labelled_rows,
            "eval_rows": self.eval_rows,
            "rows": self.rows,
            "faulty_rows": self.faulty_rows,
            "files": {
                name: {"role": f.role, "rows": f.rows, "fault_lines": f.fault_lines}
                for name, f in self.files.items()
            },
        }


def _column_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """An (n, 86) int16 matrix of valid values."""
    out = np.zeros((n, N_COLUMNS), dtype=np.int16)
    subtypes = np.array([v for v in range(1, 42) if v != 14])  # code 14 never occurs in the real data
    out[:, 0] = rng.choice(subtypes, n)
    out[:, 1] = rng.choice(np.arange(1, 11), n, p=_decay(10, 0.35))
    out[:, 2] = rng.choice(np.arange(1, 7), n, p=[0.05, 0.3, 0.4, 0.2, 0.04, 0.01])
    out[:, 3] = rng.choice(np.arange(1, 7), n, p=[0.02, 0.25, 0.5, 0.18, 0.04, 0.01])
    out[:, 4] = rng.integers(1, 11, n)
    out[:, 5:41] = rng.integers(0, 10, (n, 36))  # L3 percentage bins
    out[:, 41] = rng.integers(0, 10, n)  # MINKGEM
    out[:, 42] = rng.integers(1, 9, n)  # MKOOPKLA: 1-8 seen
    # Contributions (L4) are mostly 0; a count is non-zero exactly where its contribution is.
    for k in range(21):
        p_zero = 0.55 + 0.44 * (k % 5) / 4
        has = rng.random(n) >= p_zero
        out[:, 43 + k] = np.where(has, rng.integers(1, 10, n), 0)
        out[:, 64 + k] = np.where(has, np.minimum(rng.geometric(0.7, n), 12), 0)
    out[:, 85] = rng.random(n) < TARGET_RATE
    return out


def _decay(k: int, rate: float) -> list[float]:
    w = np.exp(-rate * np.arange(k))
    return list(w / w.sum())


# Each column's token table: value -> bytes, padded with 0xFF (removed after gathering).
PAD = 0xFF


def _token_table(tokens: list[bytes]) -> np.ndarray:
    width = max(len(t) for t in tokens)
    table = np.full((len(tokens), width), PAD, dtype=np.uint8)
    for i, t in enumerate(tokens):
        table[i, : len(t)] = np.frombuffer(t, dtype=np.uint8)
    return table


_NUMBERS = _token_table([str(v).encode() for v in range(100)])
_YES_NO = _token_table([b"No", b"Yes"])


def _format(values: np.ndarray, sep: bytes, yes_no: bool, eol: bytes) -> bytes:
    """Rows as delimited text, vectorised: gather fixed-width tokens, then drop the padding."""
    n, ncols = values.shape
    pieces = []
    for c in range(ncols):
        table = _YES_NO if (yes_no and c == N_FEATURES) else _NUMBERS
        pieces.append(table[values[:, c]])
        end = eol if c == ncols - 1 else sep
        pieces.append(np.broadcast_to(np.frombuffer(end, dtype=np.uint8), (n, len(end))))
    flat = np.concatenate(pieces, axis=1).ravel()
    return bytes(flat[flat != PAD].tobytes())


def _inject(
    text: bytes,
    kinds: list[str],
    rate: float,
    rng: np.random.Generator,
    first_line: int,
    sep: bytes,
    eol: bytes,
) -> tuple[bytes, dict[str, list[int]]]:
    """Corrupt about `rate` of the rows, spread over `kinds`; returns the text and the faulty line numbers."""
    lines = text.split(eol)
    tail = lines.pop()  # empty: the text ends with eol
    hit = np.flatnonzero(rng.random(len(lines)) < rate)
    faults: dict[str, list[int]] = {}
    for i in hit.tolist():
        kind = kinds[int(rng.integers(len(kinds)))]
        fields = lines[i].split(sep)
        if kind == "bad-values":
            fields[int(rng.integers(len(fields)))] = BAD_TOKENS[int(rng.integers(len(BAD_TOKENS)))]
        elif kind == "short-rows":
            del fields[-int(rng.integers(1, 6)) :]
        elif kind == "wrong-columns":
            fields.extend([b"0"] * int(rng.integers(1, 4)))
        else:  # garbage-bytes: non-ASCII junk in a field (never NUL, a delimiter or a line end)
            fields[int(rng.integers(len(fields)))] = bytes(rng.integers(0x80, 0x100, 4, dtype=np.uint8))
        lines[i] = sep.join(fields)
        faults.setdefault(kind, []).append(first_line + i)
    return eol.join([*lines, tail]), faults


class _Writer:
    def __init__(self, path: Path, gz: bool) -> None:
        self.path = path
        self.raw: IO[bytes] = open(path, "wb")  # noqa: SIM115
        self.f: IO[bytes] = self.raw
        if gz:
            self.f = gzip_module.GzipFile(fileobj=self.raw, mode="wb", compresslevel=6, mtime=0)  # type: ignore[assignment]

    def write(self, data: bytes) -> None:
        self.f.write(data)

    def close(self) -> None:
        self.f.close()
        if self.raw is not self.f:
            self.raw.close()


def _chunks(total: int) -> Iterator[int]:
    done = 0
    while done < total:
        n = min(CHUNK, total - done)
        yield n
        done += n


def generate(
    out_dir: Path | str,
    layout: str = "seed",
    rows: int = 9822,
    seed: int = 0,
    gzip: bool = False,
    faults: tuple[str, ...] | list[str] = (),
    fault_rate: float = 0.005,
    crlf: bool = False,
    trailing_blanks: bool = False,
    dictionary: bool = True,
) -> Generated:
    """Write one layout's files into out_dir.

    rows: data rows in total (what full_data.csv will hold); uci and seed split them like the real
    data (5822 labelled : 4000 eval), named puts them all in one labelled file.
    faults: row faults (bad-values, short-rows, wrong-columns, garbage-bytes) hit about fault_rate of
    the rows of each data file; file faults add a zero-byte placeholder (empty-file) or a binary file
    named like data (binary-file).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {FAULTS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if layout == "named":
        n_train, n_eval = rows, 0
    else:
        n_train = round(rows * REAL_TRAIN / (REAL_TRAIN + REAL_EVAL))
        n_eval = rows - n_train
    row_faults = [f for f in faults if f in ROW_FAULTS]
    eol = b"\r\n" if crlf else b"\n"
    sep = b"\t" if layout == "uci" else b","
    suffix = ".gz" if gzip else ""
    names = {
        "uci": ("ticdata2000.txt", "ticeval2000.txt", "tictgts2000.txt", "dictionary.txt"),
        "seed": ("train.csv", "test.csv", "gt.csv", "col_info.csv"),
        "named": ("Caravan.csv", "", "", ""),
    }[layout]
    manifest: dict[str, FileManifest] = {}

    def header(ncols: int) -> bytes:
        if layout == "seed":
            return sep.join(str(i).encode() for i in range(ncols)) + eol
        if layout == "named":
            return sep.join([c.encode() for c in CODES[:N_FEATURES]] + [b"Purchase"]) + eol
        return b""

    def data_file(name: str, role: str, n: int, stream: int) -> None:
        rng = np.random.default_rng([seed, stream])
        frng = np.random.default_rng([seed, stream, 1])
        entry = manifest[name + suffix] = FileManifest(name + suffix, role, n)
        w = _Writer(out / (name + suffix), gzip)
        targets = _Writer(out / (names[2] + suffix), gzip) if role == "eval" else None
        if targets is not None:
            manifest[names[2] + suffix] = FileManifest(names[2] + suffix, "targets", n)
            if layout == "seed":
                targets.write(b"0" + eol)
        ncols = N_FEATURES if role == "eval" else N_COLUMNS
        head = header(ncols)
        w.write(head)
        line = 2 if head else 1
        for k in _chunks(n):
            values = _column_values(rng, k)
            text = _format(values[:, :ncols], sep, layout == "named", eol)
            if row_faults:
                text, hit = _inject(text, row_faults, fault_rate, frng, line, sep, eol)
                for kind, lines in hit.items():
                    entry.fault_lines.setdefault(kind, []).extend(lines)
            if trailing_blanks:
                text = text.replace(eol, b"  " + eol)
            w.write(text)
            if targets is not None:
                targets.write(_format(values[:, N_FEATURES:], sep, False, eol))
            line += k
        if trailing_blanks:
            w.write(eol + b"   " + eol)
        w.close()
        if targets is not None:
            targets.close()

    data_file(names[0], "labelled", n_train, 1)
    if names[1]:
        data_file(names[1], "eval", n_eval, 2)
    if dictionary and names[3]:
        body = dictionary_txt() if names[3] == "dictionary.txt" else col_info_csv()
        w = _Writer(out / (names[3] + suffix), gzip)
        w.write(body)
        w.close()
        manifest[names[3] + suffix] = FileManifest(names[3] + suffix, "dictionary")
    if "empty-file" in faults:
        (out / "placeholder.csv").write_bytes(b"")
        manifest["placeholder.csv"] = FileManifest("placeholder.csv", "placeholder")
    if "binary-file" in faults:
        blob = np.random.default_rng([seed, 99]).integers(0, 256, 4096, dtype=np.uint8).tobytes()
        (out / "blob.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00" + blob)
        manifest["blob.csv"] = FileManifest("blob.csv", "binary")
    return Generated(out, layout, n_train, n_eval, manifest)


def copy_layout(src: Path, dst: Path) -> None:
    """Copy a generated folder (tests reuse one generation for several runs)."""
    shutil.copytree(src, dst)
