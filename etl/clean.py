"""Checking a block of rows against the schema's fields with pyarrow.compute and numpy; categories decoded."""

import contextlib
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.read import Block, FileInfo
from etl.schema import FORMATS, TYPES, Field, Schema

OK, MISSING, TYPE, BELOW, ABOVE, ENUM, CATEGORY, PATTERN, SHORT, LONG = range(10)  # a value's problem
TRIM = " \t\r\n\"'"  # blanks and quotes around a value that is not a string do not count
NUMERIC = {"integer": r"^[+-]?[0-9]{1,18}$", "number": r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"}
NOT_A = {"integer": "not an integer", "number": "not a number", "date": "not a date ({})"}  # a TYPE problem
NOT_A |= {"datetime": "not a date and time ({})", "boolean": "not one of {}"}
NOT_A |= dict.fromkeys(("string", "any"), "not valid UTF-8 text")
Reject = tuple[int, bytes, str, str]  # line, the row as read, reason, category
# Each type arrow casts whole, with its widest range (NaT compares as false). Not datetime: arrow's cast
# also takes "2020-01-01" and "2020-01-01 10:00", which the standard's format refuses.
BOUNDS: dict[str, tuple[Any, Any]] = {"date": (np.datetime64("NaT", "D"),) * 2}
BOUNDS |= {"integer": (np.iinfo(np.int64).min, np.iinfo(np.int64).max), "number": (-np.inf, np.inf)}
Keys = dict[tuple[Any, ...], tuple[str, int]]  # primary key -> (file, line) of the row that has it


def original(field: bytes) -> bytes:  # the file's bytes of a field read as latin-1
    return field.decode("utf-8").encode("latin-1")


@cache  # a field is hashed by its identity
def fast(f: Field) -> bool:
    """Whether an ordered column may be cast whole: the standard format, no missing value reading as one."""
    if f.type not in BOUNDS or f.format != FORMATS.get(f.type, ""):
        return False
    for value in f.missing:
        with contextlib.suppress(pa.ArrowInvalid):
            pa.array([value.strip(TRIM)]).cast(TYPES[f.type])
            return False  # it reads as a value
    return True


def flag(problem: np.ndarray, mask: pa.Array | np.ndarray, code: int) -> None:
    """Mark the values still without a problem where `mask` is true."""
    hit = mask if isinstance(mask, np.ndarray) else pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    problem[(problem == OK) & hit] = code


def text(raw: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The values as text (the reader's latin-1 back to the file's UTF-8, else null), their byte lengths."""
    offsets = np.frombuffer(raw.buffers()[1], np.int32)[raw.offset : raw.offset + len(raw) + 1]
    data = np.frombuffer(raw.buffers()[2] or b"", np.uint8)[offsets[0] : offsets[-1]]
    if data.max(initial=0) < 128:  # ASCII: as it is
        return raw.view(pa.string()), np.diff(offsets)
    texts = [original(v).decode("utf-8", "replace") for v in raw.to_pylist()]
    s = pa.array([None if "\ufffd" in t else t for t in texts], pa.string())
    return s, pc.fill_null(pc.binary_length(s), -1).to_numpy()


def convert(f: Field, raw: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(the values as the field's type, null where there is none; each value's problem code)."""
    problem = np.zeros(len(raw), np.int8)
    if textual := f.type in ("string", "any"):
        s, lengths = text(raw)
        missing = pc.is_in(s, pa.array(f.missing, pa.string())) if f.missing != ("",) else lengths == 0
        values, ok = s, pc.is_valid(s)
    else:
        s = pc.utf8_trim(raw.view(pa.string()), TRIM)
        missing = pc.is_in(s, pa.array([m.strip(TRIM) for m in f.missing], pa.string()))
    if f.type in NUMERIC:
        ok = pc.match_substring_regex(s, NUMERIC[f.type])
        plain = pc.replace_substring_regex(s, r"^\+", "")  # pyarrow reads no leading plus
        values = pc.cast(pc.if_else(ok, plain, pa.scalar(None, pa.string())), TYPES[f.type])
    elif f.type == "boolean":
        index = pc.index_in(s, value_set=pa.array(f.true + f.false, pa.string()))
        values, ok = pc.less(index, len(f.true)), pc.is_valid(index)
    elif not textual:
        stamps = pc.strptime(s, format=f.format, unit="s", error_is_null=True)
        ok = pc.fill_null(pc.equal(pc.strftime(stamps, format=f.format), s), False)  # not 2023-02-29 as 03-01
        values = stamps.cast(TYPES[f.type])
    flag(problem, missing, MISSING)
    flag(problem, pc.invert(ok), TYPE)
    if problem.any():
        values = pc.if_else(pa.array(problem == OK), values, pa.scalar(None, TYPES[f.type]))
    return values, problem


def constrain(f: Field, values: pa.Array, problem: np.ndarray, ranged: bool) -> pa.Array:
    """Check the field's constraints (its range unless `ranged` already); the values to write."""
    compare = {"minimum": (pc.less, BELOW), "maximum": (pc.greater, ABOVE)}
    compare |= {"minLength": (pc.less, SHORT), "maxLength": (pc.greater, LONG)}
    for key, (test, code) in compare.items():
        if f.c.get(key) is not None and not (ranged and code in (BELOW, ABOVE)):
            value = pc.utf8_length(values) if key.endswith("Length") else values
            flag(problem, test(value, pa.scalar(f.c[key], value.type)), code)
    pattern = f"^(?:{f.c['pattern']})$" if "pattern" in f.c else None
    for code, test in ((ENUM, f.c.get("enum")), (PATTERN, pattern), (CATEGORY, f.categories)):
        if test is not None:  # checked once a distinct value
            distinct = pc.unique(values).drop_null()
            fits = pc.match_substring_regex(distinct, test) if code == PATTERN else pc.is_in(distinct, test)
            if len(wrong := distinct.filter(pc.invert(fits))):
                flag(problem, pc.is_in(values, wrong), code)
    if not f.c.get("required"):
        problem[problem == MISSING] = OK
    return values if f.labels is None else f.labels.take(pc.index_in(values, value_set=f.categories))


def cast_together(fields: list[Field], raws: list[pa.Array | None], n: int) -> dict[int, Any]:
    """{field: (values, problem)} of the ordered columns that cast whole, one call a type (else a column),
    checked against their ranges in numpy; one that does not cast (a bad or missing value) is left out."""
    done: dict[int, Any] = {}
    for kind, (low, high) in BOUNDS.items():
        ids = [i for i, f in enumerate(fields) if f.type == kind and raws[i] is not None and fast(f)]
        for group in [ids, *([i] for i in ids)]:  # the type's columns together, else each alone
            if not group or done.keys() & set(group):
                continue
            try:
                flat = pa.concat_arrays([raws[i] for i in group]).view(pa.string()).cast(TYPES[kind])
            except pa.ArrowInvalid:  # read value by value
                continue
            v, problems = flat.to_numpy(False).reshape(len(group), n), np.zeros((len(group), n), np.int8)
            lo = np.array([fields[i].c.get("minimum", low) for i in group], v.dtype)[:, None]
            hi = np.array([fields[i].c.get("maximum", high) for i in group], v.dtype)[:, None]
            problems[v < lo], problems[v > hi] = BELOW, ABOVE
            done |= {i: (flat.slice(k * n, n), problems[k]) for k, i in enumerate(group)}
    return done


def reason(f: Field, column: int | None, code: int, raw: pa.Scalar | None) -> tuple[str, str]:
    """(reason, category) of a value's problem."""
    shown = repr(original(raw.as_py() or b"").decode("utf-8", "backslashreplace") if raw else "")
    shown = shown[:22] + "..." if len(shown) > 40 else shown
    what = NOT_A[f.type].format(f.format if f.type in FORMATS else "/".join(f.true + f.false))
    text, category = {
        MISSING: ("missing value", "missing value"), TYPE: (f"{shown} is {what}", what),
        BELOW: (f"{shown} is below its minimum {f.c.get('minimum')}", "below its minimum"),
        ABOVE: (f"{shown} is above its maximum {f.c.get('maximum')}", "above its maximum"),
        ENUM: (f"{shown} is not in its enum", "not in its enum"),
        CATEGORY: (f"{shown} is not one of its {len(f.categories or [])} categories", "not a category"),
        PATTERN: (f"{shown} does not match its pattern {f.c.get('pattern')!r}", "does not match its pattern"),
        SHORT: (f"{shown} is shorter than {f.c.get('minLength')}", "too short"),
        LONG: (f"{shown} is longer than {f.c.get('maxLength')}", "too long"),
    }[code]  # fmt: skip
    return f"{f.name} (column {'absent' if column is None else column + 1}): {text}", f"{f.name}: {category}"


def check(schema: Schema, block: Block, info: FileInfo, keys: Keys) -> tuple[pa.RecordBatch, list[Reject]]:
    """(the clean rows, the rejects: every problem of a row, the wrong numbers of fields, duplicate keys)."""
    count, notes, n = f"expected {info.ncols} fields, found", block.notes or {}, len(block.lines)
    rejects: list[Reject] = [(n, row, f"{count} {k}", "wrong number of fields") for n, row, k in block.odd]
    raws = [block.columns[j] if j is not None and block.columns else None for j in info.columns]
    together, arrays, problems = cast_together(schema.fields, raws, n), [], []
    for i, f in enumerate(schema.fields):
        values, problem = (
            together[i] if i in together
            else convert(f, raws[i]) if raws[i] is not None
            else (pa.nulls(n, TYPES[f.type]), np.full(n, MISSING, np.int8))
        )  # fmt: skip
        arrays.append(constrain(f, values, problem, i in together))
        problems.append(problem)
    matrix, batch = np.stack(problems), pa.RecordBatch.from_arrays(arrays, schema=schema.arrow)
    bad = matrix.any(axis=0)
    bad[list(notes)] = True
    if schema.primary_key:  # the rows without another problem whose key an earlier row has
        bad[list(dup := duplicates(schema, batch, np.flatnonzero(~bad), block.lines, info.name, keys))] = True
        notes = notes | dup
    if not len(which := np.flatnonzero(bad)):
        return batch, sorted(rejects)
    as_read = [map(original, c.take(which).to_pylist()) for c in (block.read or block.columns)[: info.ncols]]
    for j, row in zip(which.tolist(), zip(*as_read, strict=True), strict=True):
        found = [reason(f, info.columns[i], int(matrix[i, j]), None if (r := raws[i]) is None else r[j])
                 for i, f in enumerate(schema.fields) if matrix[i, j]]  # fmt: skip
        found += [notes[j]] if j in notes else []
        why = "; ".join(t for t, _ in found)
        rejects.append((int(block.lines[j]), info.delimiter.encode().join(row), why, found[0][1]))
    return batch.filter(pa.array(~bad)), sorted(rejects)


def duplicates(schema: Schema, batch: pa.RecordBatch, rows: np.ndarray, lines: np.ndarray, name: str,
               keys: Keys) -> dict[int, tuple[str, str]]:  # fmt: skip
    """Of `rows`, those whose primary key an earlier row has: row -> (reason naming both lines, category)."""
    names, found = ", ".join(schema.fields[i].name for i in schema.primary_key), {}
    columns = [batch.column(i).take(pa.array(rows)).to_pylist() for i in schema.primary_key]
    for j, key in zip(rows.tolist(), zip(*columns, strict=True), strict=True):
        if (first := keys.setdefault(key, (name, int(lines[j])))) != (name, int(lines[j])):
            at = f"line {first[1]}" if first[0] == name else f"{first[0]} line {first[1]}"
            shown = ", ".join(map(str, key))
            found[j] = (f"duplicate primary key ({names}) = ({shown}): also at {at}", "duplicate primary key")
    return found
