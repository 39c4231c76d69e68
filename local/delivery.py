"""The SQS event source mapping, as Lambda runs it (moto cannot invoke a function without Docker):
``MaximumConcurrency`` pollers, each with its own function process, batches of ``BatchSize`` gathered over
``MaximumBatchingWindowInSeconds``, Lambda's record shape and ``ReportBatchItemFailures``
(docs/local-runtime.md, "Delivery"). Retrying and dead-lettering are SQS's own, never done here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trigger.errors import UnsupportedEvent
from trigger.events import ObjectEvent, normalise

from local.lambdas import FunctionProcess
from local.stack import EventSource

Notify = Callable[[str, dict[str, Any]], None]  # (what happened, details)
LONG_POLL_SECONDS = 1  # also the longest a stop() waits for a poller
SQS_RECEIVE_MAX = 10  # ReceiveMessage's MaxNumberOfMessages limit
RECORD_ATTRIBUTES = (  # the system attributes a record of Lambda's SQS event carries
    "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
    "SequenceNumber", "MessageGroupId", "MessageDeduplicationId", "AWSTraceHeader",
)  # fmt: skip
INVALID = {  # a ReportBatchItemFailures response Lambda cannot use
    "errorType": "InvalidBatchItemFailures",
    "errorMessage": "the response's batchItemFailures is not valid: the whole batch failed",
}
VALUE_KEYS = ("StringValue", "BinaryValue", "StringListValues", "BinaryListValues", "DataType")


def s3_keys(body: str) -> list[str]:
    """The object keys a message body announces, as the trigger reads them (its own parser)."""
    try:
        items = normalise(json.loads(body))
    except (ValueError, UnsupportedEvent):
        return []
    return [i.key for i in items if isinstance(i, ObjectEvent)]


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as a record of the event Lambda's SQS poller sends."""
    attributes = {k: v for k, v in (message.get("Attributes") or {}).items() if k in RECORD_ATTRIBUTES}
    message_attributes = {  # SQS's StringValue as Lambda's stringValue, and so on
        name: {
            k[0].lower() + k[1:]: value.get(k, [] if k.endswith("ListValues") else None) for k in VALUE_KEYS
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_items(payload: Any, batch: set[str]) -> set[str] | None:
    """The message IDs a ReportBatchItemFailures response names; None if the response is not valid (Lambda:
    an empty, missing or unknown identifier fails the whole batch)."""
    if payload is None or (isinstance(payload, dict) and payload.get("batchItemFailures") is None):
        return set()
    items = payload.get("batchItemFailures") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return None
    ids = [i.get("itemIdentifier") if isinstance(i, dict) else None for i in items]
    return {str(i) for i in ids} if all(isinstance(i, str) and i in batch for i in ids) else None


class Delivery:
    """One SQS event source mapping: ``MaximumConcurrency`` pollers, each with its own function process."""

    def __init__(
        self,
        *,
        mapping: EventSource,
        functions: list[FunctionProcess],
        sqs: Any,
        region: str,
        notify: Notify | None = None,
    ) -> None:
        self.mapping, self.queue_url = mapping, mapping.queue_url
        self.functions, self.sqs, self.region = functions, sqs, region
        self.notify: Notify = notify or (lambda kind, details: None)
        self._lock, self._busy, self._stop = threading.Lock(), 0, threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Delivery:
        self._threads = [
            threading.Thread(
                target=self._poll, args=(f,), name=f"poller-{self.mapping.function_id}", daemon=True
            )
            for f in self.functions
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []

    def idle(self) -> bool:
        """No batch being handled (the queue itself may still hold messages)."""
        with self._lock:
            return self._busy == 0

    def _poll(self, function: FunctionProcess) -> None:
        while not self._stop.is_set():
            try:
                if messages := self._receive():
                    with self._lock:
                        self._busy += 1
                    try:
                        self._handle(function, messages)
                    finally:
                        with self._lock:
                            self._busy -= 1
            except (ClientError, BotoCoreError) as exc:  # not received, or not deleted: they come back
                if not self._stop.is_set():
                    self.notify("poll-error", {"function": self.mapping.function_id, "error": str(exc)})
                    self._stop.wait(0.5)

    def _receive(self) -> list[dict[str, Any]]:
        """Up to BatchSize messages: one long poll, then more within the batching window."""
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.mapping.batching_window
        wait = LONG_POLL_SECONDS
        while len(batch) < self.mapping.batch_size and not self._stop.is_set():
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_RECEIVE_MAX, self.mapping.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            batch += received
            if not received or time.monotonic() >= deadline:
                break
            wait = 0
        return batch

    def _handle(self, function: FunctionProcess, messages: list[dict[str, Any]]) -> None:
        """Invoke the function with the batch; delete what it did not report failed (nothing if it failed)."""
        records = [lambda_record(m, self.mapping.queue_arn, self.region) for m in messages]
        invocation = function.invoke({"Records": records})
        details: dict[str, Any] = {
            "function": self.mapping.function_id,
            "keys": [k for r in records for k in s3_keys(r["body"])],
            "batch": len(records),
            "max_receive_count": max(
                int(r["attributes"].get("ApproximateReceiveCount", "1")) for r in records
            ),
            "bodies": [r["body"] for r in records],
            "duration_ms": invocation.duration_ms,
        }
        failed: set[str] | None = set()
        if self.mapping.report_batch_item_failures:
            failed = failed_items(invocation.payload, {r["messageId"] for r in records})
        if invocation.error or failed is None:
            self.notify(
                "invoke-error", {**details, "error": invocation.payload if invocation.error else INVALID}
            )
            return
        done = [r["receiptHandle"] for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), SQS_RECEIVE_MAX):
            chunk = enumerate(done[start : start + SQS_RECEIVE_MAX])
            entries = [{"Id": str(n), "ReceiptHandle": handle} for n, handle in chunk]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        self.notify("invoked", {**details, "result": invocation.payload, "failed": len(failed)})
