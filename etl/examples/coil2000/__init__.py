"""COIL 2000, the shipped example: its Table Schema and its layout rules (docs/etl.md)."""

from pathlib import Path

SCHEMA = Path(__file__).with_name("schema.json")  # the example's schema; tests and the demo name it
