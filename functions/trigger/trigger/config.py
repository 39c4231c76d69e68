"""The trigger's settings: read from the environment once, validated into a frozen model.

Every problem is reported at once, in one :class:`~trigger.errors.ConfigError` naming the variables,
instead of a ``KeyError`` on the first invocation that happens to need a missing value. The routes
(``routes.json``, compiled from ``routes.yaml`` by the build; ``ROUTES_FILE`` overrides it) are read
here too, on first use, not at import: a cold start pays nothing for them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from contract.folders import CODE_PREFIX, overlaps, prefix_problem
from contract.names import PIPELINE_NAME_OR_ARN
from trigger import backoff
from trigger.errors import ConfigError

if TYPE_CHECKING:  # the routes are read on first use, not at import: a cold start pays nothing for them
    from contract.routes import Routes

# The build puts routes.json at the artifact's top, beside the trigger package (/var/task/routes.json).
BUILT_ROUTES_FILE = Path(__file__).resolve().parent.parent / "routes.json"


@cache
def shipped_routes() -> Routes:
    """What routes.yaml ships (tests/unit/test_trigger_routes.py holds the two equal): the default of a
    Config made in code, never a fallback for a missing routes file."""
    from contract.routes import parse

    return parse({"routes": [{"prefix": "raw/"}]})


DEFAULT_CLEAN_PREFIX = "clean/"
DEFAULT_SNAPSHOT_PREFIX = "snapshot/"
DEFAULT_MARKER_NAME = "_SUCCESS"
DEFAULT_METRICS_NAMESPACE = "S3SageMakerTrigger"

# CloudWatch metric namespaces: 1-255 of these characters (and not starting with a colon).
_NAMESPACE = re.compile(r"[0-9A-Za-z.\-_/#:]{1,255}")


class TriggerMode(StrEnum):
    """What one dataset is."""

    OBJECT = "object"  # every uploaded object under the raw prefix
    MARKER = "marker"  # a folder, complete once its marker object (e.g. _SUCCESS) arrives


@dataclass(frozen=True, slots=True)
class Config:
    pipeline_name: str  # the stack's own pipeline: the routes without a ``pipeline`` start it
    routes: Routes = field(default_factory=shipped_routes)
    clean_prefix: str = DEFAULT_CLEAN_PREFIX
    snapshot_prefix: str = DEFAULT_SNAPSHOT_PREFIX
    mode: TriggerMode = TriggerMode.OBJECT
    marker_name: str = DEFAULT_MARKER_NAME
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    backoff_base_seconds: int = backoff.DEFAULT_BASE_SECONDS
    backoff_cap_seconds: int = backoff.DEFAULT_CAP_SECONDS
    # {pipeline as routed: {parameter: String|Integer|Float|Boolean}}, as the deploy found them
    parameter_types: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    data_kms_key: str | None = None  # the snapshot copies are encrypted with it (SSE-KMS) when set

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("invalid trigger configuration: " + "; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str], routes: Routes | None = None) -> Config:
        """The settings from environment variables; an empty variable counts as unset. ``routes``: these
        instead of the routes file (an operator judging with a deployed function's environment)."""

        def get(name: str, default: str) -> str:
            return environ.get(name, "").strip() or default

        mode = get("TRIGGER_MODE", TriggerMode.OBJECT.value).lower()
        if mode not in TriggerMode:
            allowed = ", ".join(m.value for m in TriggerMode)
            raise ConfigError(
                f"invalid trigger configuration: TRIGGER_MODE must be one of {allowed} (got {mode!r})"
            )
        waits = {
            name: _seconds(name, get(name, str(default)))
            for name, default in (
                ("BACKOFF_BASE_SECONDS", backoff.DEFAULT_BASE_SECONDS),
                ("BACKOFF_CAP_SECONDS", backoff.DEFAULT_CAP_SECONDS),
            )
        }
        return cls(
            pipeline_name=get("PIPELINE_NAME", ""),
            routes=routes or _routes(get("ROUTES_FILE", str(BUILT_ROUTES_FILE))),
            clean_prefix=get("CLEAN_PREFIX", DEFAULT_CLEAN_PREFIX),
            snapshot_prefix=get("SNAPSHOT_PREFIX", DEFAULT_SNAPSHOT_PREFIX),
            mode=TriggerMode(mode),
            marker_name=get("MARKER_NAME", DEFAULT_MARKER_NAME),
            metrics_namespace=get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_METRICS_NAMESPACE),
            backoff_base_seconds=waits["BACKOFF_BASE_SECONDS"],
            backoff_cap_seconds=waits["BACKOFF_CAP_SECONDS"],
            parameter_types=_parameter_types(get("ROUTE_PARAMETER_TYPES", "{}")),
            data_kms_key=get("DATA_KMS_KEY_ARN", "") or None,
        )


