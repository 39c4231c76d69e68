"""Fixtures for the ETL tests: generated data (cached per session) and running the ETL as the job does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import etl
from coilgen import Generated, generate
from contract.artifact import BUNDLE_FILE, bundle
from etl import cli
from etl.examples.coil2000 import SCHEMA

ETL_PACKAGE = Path(etl.__file__).resolve().parent
COIL = ("--schema", str(SCHEMA))  # the tests name the COIL example's schema, whatever etl/schema.json holds


def main(args: list[str]) -> int:
    """The ETL in-process (python -m etl ARGS) with the COIL example's schema."""
    return cli.main([*COIL, *args])


@pytest.fixture(scope="session")
def etl_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle the pipeline ships (etl.pyz), built from this checkout's etl package."""
    path = tmp_path_factory.mktemp("bundle") / BUNDLE_FILE
    path.write_bytes(bundle(ETL_PACKAGE))
    return path


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Generated]:
    """generate(...) once per distinct set of arguments; the folder is shared, so copy it to modify it."""
    cache: dict[tuple[Any, ...], Generated] = {}

    def make(**kwargs: Any) -> Generated:
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()))
        if key not in cache:
            cache[key] = generate(tmp_path_factory.mktemp("data"), **kwargs)
        return cache[key]

    return make


@pytest.fixture
def run_etl(etl_script: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python etl.pyz --input-dir D --output-dir O ARGS...` in a subprocess, as the job does."""

    def run(
        input_dir: Path,
        output_dir: Path,
        *args: str,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [python, str(etl_script), *COIL, "--input-dir", str(input_dir), "--output-dir", str(output_dir)]
        cmd += args
        environ = {**os.environ, **(env or {})}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=environ)

    return run
