"""The ETL as the tests run it: in-process, or in a subprocess as the job runs its bundle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import etl
from etl import cli
from etl.examples.coil2000 import SCHEMA

ETL_PACKAGE = Path(etl.__file__).resolve().parent
COIL = ("--schema", str(SCHEMA))  # the tests name the COIL example's schema, whatever etl/schema.json holds


def main(args: list[str]) -> int:
    """The ETL in-process (python -m etl ARGS) with the COIL example's schema."""
    return cli.main([*COIL, *args])


def run_bundle(
    bundle_path: Path,
    input_dir: Path,
    output_dir: Path,
    *args: str,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python etl.pyz --input-dir D --output-dir O ARGS...` in a subprocess, as the job runs the bundle."""
    cmd = [python, str(bundle_path), *COIL, "--input-dir", str(input_dir), "--output-dir", str(output_dir)]
    cmd += args
    environ = {**os.environ, **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=environ)
