"""The data dictionary files (dictionary.txt, col_info.csv) as the COIL 2000 distribution ships them."""

from __future__ import annotations

import csv
import io

from etl.examples.coil2000 import SCHEMA
from etl.examples.coil2000.layout import codes
from etl.schema import load

COIL = load(SCHEMA)  # the example's schema, whatever the shipped etl/schema.json holds
CODES = tuple(codes(COIL))
N_COLUMNS, N_FEATURES = len(CODES), len(CODES) - 1
L0_LABELS, L2_LABELS = (tuple(COIL.fields[i].labels.to_pylist()) for i in (0, 4))  # type: ignore[union-attr]

DESCRIPTIONS = (
    "Customer Subtype",
    "Number of houses",
    "Avg size household",
    "Avg age",
    "Customer main type",
    "Roman catholic",
    "Protestant",
    "Other religion",
    "No religion",
    "Married",
    "Living together",
    "Other relation",
    "Singles",
    "Household without children",
    "Household with children",
    "High level education",
    "Medium level education",
    "Lower level education",
    "High status",
    "Entrepreneur",
    "Farmer",
    "Middle management",
    "Skilled labourers",
    "Unskilled labourers",
    "Social class A",
    "Social class B1",
    "Social class B2",
    "Social class C",
    "Social class D",
    "Rented house",
    "Home owners",
    "1 car",
    "2 cars",
    "No car",
    "National Health Service",
    "Private health insurance",
    "Income < 30.000",
    "Income 30-45.000",
    "Income 45-75.000",
    "Income 75-122.000",
    "Income >123.000",
    "Average income",
    "Purchasing power class",
    "Contribution private third party insurance",
    "Contribution third party insurance (firms)",
    "Contribution third party insurance (agriculture)",
    "Contribution car policies",
    "Contribution delivery van policies",
    "Contribution motorcycle/scooter policies",
    "Contribution lorry policies",
    "Contribution trailer policies",
    "Contribution tractor policies",
    "Contribution agricultural machines policies",
    "Contribution moped policies",
    "Contribution life insurances",
    "Contribution private accident insurance policies",
    "Contribution family accidents insurance policies",
    "Contribution disability insurance policies",
    "Contribution fire policies",
    "Contribution surfboard policies",
    "Contribution boat policies",
    "Contribution bicycle policies",
    "Contribution property insurance policies",
    "Contribution social security insurance policies",
    "Number of private third party insurance",
    "Number of third party insurance (firms)",
    "Number of third party insurance (agriculture)",
    "Number of car policies",
    "Number of delivery van policies",
    "Number of motorcycle/scooter policies",
    "Number of lorry policies",
    "Number of trailer policies",
    "Number of tractor policies",
    "Number of agricultural machines policies",
    "Number of moped policies",
    "Number of life insurances",
    "Number of private accident insurance policies",
    "Number of family accidents insurance policies",
    "Number of disability insurance policies",
    "Number of fire policies",
    "Number of surfboard policies",
    "Number of boat policies",
    "Number of bicycle policies",
    "Number of property insurance policies",
    "Number of social security insurance policies",
    "Number of mobile home policies",
)

L1_LABELS = ("20-30 years", "30-40 years", "40-50 years", "50-60 years", "60-70 years", "70-80 years")
L3_LABELS = (
    "0%",
    "1 - 10%",
    "11 - 23%",
    "24 - 36%",
    "37 - 49%",
    "50 - 62%",
    "63 - 75%",
    "76 - 88%",
    "89 - 99%",
    "100%",
)
L4_LABELS = (
    "f 0",
    "f 1 - 49",
    "f 50 - 99",
    "f 100 - 199",
    "f 200 - 499",
    "f 500 - 999",
    "f 1000 - 4999",
    "f 5000 - 9999",
    "f 10,000 - 19,999",
    "f 20,000 - ?",
)
DASH = "\u2013"  # the real file's cp1252 0x96 dash


def _domain(nr: int) -> str:
    """The dictionary's domain column: its code table, else the range (none for the counts, 0-99)."""
    tables = {
        1: "L0",
        4: "L1",
        5: "L2",
        **dict.fromkeys(range(6, 42), "L3"),
        **dict.fromkeys(range(44, 65), "L4"),
    }
    field = COIL.fields[nr - 1]
    if nr in tables:
        return "see " + tables[nr]
    lo, hi = field.c.get("minimum"), field.c.get("maximum")
    return f"{lo} {DASH} {hi}" if (lo, hi) != (0, 99) else ""


def dictionary_lines() -> list[str]:
    lines = ["DATA DICTIONARY", "Nr Name Description Domain"]
    for nr, (code, desc) in enumerate(zip(CODES, DESCRIPTIONS, strict=True), 1):
        lines.append(f"{nr} {code} {desc} {_domain(nr)}".rstrip())
    tables = (
        ("L0", L0_LABELS, 1, False),
        ("L1", L1_LABELS, 1, True),
        ("L2", L2_LABELS, 1, False),
        ("L3", L3_LABELS, 0, True),
        ("L4", L4_LABELS, 0, True),
    )
    for name, labels, first, ranges in tables:
        lines += ["", name + ":", "Value Label"]
        lines += [
            f"{first + i} {label.replace('-', DASH) if ranges else label}" for i, label in enumerate(labels)
        ]
    return lines


def dictionary_txt() -> bytes:
    """dictionary.txt: cp1252, CRLF, as the UCI archive has it."""
    return ("\r\n".join(dictionary_lines()) + "\r\n").encode("cp1252")


def col_info_csv() -> bytes:
    """col_info.csv: the dictionary as one CSV column headed 'DATA DICTIONARY:' (the seed's SM01 copy)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["DATA DICTIONARY:"])
    for line in dictionary_lines()[1:]:
        writer.writerow([line])
    return buf.getvalue().encode("utf-8")
