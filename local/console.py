"""Human-readable output for the local runtime's commands: progress lines and tables."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from fractions import Fraction
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
        pipelines = ", ".join(stack.pipeline_names()) or "?"
        bucket = stack.ref("DataBucket") if "DataBucket" in stack.resolver.created else "?"
        return (
            "deploy",
            f"stack {stack.name}: bucket {bucket}, pipeline {pipelines} ({mode} mode), {d['seconds']:.1f} s",
        )
    if kind == "quotas":
        return "quotas", _quotas(d["quotas"], d["time_scale"])
    if kind == "step-retrying":
        if d["attempt"] != 2:  # the first retry says it all; the later ones would flood a burst's output
            return None
        reason = str(d["reason"]).split(":", 1)[0]
        limit = str(d["policy"]).partition("(")[2].partition(")")[0]
        return "retrying", (
            f"{short_id(d['arn'])} {d['step']}: {reason}; retried every {d['wait']:.0f} s or so "
            f"({d['local_wait']:.2f} s here), {limit}"
        )
    if kind == "execution-replayed":
        return "trigger", (
            f"duplicate delivery: same execution {short_id(d['arn'])} "
            "(same ClientRequestToken: nothing runs twice)"
        )
    if kind == "test-event":
        return "s3", f"s3:TestEvent for {d.get('bucket')} dropped (S3 sends it when notifications are set up)"
    if kind == "invoked":
        return _invoked(d)
    if kind == "invoke-error":
        error = d["error"]
        return "trigger", (
            f"batch of {d['batch']} failed as a whole: {error.get('errorType')}: {error.get('errorMessage')} "
            "(back in the queue after its visibility timeout)"
        )
    if kind == "execution-started":
        params = d.get("parameters") or {}
        return (
            "execution",
            f"{short_id(d['arn'])} running on {_key(params.get('InputDataUrl', '(default input)'))}",
        )
    if kind == "stand-in":
        declared = ", ".join(d["declares"])
        return "pipeline", f"{d['pipeline']}: a stand-in declaring {declared} (runs recorded, not run)"
    if kind == "execution-recorded":
        params = ", ".join(f"{k}={v}" for k, v in (d.get("parameters") or {}).items())
        return "recorded", f"{short_id(d['arn'])} of {d['pipeline']} started with {params}"
    if kind == "execution-succeeded":
        params = d.get("parameters") or {}
        out = _key(params.get("OutputDataUrl", "(default output)"))
        return "succeeded", f"{short_id(d['arn'])} -> {out} ({d['seconds']:.1f} s)"
    if kind == "execution-failed":
        return "FAILED", f"{short_id(d['arn'])}: {d['reason']}"
    if kind == "topic-notification":  # what the notification topic would send (local/notifications.py)
        return "notify", f"{d['topic']}: {d['message']}"
    if kind in ("poll-error", "record-error", "notification-error", "metrics-error"):
        return "warning", f"{kind}: {d}"
    return None


def _key(url: str) -> str:
    """An s3:// URL without its bucket (the progress lines name the bucket once, at deploy)."""
    return url[5:].partition("/")[2] if url.startswith("s3://") else url


def _quotas(quotas: Any, time_scale: float) -> str:
    executions = quotas.max_concurrent_executions
    instances = quotas.max_processing_instances
    scale = Fraction(time_scale).limit_denominator(10000)
    return (
        f"{executions or 'unlimited'} concurrent executions, {instances or 'unlimited'} processing instances "
        f"(beyond: ResourceLimitExceeded); waits x{scale}"
    )


def _invoked(d: dict[str, Any]) -> tuple[str, str]:
    result = d.get("result") or {}
    parts: list[str] = []
    replayed = set(d.get("replayed") or [])
    if isinstance(result, dict):
        for started in result.get("started") or []:
            if started.get("executionArn") in replayed:
                continue  # a duplicate delivery: the execution-replayed line says so
            parts.append(f"{started.get('key')}: started {short_id(str(started.get('executionArn', '')))}")
        for skipped in result.get("skipped") or []:
            parts.append(f"{skipped.get('key')}: skipped ({skipped.get('reason')})")
    failed = d.get("failed") or 0
    if failed:
        parts.append(f"{failed} of {d['batch']} back to the queue for a later try")
    if not parts and not d.get("keys") and any('"s3:TestEvent"' in b for b in d.get("bodies") or []):
        parts.append("s3:TestEvent (S3 sends it when the notification is set up): nothing to run")
    summary = "; ".join(parts) or f"{', '.join(d.get('keys') or []) or 'batch'}: handled"
    return "trigger", f"{summary} [{d['duration_ms']:.0f} ms]"


TERMINAL_WIDTH = 120


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    max_width: int = 60,
    total_width: int = TERMINAL_WIDTH,
) -> str:
    """A plain text table at most ``total_width`` wide; long cells are cut with an ellipsis.

    A cell is cut at ``max_width``; if the table is still too wide, the widest column is narrowed
    (never below its header) until it fits or nothing more can give.
    """

    def cut(text: str, width: int) -> str:
        return text if len(text) <= width else text[: max(1, width - 1)] + "…"

    texts = [[str(h) for h in headers], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [min(max_width, max(len(r[i]) for r in texts)) for i in range(len(headers))]
    floors = [min(len(str(h)), w) for h, w in zip(headers, widths, strict=True)]
    while sum(widths) + 2 * (len(widths) - 1) > total_width:
        widest = max(range(len(widths)), key=lambda i: widths[i] - floors[i])
        if widths[widest] <= floors[widest]:
            break
        widths[widest] -= 1
    cells = [[cut(c, w) for c, w in zip(row, widths, strict=True)] for row in texts]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["Progress", "decoded", "describe", "short_id", "table"]
