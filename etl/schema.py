"""The cleaning rules: a Frictionless Table Schema (v2), loaded and checked; the unsupported refused."""

import contextlib
import datetime as dt
import importlib
import json
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

SHIPPED = "schema.json"  # the schema the pipeline runs by default, in the package (and in etl.pyz)
LAYOUT = "etl:layout"  # custom property: the example whose layout rules read the files (etl/examples/NAME)
DOCS = {"title", "description", "name", "homepage", "version", "created", "keywords", "contributors"}
SCHEMA_KEYS = DOCS | {"$schema", "examples", "fields", "missingValues", "primaryKey", "fieldsMatch", LAYOUT}
FIELD_KEYS = DOCS | {"type", "format", "example", "constraints", "categories", "categoriesOrdered", "rdfType"}
FIELD_KEYS |= {"missingValues", "trueValues", "falseValues"}
TYPES = {"integer": pa.int64(), "number": pa.float64(), "string": pa.string(), "any": pa.string()}
TYPES |= {"boolean": pa.bool_(), "date": pa.date32(), "datetime": pa.timestamp("s")}
ORDERED, TEXT = ("integer", "number", "date", "datetime"), ("string", "any")
CONSTRAINTS = {"required": (bool, TYPES), "minimum": (object, ORDERED), "maximum": (object, ORDERED)}
CONSTRAINTS |= {"enum": (list, TYPES), "pattern": (str, TEXT), "minLength": (int, TEXT)}
CONSTRAINTS |= {"maxLength": (int, TEXT)}
FORMATS = {"date": "%Y-%m-%d", "datetime": "%Y-%m-%dT%H:%M:%S"}  # the standard's defaults, as strptime's
MATCHES = ("exact", "equal", "subset", "superset", "partial")
TRUE, FALSE = ("true", "True", "TRUE", "1"), ("false", "False", "FALSE", "0")


class SchemaError(Exception):
    """A schema this ETL cannot apply: the message names the file and the property."""


@dataclass(eq=False)
class Field:
    name: str
    type: str
    format: str
    missing: tuple[str, ...]
    true: tuple[str, ...]
    false: tuple[str, ...]
    c: dict[str, Any] = field(default_factory=dict)  # the constraints, their values as the field's type
    categories: pa.Array | None = None
    labels: pa.Array | None = None  # written instead of the category values
    extra: dict[str, Any] = field(default_factory=dict)  # the layout's own properties

    @property
    def arrow(self) -> pa.DataType:  # the type written to full_data.csv
        return pa.string() if self.labels is not None else TYPES[self.type]


@dataclass
class Schema:
    source: str
    title: str
    fields: list[Field]
    match: str = "exact"
    primary_key: tuple[int, ...] = ()
    layout: ModuleType | None = None  # the layout rules of the example the schema names, if any

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def arrow(self) -> pa.Schema:  # of full_data.csv
        return pa.schema([(f.name, f.arrow) for f in self.fields])


def logical(f: Field, value: Any, where: str) -> Any:
    """A constraint's or category's value as the field's type (a JSON value or a string)."""
    with contextlib.suppress(ValueError):
        if isinstance(value, str) and f.type in FORMATS:
            parsed = dt.datetime.strptime(value, f.format)
            return parsed.date() if f.type == "date" else parsed
        if type(value) in {"integer": (int, str), "number": (int, float, str)}.get(f.type, ()):
            return int(value) if f.type == "integer" else float(value)
        if type(value) is {"string": str, "any": str, "boolean": bool}.get(f.type):
            return value
    raise SchemaError(f"{where}: {value!r} is not a {f.type} ({f.format})")


