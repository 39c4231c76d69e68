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

from trigger.errors import ConfigError

DEFAULT_RAW_PREFIX = "raw/"
DEFAULT_CLEAN_PREFIX = "clean/"
DEFAULT_MARKER_NAME = "_SUCCESS"
DEFAULT_METRICS_NAMESPACE = "S3SageMakerTrigger"

# StartPipelineExecution's PipelineName: a pipeline name or its ARN (botocore's service model).
_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}"
_PIPELINE = re.compile(rf"{_NAME}|arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{{12}}:pipeline/{_NAME}")
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
    mode: TriggerMode = TriggerMode.OBJECT
    marker_name: str = DEFAULT_MARKER_NAME
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE

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
        return cls(
            pipeline_name=get("PIPELINE_NAME", ""),
            raw_prefix=get("RAW_PREFIX", DEFAULT_RAW_PREFIX),
            clean_prefix=get("CLEAN_PREFIX", DEFAULT_CLEAN_PREFIX),
            mode=TriggerMode(mode),
            marker_name=get("MARKER_NAME", DEFAULT_MARKER_NAME),
            metrics_namespace=get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_METRICS_NAMESPACE),
        )


@cache
def settings() -> Config:
    """The process's settings, parsed on first use and kept for the life of the execution environment."""
    return Config.from_env(os.environ)


def _problems(config: Config) -> list[str]:
    problems: list[str] = []
    if not config.pipeline_name:
        problems.append("PIPELINE_NAME is required (the name of the SageMaker pipeline to start)")
    elif not _PIPELINE.fullmatch(config.pipeline_name):
        problems.append(f"PIPELINE_NAME {config.pipeline_name!r} is not a SageMaker pipeline name or ARN")
    for name, prefix in (("RAW_PREFIX", config.raw_prefix), ("CLEAN_PREFIX", config.clean_prefix)):
        problem = _prefix_problem(prefix)
        if problem:
            problems.append(f"{name} {prefix!r} {problem}")
    if config.raw_prefix.startswith(config.clean_prefix) or config.clean_prefix.startswith(config.raw_prefix):
        problems.append(
            f"RAW_PREFIX {config.raw_prefix!r} and CLEAN_PREFIX {config.clean_prefix!r} overlap: "
            "outputs written under the raw prefix would trigger the pipeline again"
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
