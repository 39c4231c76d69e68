"""The project's own files as the tests read them: the checkout, the sample events, events/env.json, and
routes.yaml compiled as the build compiles it."""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.__main__ import compile_routes

ROOT = Path(__file__).resolve().parents[2]
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


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, the same file `sam local invoke -e` replays."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def function_env(logical_id: str) -> dict[str, str]:
    """A function's environment as `sam local invoke --env-vars events/env.json` would set it."""
    env: dict[str, str] = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))[logical_id]
    return env


def trigger_env() -> dict[str, str]:
    """The trigger's environment from events/env.json, reading routes.yaml compiled (``ROUTES_FILE``)."""
    return {**function_env("TriggerFunction"), "ROUTES_FILE": routes_file()}
