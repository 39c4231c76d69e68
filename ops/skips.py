"""``s3sm status``'s recent skips: the trigger's ``record skipped`` log lines, newest first.

An upload the trigger skipped starts no execution, so it is in no ledger: only the trigger's log says
it came and why it did not run. The trigger logs each skip as one Powertools JSON line (``message``
``record skipped``, with ``key``, ``bucket`` and ``reason``) into its log group (the stack output
``TriggerLogGroupName``); this module reads them with CloudWatch Logs' ``FilterLogEvents``.

The filter pattern is the quoted phrase ``"record skipped"`` (CloudWatch Logs' filter pattern syntax:
an exact phrase in double quotes), not the JSON pattern ``{ $.message = "record skipped" }``: moto
5.2.5, which the local runtime runs, does not evaluate JSON patterns (it returns every event for one)
but matches a quoted phrase as AWS does. A phrase also matches a line that merely quotes it (a reason
naming it), so each event is then parsed and kept only when its ``message`` is exactly the skip's.

``FilterLogEvents`` answers oldest first, so every page of the window is read and the newest ``limit``
kept; a window of many skips costs as many pages (up to 10,000 events each).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trigger.start import SKIPPED

from ops.target import DENIED, Target, explain

PHRASE = f'"{SKIPPED}"'
OUTPUT = "TriggerLogGroupName"


@dataclass(frozen=True)
class Skipped:
    """One upload (or record) the trigger skipped: when, which key, and why."""

    time: str  # when the trigger logged it (ISO 8601, UTC)
    key: str | None
    bucket: str | None
    reason: str


@dataclass
class Skips:
    """The newest skips of a window; ``total``: how many the window holds; ``note``: why none could be
    read (no log group output, no such log group yet, a permission missing), else None."""

    since: datetime
    shown: list[Skipped] = field(default_factory=list)
    total: int = 0
    note: str | None = None


def recent(target: Target, *, since: datetime, limit: int, now: datetime | None = None) -> Skips:
    """The newest ``limit`` skips the trigger logged since ``since``."""
    found = Skips(since)
    group = target.outputs.get(OUTPUT)
    if not group:
        found.note = f"unknown: the stack has no {OUTPUT} output (deployed from an older template?)"
        return found
    end = now or datetime.now(UTC)
    newest: deque[Skipped] = deque(maxlen=limit)
    doing = f"reading the trigger's skips in {group}"
    try:
        pages = (
            target.client("logs")
            .get_paginator("filter_log_events")
            .paginate(
                logGroupName=group,
                filterPattern=PHRASE,
                startTime=int(since.timestamp() * 1000),
                endTime=int(end.timestamp() * 1000),
            )
        )
        for page in pages:
            for event in page.get("events", []):
                skipped = _skipped(event)
                if skipped is not None:
                    newest.append(skipped)
                    found.total += 1
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "ResourceNotFoundException":
            found.note = f"none: the log group {group} does not exist yet (the trigger has not run)"
            return found
        # Skips are an extra section: a refusal is told on its line, the rest of status still prints.
        need = " (logs:FilterLogEvents)" if code in DENIED else ""
        found.note = f"unknown: {explain(exc, doing)}{need}"
        return found
    except BotoCoreError as exc:
        found.note = f"unknown: {explain(exc, doing)}"
        return found
    found.shown = list(reversed(newest))
    return found


def _skipped(event: dict[str, Any]) -> Skipped | None:
    """The skip a log event records, or None when it is another line that contains the phrase."""
    try:
        line = json.loads(event.get("message", ""))
    except ValueError:
        return None
    if not isinstance(line, dict) or line.get("message") != SKIPPED:
        return None
    when = datetime.fromtimestamp(int(event.get("timestamp", 0)) / 1000, UTC)
    key, bucket = line.get("key"), line.get("bucket")
    return Skipped(
        time=when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        key=str(key) if key is not None else None,
        bucket=str(bucket) if bucket is not None else None,
        reason=str(line.get("reason") or "no reason given"),
    )


__all__ = ["PHRASE", "Skipped", "Skips", "recent"]
