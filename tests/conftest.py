"""Fixtures of every tier: sample events, generated data and the ETL bundle; one local emulator (moto
server over HTTP) per test session, reset per test. Helpers live in tests/support."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coilgen import Generated, generate
from contract.artifact import BUNDLE_FILE, bundle
from local.emulator import Emulator
from tests.support.etl import ETL_PACKAGE, run_bundle
from tests.support.project import load_event as _load_event


@pytest.fixture
def load_event() -> Callable[[str], dict[str, Any]]:
    return _load_event


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def aws(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """A clean emulator, with the standard AWS_* variables pointing every boto3 client at it."""
    emulator.reset()
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in emulator.environ().items():
        monkeypatch.setenv(key, value)
    return emulator


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
    return functools.partial(run_bundle, etl_script)