def keys(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SchemaError(f"{where}: expected a JSON object")
    if unknown := [k for k in obj if k not in allowed]:
        raise SchemaError(f"{where}.{unknown[0]}: not supported by this ETL (docs/etl.md says what is)")
    return obj


def strings(d: dict[str, Any], key: str, default: list[str], where: str) -> tuple[str, ...]:
    """d[key], a list of strings (or of objects with a string value: missingValues with labels)."""
    value = d.get(key, default) if isinstance(d.get(key, default), list) else [None]
    values: list[Any] = [v.get("value") if isinstance(v, dict) else v for v in value]
    if not all(isinstance(v, str) for v in values):
        raise SchemaError(f"{where}.{key}: expected a list of strings")
    return tuple(values)


def make_field(d: dict[str, Any], where: str, missing: tuple[str, ...], extra: tuple[str, ...]) -> Field:
    d = keys(d, FIELD_KEYS | set(extra), where)
    name, kind, fmt = d.get("name"), d.get("type", "any"), d.get("format", "default")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}.name: expected the column's name")
    where = f"{where} ({name})"
    if kind not in TYPES:
        raise SchemaError(f"{where}.type: {kind!r} is not supported; expected one of {', '.join(TYPES)}")
    if fmt != "default" and (kind not in FORMATS or not isinstance(fmt, str) or fmt == "any"):
        raise SchemaError(f"{where}.format: {fmt!r} is not supported for a {kind}")
    if ("trueValues" in d or "falseValues" in d) and kind != "boolean":
        raise SchemaError(f"{where}.trueValues: only a boolean field has them")
    true, false = strings(d, "trueValues", list(TRUE), where), strings(d, "falseValues", list(FALSE), where)
    missing = strings(d, "missingValues", list(missing), where)
    f = Field(name, kind, FORMATS.get(kind, "") if fmt == "default" else fmt, missing, true, false)
    f.extra = {k: d[k] for k in extra if k in d}
    for key, value in keys(d.get("constraints", {}), set(CONSTRAINTS), f"{where}.constraints").items():
        at, (want, kinds) = f"{where}.constraints.{key}", CONSTRAINTS[key]
        if kind not in kinds or not (want is object or type(value) is want) or value == []:
            raise SchemaError(f"{at}: {value!r} does not apply to a {kind} field")
        f.c[key] = logical(f, value, at) if want is object else value
    if "enum" in f.c:
        f.c["enum"] = pa.array([logical(f, v, f"{where}.constraints.enum") for v in f.c["enum"]], TYPES[kind])
    try:
        if "pattern" in f.c:  # RE2 compiles it as the check will
            pc.match_substring_regex(pa.nulls(1, pa.string()), f"^(?:{f.c['pattern']})$")
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"{where}.constraints.pattern: not a valid regular expression ({exc})") from exc
    if "categories" in d:
        f.categories, f.labels = categories(f, d["categories"], f"{where}.categories")
    return f


def categories(f: Field, cats: Any, where: str) -> tuple[pa.Array, pa.Array | None]:
    """(values, labels or None): a list of values, or of objects with a value and maybe a label."""
    if f.type not in ("integer", "string", "any") or not isinstance(cats, list) or not cats:
        raise SchemaError(f"{where}: expected a non-empty list, on an integer or a string field")
    objects = [keys(c, {"value", "label"}, f"{where}[{i}]") if isinstance(c, dict) else {"value": c}
               for i, c in enumerate(cats)]  # fmt: skip
    values = [logical(f, o.get("value"), f"{where}[{i}].value") for i, o in enumerate(objects)]
    labels = [o.get("label", str(v)) for o, v in zip(objects, values, strict=True)]
    if len(set(values)) < len(values) or not all(isinstance(x, str) for x in labels):
        raise SchemaError(f"{where}: expected unique values, and labels that are strings")
    return pa.array(values, TYPES[f.type]), pa.array(labels) if any("label" in o for o in objects) else None


def load(path: Path | None = None) -> Schema:
    """The schema at `path`, or the shipped one (read from inside etl.pyz too)."""
    where = str(path or SHIPPED)
    try:
        text = path.read_bytes() if path else pkgutil.get_data("etl", SHIPPED)
        d = keys(json.loads(text or b""), SCHEMA_KEYS, where)
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{where}: not a readable JSON file ({exc})") from exc
    try:
        layout = importlib.import_module(f"etl.examples.{d[LAYOUT]}.layout") if LAYOUT in d else None
    except (ImportError, TypeError) as exc:
        raise SchemaError(f"{where}.{LAYOUT}: {d[LAYOUT]!r} is not an example under etl/examples") from exc
    extra, missing = layout.FIELD_PROPERTIES if layout else (), strings(d, "missingValues", [""], where)
    if not isinstance(d.get("fields"), list) or not d["fields"]:
        raise SchemaError(f"{where}.fields: expected a non-empty list of fields")
    fields = [make_field(fd, f"{where}.fields[{i}]", missing, extra) for i, fd in enumerate(d["fields"])]
    names = [f.name for f in fields]
    if dup := [n for n in names if names.count(n) > 1]:
        raise SchemaError(f"{where}.fields: the name {dup[0]!r} is used twice")
    if (match := d.get("fieldsMatch", "exact")) not in MATCHES:
        raise SchemaError(f"{where}.fieldsMatch: {match!r} is not one of {', '.join(MATCHES)}")
    key: Any = [d["primaryKey"]] if isinstance(d.get("primaryKey"), str) else d.get("primaryKey", [])
    if not isinstance(key, list) or any(k not in names for k in key):
        raise SchemaError(f"{where}.primaryKey: {key!r} does not name fields of the schema")
    for k in key:
        fields[names.index(k)].c["required"] = True  # the standard: a key field cannot be null
    title = str(d.get("title") or d.get("name") or where)
    return Schema(where, title, fields, match, tuple(names.index(k) for k in key), layout)
