"""One dead-letter queue message: the event to replay and the failure it records, or why it is unreadable.

Accepted bodies (JSON):

- Lambda's invocation record, sent to an on-failure destination when an asynchronous invocation failed
  every attempt (``condition`` ``RetriesExhausted``) or waited too long (``EventAgeExceeded``)::

    {"version": "1.0", "timestamp": "...",
     "requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "requestPayload": <the original event>,
     "responseContext": {"statusCode", "executedVersion", "functionError"},
     "responsePayload": {"errorMessage", "errorType", "stackTrace"}}

- a bare event: an S3 notification sent straight to SQS, or the copy of the event a Lambda
  dead-letter queue (``DeadLetterConfig``) receives, with the error in the ``ErrorMessage`` attribute.

The event itself must be one the trigger accepts (S3, SQS-wrapped S3, EventBridge, ``s3:TestEvent``):
it is checked with the trigger's own parser, so anything else is reported before any replay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trigger.errors import UnsupportedEvent
from trigger.events import normalise


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message whose event can be replayed."""

    message_id: str
    receipt_handle: str
    event: dict[str, Any]
    keys: tuple[str, ...]  # the object keys the event names (decoded), for the report
    origin: str  # what the message is, e.g. "Lambda on-failure record (RetriesExhausted, 3 attempts)"
    error: str | None  # the failure the message records, when it records one
    sent_at: datetime | None  # when the message was sent to the queue (SQS SentTimestamp)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A message that cannot be replayed; it stays in the queue for a person to look at."""

    message_id: str
    receipt_handle: str
    reason: str


def read(message: Mapping[str, Any]) -> DeadLetter | Unreadable:
    """``message`` as SQS ReceiveMessage returns it, made into what to replay (or why it cannot be)."""
    message_id = str(message["MessageId"])
    receipt = str(message["ReceiptHandle"])

    def unreadable(reason: str) -> Unreadable:
        return Unreadable(message_id, receipt, reason)

    try:
        body = json.loads(message.get("Body", ""))
    except (json.JSONDecodeError, RecursionError) as err:
        return unreadable(f"body is not JSON ({err})")
    if not isinstance(body, dict):
        return unreadable(f"body is a JSON {type(body).__name__}, not an invocation record or an event")

    if "requestContext" in body or "requestPayload" in body:  # Lambda's record; no S3/EventBridge field
        event = body.get("requestPayload")
        if not isinstance(event, dict):
            return unreadable("Lambda invocation record without the original event (requestPayload)")
        origin, error = _record_origin(body)
    else:
        event, origin, error = body, "event", _attribute(message, "ErrorMessage")
    try:
        items = normalise(event)
    except UnsupportedEvent as err:
        return unreadable(f"not an event the trigger accepts: {err}")
    keys = tuple(item.key for item in items if item.key is not None)
    return DeadLetter(message_id, receipt, event, keys, origin, error, _sent_at(message))


def _record_origin(record: dict[str, Any]) -> tuple[str, str | None]:
    context = record.get("requestContext")
    context = context if isinstance(context, dict) else {}
    condition = context.get("condition") or "unknown condition"
    attempts = context.get("approximateInvokeCount")
    origin = f"Lambda on-failure record ({condition}" + (f", {attempts} attempts)" if attempts else ")")
    response = record.get("responsePayload")
    if isinstance(response, dict) and (response.get("errorType") or response.get("errorMessage")):
        kind, text = response.get("errorType") or "Error", response.get("errorMessage") or ""
        return origin, f"{kind}: {text}".rstrip(": ")
    return origin, None


def _attribute(message: Mapping[str, Any], name: str) -> str | None:
    attribute = (message.get("MessageAttributes") or {}).get(name) or {}
    value = attribute.get("StringValue")
    return str(value) if value else None


def _sent_at(message: Mapping[str, Any]) -> datetime | None:
    sent = (message.get("Attributes") or {}).get("SentTimestamp")
    try:
        return datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None
    except ValueError:
        return None
