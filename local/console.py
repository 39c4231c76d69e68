"""Human-readable output for the local runtime's commands: progress lines and tables."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import unquote_plus


def short_id(execution_arn: str) -> str:
    """The execution ID, the last part of an execution ARN."""
    return execution_arn.rsplit("/", 1)[-1]


def decoded(keys: Sequence[str]) -> list[str]:
    """S3 event keys as uploaded (events carry them URL-encoded, ``+`` for a space)."""
    return [unquote_plus(k) for k in keys]


class Progress:
    """Prints one line per event, prefixed with the seconds since the command started; thread-safe."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, stage: str, text: str) -> None:
        with self._lock:
            print(f"[{self.elapsed():6.1f}s] {stage:<11} {text}", file=self.stream, flush=True)

    def event(self, kind: str, details: dict[str, Any]) -> None:
        """The runtime's notifications, as progress lines (the chatty ones are left out)."""
        text = describe(kind, details)
        if text is not None:
            self.line(*text)


def describe(kind: str, d: dict[str, Any]) -> tuple[str, str] | None:
    """(stage, text) for a runtime notification, or None for those not worth a line."""
    if kind == "emulator":
        return "emulator", f"moto server on {d['endpoint']}"
    if kind == "stack":
        stack = d["stack"]
        mode = stack.parameters.get("TriggerMode", "?")
        pipelines = ", ".join(
            str((r.get("Data") or {}).get("PipelineName", "?")) for r in stack.custom_resources.values()
        )
        bucket = stack.ref("DataBucket") if "DataBucket" in stack.resolver.created else "?"
        return "deploy", (
            f"stack {stack.name}: bucket {bucket}, pipeline {pipelines} (TriggerMode={mode}) "
            f"in {d['seconds']:.1f} s"
        )
    if kind == "quotas":
        return "quotas", _quotas(d["quotas"], d["time_scale"])
    if kind == "step-retrying":
        if d["attempt"] != 2:  # the first retry says it all; the later ones would flood a burst's output
            return None
        reason = str(d["reason"]).split(":", 1)[0]
        return "retrying", (
            f"{short_id(d['arn'])} {d['step']}: {reason}; {d['policy']}, next in {d['wait']:.0f} s "
            f"({d['local_wait']:.2f} s here); later retries not shown"
        )
    if kind == "test-event":
        return "s3", f"s3:TestEvent for {d.get('bucket')} dropped (S3 sends it when notifications are set up)"
    if kind == "notification":
        return "s3 event", f"{', '.join(decoded(d['keys'])) or '(no records)'} -> {d['function']}"
    if kind == "invoked":
        return _invoked(d)
    if kind == "invoke-error":
        error = d["error"]
        return "trigger", (
            f"attempt {d['attempt']} failed: {error.get('errorType')}: {error.get('errorMessage')}"
        )
    if kind == "dead-letter":
        where = d.get("destination") or "nowhere (no destination configured)"
        return "dead-letter", f"{', '.join(decoded(d['keys']))}: {d['condition']}, record sent to {where}"
    if kind == "execution-started":
        params = d.get("parameters") or {}
        return "execution", f"{short_id(d['arn'])} running on {params.get('InputDataUrl', '(default input)')}"
    if kind == "execution-succeeded":
        params = d.get("parameters") or {}
        out = params.get("OutputDataUrl", "(default output)")
        return "succeeded", f"{short_id(d['arn'])} -> {out} ({d['seconds']:.1f} s)"
    if kind == "execution-failed":
        return "FAILED", f"{short_id(d['arn'])}: {d['reason']}"
    if kind == "topic-notification":  # what the notification topic would send (local/notifications.py)
        return "notify", f"{d['topic']}: {d['message']}"
    if kind in (
        "poll-error",
        "bad-message",
        "record-error",
        "retries-dropped",
        "notification-error",
        "metrics-error",
    ):
        return "warning", f"{kind}: {d}"
    return None


def _quotas(quotas: Any, time_scale: float) -> str:
    executions = quotas.max_concurrent_executions
    instances = quotas.max_processing_instances
    return (
        f"{executions or 'unlimited'} concurrent executions, {instances or 'unlimited'} processing instances "
        f"(beyond: ResourceLimitExceeded); SageMaker's retry waits x{time_scale:.4g} "
        f"(1 min -> {60 * time_scale:.2g} s)"
    )


def _invoked(d: dict[str, Any]) -> tuple[str, str]:
    result = d.get("result") or {}
    parts: list[str] = []
    if isinstance(result, dict):
        for started in result.get("started") or []:
            parts.append(f"{started.get('key')}: started {short_id(str(started.get('executionArn', '')))}")
        for skipped in result.get("skipped") or []:
            parts.append(f"{skipped.get('key')}: skipped ({skipped.get('reason')})")
    summary = "; ".join(parts) or "returned"
    return "trigger", f"{summary} [{d['duration_ms']:.0f} ms]"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, max_width: int = 60) -> str:
    """A plain text table; cells longer than ``max_width`` are cut with an ellipsis."""

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(h) for h in headers], *[[cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["Progress", "decoded", "describe", "short_id", "table"]
