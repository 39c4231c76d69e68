"""The trigger's settings: read from the environment once, validated into a frozen model.

Every problem is reported at once, in one :class:`~trigger.errors.ConfigError` naming the variables,
instead of a ``KeyError`` on the first invocation that happens to need a missing value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from contract.folders import CODE_PREFIX, overlaps
from contract.names import PIPELINE_NAME_OR_ARN
from trigger import backoff
from trigger.errors import ConfigError

DEFAULT_RAW_PREFIX = "raw/"
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
    pipeline_name: str
    raw_prefix: str = DEFAULT_RAW_PREFIX
    clean_prefix: str = DEFAULT_CLEAN_PREFIX
    snapshot_prefix: str = DEFAULT_SNAPSHOT_PREFIX
    mode: TriggerMode = TriggerMode.OBJECT
    marker_name: str = DEFAULT_MARKER_NAME
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    backoff_base_seconds: int = backoff.DEFAULT_BASE_SECONDS
    backoff_cap_seconds: int = backoff.DEFAULT_CAP_SECONDS

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("invalid trigger configuration: " + "; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """The settings from environment variables; an empty variable counts as unset."""

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
            raw_prefix=get("RAW_PREFIX", DEFAULT_RAW_PREFIX),
            clean_prefix=get("CLEAN_PREFIX", DEFAULT_CLEAN_PREFIX),
            snapshot_prefix=get("SNAPSHOT_PREFIX", DEFAULT_SNAPSHOT_PREFIX),
            mode=TriggerMode(mode),
            marker_name=get("MARKER_NAME", DEFAULT_MARKER_NAME),
            metrics_namespace=get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_METRICS_NAMESPACE),
            backoff_base_seconds=waits["BACKOFF_BASE_SECONDS"],
            backoff_cap_seconds=waits["BACKOFF_CAP_SECONDS"],
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
    prefixes = {
        "RAW_PREFIX": config.raw_prefix,
        "CLEAN_PREFIX": config.clean_prefix,
        "SNAPSHOT_PREFIX": config.snapshot_prefix,
    }
    for name, prefix in prefixes.items():
        problem = _prefix_problem(prefix)
        if problem:
            problems.append(f"{name} {prefix!r} {problem}")
    problems += overlaps([*prefixes.items(), ("the code folder", CODE_PREFIX)])
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


def _prefix_problem(prefix: str) -> str | None:
    if not prefix.endswith("/"):
        return "must end with '/' (for example 'raw/')"
    if prefix.startswith("/"):
        return "must not start with '/' (S3 keys have no leading slash)"
    if _has_control(prefix):
        return "must not contain control characters"
    if any(part in {"", ".", ".."} for part in prefix[:-1].split("/")):
        return "must not contain empty, '.' or '..' path segments"
    return None


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