@cache
def settings() -> Config:
    """The process's settings, parsed on first use and kept for the life of the execution environment."""
    return Config.from_env(os.environ)


def _problems(config: Config) -> list[str]:
    problems: list[str] = []
    if not config.pipeline_name:
        problems.append("PIPELINE_NAME is required (the name of the SageMaker pipeline to start)")
    elif not PIPELINE_NAME_OR_ARN.fullmatch(config.pipeline_name):
        problems.append(f"PIPELINE_NAME {config.pipeline_name!r} is not a SageMaker pipeline name or ARN")
    prefixes = {"CLEAN_PREFIX": config.clean_prefix, "SNAPSHOT_PREFIX": config.snapshot_prefix}
    for name, prefix in prefixes.items():
        problem = prefix_problem(prefix)
        if problem:
            problems.append(f"{name} {prefix!r} {problem}")
    routed = [("the routed prefix", prefix) for prefix in config.routes.prefixes()]
    problems += overlaps([*prefixes.items(), ("the code folder", CODE_PREFIX)], nested=routed)
    base, cap = config.backoff_base_seconds, config.backoff_cap_seconds
    if base < 1:
        problems.append(f"BACKOFF_BASE_SECONDS must be at least 1 (got {base})")
    if not base <= cap <= backoff.MAX_CAP_SECONDS:
        problems.append(
            f"BACKOFF_CAP_SECONDS must lie between BACKOFF_BASE_SECONDS ({base}) and "
            f"{backoff.MAX_CAP_SECONDS}: SQS's {backoff.MAX_VISIBILITY_TIMEOUT}-second visibility limit "
            f"counts from the receive, and {backoff.RECEIVE_ALLOWANCE_SECONDS} s are kept for the time "
            f"since (got {cap})"
        )
    if not isinstance(config.mode, TriggerMode):
        problems.append(f"TRIGGER_MODE must be one of {', '.join(TriggerMode)} (got {config.mode!r})")
    marker = config.marker_name
    if not marker or "/" in marker or marker in {".", ".."} or _has_control(marker):
        problems.append(f"MARKER_NAME {marker!r} must be a plain file name (no '/', not '.' or '..')")
    if not _NAMESPACE.fullmatch(config.metrics_namespace) or config.metrics_namespace.startswith(":"):
        namespace = config.metrics_namespace
        problems.append(f"POWERTOOLS_METRICS_NAMESPACE {namespace!r} is not a CloudWatch namespace")
    return problems


def _seconds(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(
            f"invalid trigger configuration: {name} must be a whole number of seconds (got {text!r})"
        ) from None


def _routes(path: str) -> Routes:
    from contract.routes import RoutesError, loads

    try:
        return loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(
            f"invalid trigger configuration: cannot read the routes ({path}: {err.strerror}); the build "
            "puts routes.json into the artifact, ROUTES_FILE names another"
        ) from err
    except RoutesError as err:
        raise ConfigError(f"invalid trigger configuration: routes {path}: {err}") from err


def _parameter_types(text: str) -> dict[str, dict[str, str]]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(types, dict) and all(isinstance(t, str) for t in types.values())
        for types in value.values()
    ):
        raise ConfigError(
            "invalid trigger configuration: ROUTE_PARAMETER_TYPES must be a JSON object "
            '{"<pipeline>": {"<parameter>": "<type>"}} (the deploy writes it)'
        )
    return {str(p): {str(n): str(t) for n, t in types.items()} for p, types in value.items()}


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
