"""The ETL step: clean CSV data by a Table Schema (docs/etl.md)."""

MAX_REJECT_FRACTION = 0.01  # the default share of rejected rows above which a run fails (MaxRejectFraction)
