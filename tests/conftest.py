"""Shared fixtures: one local emulator (moto server over HTTP) per test session, reset per test."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from local.emulator import Emulator
from pipeline.__main__ import compile_routes
from tests.support.etl import dataset, etl_script, run_etl

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
# SageMaker's "Pipeline Execution Status Change" event exactly as its developer guide documents it: what
# the template's PipelineStatusRule receives (no function's event, so not among the sample events above)
DOCUMENTED_STATUS_EVENT = EVENTS / "notifications" / "sagemaker-pipeline-execution-status.json"


@cache
def routes_file(source: Path = ROOT / "routes.yaml") -> str:
    """``source`` compiled as the build compiles it (the trigger reads routes.json, never YAML): the
    ``ROUTES_FILE`` of a trigger run from the source tree."""
    target = Path(tempfile.mkdtemp(prefix="routes-")) / "routes.json"
    target.write_text(compile_routes(source), encoding="utf-8")
    return str(target)


def _load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, the same file `sam local invoke -e` replays."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


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


__all__ = ["aws", "dataset", "emulator", "etl_script", "load_event", "run_etl"]
