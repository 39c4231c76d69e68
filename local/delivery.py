"""S3 event delivery: the notification queue to the real trigger handler, with Lambda's async semantics.

moto cannot invoke a Lambda function without Docker, so the local stack points the bucket's
notifications at an SQS queue instead. :class:`Delivery` polls that queue and does what S3 and
Lambda's asynchronous invocation would do with each notification:

- the ``s3:TestEvent`` that S3 sends when notifications are configured is dropped (and reported);
- every other message body is an S3 event (``{"Records": [...]}``), passed to the handler unchanged:
  S3 sends Lambda the same document it sends SQS;
- a failed invocation (an exception, a timeout, a crash) is retried up to the function's
  ``MaximumRetryAttempts`` (template ``EventInvokeConfig``; Lambda's default 2). Lambda waits about
  1 and then 2 minutes between attempts; locally the waits are ``retry_delays`` (default 0.5 s, 1 s);
- when the retries are exhausted (or the event is older than ``MaximumEventAgeInSeconds``), an
  invocation record goes to the on-failure destination in Lambda's format (``requestContext``,
  ``requestPayload`` = the original event, ``responseContext``, ``responsePayload``); with the older
  ``DeadLetterQueue`` setting, the original event goes there with Lambda's message attributes.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.functions import FunctionProcess, Invocation

Notify = Callable[[str, dict[str, Any]], None]  # (what happened, details)
DEFAULT_RETRY_DELAYS = (0.5, 1.0)
LONG_POLL_SECONDS = 1  # also the longest a stop() waits for the delivery thread


def _ignore(kind: str, details: dict[str, Any]) -> None:
    return


@dataclass(order=True)
class _Pending:
    """An event in the local asynchronous invocation queue."""

    due: float
    seq: int
    event: dict[str, Any] = field(compare=False)
    request_id: str = field(compare=False)
    first_seen: float = field(compare=False)
    attempts: int = field(default=0, compare=False)


@dataclass
class DeliveryStats:
    notifications: int = 0
    test_events: int = 0
    invocations: int = 0
    errors: int = 0
    dead_lettered: int = 0


def _keys(event: dict[str, Any]) -> list[str]:
    records = event.get("Records") if isinstance(event, dict) else None
    return [
        str(((r.get("s3") or {}).get("object") or {}).get("key", ""))
        for r in records or []
        if isinstance(r, dict)
    ]


class Delivery:
    """Polls one notification queue and invokes one function per event, in a background thread."""

    def __init__(
        self,
        *,
        queue_url: str,
        function: FunctionProcess,
        sqs: Any,
        poll_interval: float = 0.05,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        notify: Notify | None = None,
    ) -> None:
        self.queue_url = queue_url
        self.function = function
        self.spec = function.spec
        self.sqs = sqs
        self.poll_interval = poll_interval
        self.retry_delays = retry_delays or (0.0,)
        self.notify = notify or _ignore
        self.stats = DeliveryStats()
        self._retries: list[_Pending] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Lock()

    def start(self) -> Delivery:
        self._thread = threading.Thread(
            target=self._run, name=f"delivery-{self.spec.logical_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._retries:
            self.notify("retries-dropped", {"function": self.spec.logical_id, "count": len(self._retries)})

    def idle(self) -> bool:
        """No retry pending and nothing being handled (the queue itself may still hold messages)."""
        return not self._retries and not self._busy.locked()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._busy:
                while self._retries and self._retries[0].due <= time.monotonic() and not self._stop.is_set():
                    self._attempt(heapq.heappop(self._retries))
            # Long polling (the emulator wakes the call as soon as a message arrives) unless a retry
            # falls due within the second.
            soon = bool(self._retries) and self._retries[0].due - time.monotonic() < LONG_POLL_SECONDS
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=0 if soon else LONG_POLL_SECONDS,
                ).get("Messages", [])
            except (ClientError, BotoCoreError) as exc:
                if self._stop.is_set():
                    break
                self.notify("poll-error", {"function": self.spec.logical_id, "error": str(exc)})
                self._stop.wait(self.poll_interval)
                continue
            with self._busy:
                for message in messages:  # accepted into the async queue: gone from the notification queue
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                for message in messages:
                    self._accept(message["Body"])
            if not messages and soon:
                self._stop.wait(min(self.poll_interval, max(0.0, self._retries[0].due - time.monotonic())))

    def _accept(self, body: str) -> None:
        """One notification from S3: queue it for an asynchronous invocation, or drop a test event."""
        try:
            event = json.loads(body)
        except json.JSONDecodeError:
            self.notify("bad-message", {"function": self.spec.logical_id, "body": body[:200]})
            return
        if isinstance(event, dict) and event.get("Event") == "s3:TestEvent":
            self.stats.test_events += 1
            self.notify("test-event", {"function": self.spec.logical_id, "bucket": event.get("Bucket")})
            return
        self.stats.notifications += 1
        self.notify("notification", {"function": self.spec.logical_id, "keys": _keys(event), "event": event})
        pending = _Pending(time.monotonic(), next(self._seq), event, str(uuid.uuid4()), time.monotonic())
        self._attempt(pending)

    def _attempt(self, pending: _Pending) -> None:
        pending.attempts += 1
        self.stats.invocations += 1
        invocation = self.function.invoke(pending.event, request_id=pending.request_id)
        details = {
            "function": self.spec.logical_id,
            "keys": _keys(pending.event),
            "attempt": pending.attempts,
            "request_id": pending.request_id,
            "duration_ms": invocation.duration_ms,
        }
        if not invocation.error:
            self.notify("invoked", {**details, "result": invocation.payload})
            return
        self.stats.errors += 1
        self.notify("invoke-error", {**details, "error": invocation.payload})
        age = time.monotonic() - pending.first_seen
        if age > self.spec.max_event_age:
            self._dead_letter(pending, invocation, "EventAgeExceeded")
        elif pending.attempts <= self.spec.max_retry_attempts:
            delay = self.retry_delays[min(pending.attempts - 1, len(self.retry_delays) - 1)]
            pending.due = time.monotonic() + delay
            pending.seq = next(self._seq)
            heapq.heappush(self._retries, pending)
        else:
            self._dead_letter(pending, invocation, "RetriesExhausted")

    def _dead_letter(self, pending: _Pending, invocation: Invocation, condition: str) -> None:
        spec = self.spec
        details: dict[str, Any] = {
            "function": spec.logical_id,
            "keys": _keys(pending.event),
            "condition": condition,
        }
        if spec.on_failure_arn:
            record = failure_record(pending.event, invocation, spec.arn, pending.attempts, condition)
            self._send(spec.on_failure_arn, json.dumps(record), None)
            details["destination"] = spec.on_failure_arn
        elif spec.dead_letter_arn:
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": pending.request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": invocation.error_message[:1024] or "error",
                },
            }
            self._send(spec.dead_letter_arn, json.dumps(pending.event), attributes)
            details["destination"] = spec.dead_letter_arn
        else:
            details["destination"] = None  # Lambda discards the event
        self.stats.dead_lettered += 1
        self.notify("dead-letter", details)

    def _send(self, queue_arn: str, body: str, attributes: dict[str, Any] | None) -> None:
        if not queue_arn.startswith("arn:aws:sqs:"):
            raise ValueError(
                f"{self.spec.logical_id}: only SQS failure destinations are emulated, not {queue_arn}"
            )
        url = self.sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
        kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = attributes
        self.sqs.send_message(**kwargs)


def failure_record(
    event: Any, invocation: Invocation, function_arn: str, attempts: int, condition: str
) -> dict[str, Any]:
    """Lambda's invocation record for an asynchronous event that failed every attempt."""
    payload = {
        k: v for k, v in invocation.payload.items() if k in ("errorMessage", "errorType", "stackTrace")
    }
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": invocation.request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": payload,
    }


__all__ = ["DEFAULT_RETRY_DELAYS", "Delivery", "DeliveryStats", "Notify", "failure_record"]
