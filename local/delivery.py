"""SQS event source mapping: a queue polled and its messages handed to the real function, as Lambda does.

moto keeps SQS queues (visibility timeouts, receive counts, the redrive policy's move to the dead-letter
queue after ``maxReceiveCount`` receives) but has no event source mappings: it cannot invoke a Lambda
function without Docker. :class:`Delivery` is the mapping's poller, configured from the template's
``Type: SQS`` event (:class:`local.lambdas.SqsEventSource`):

- ``ScalingConfig.MaximumConcurrency`` pollers, each invoking its own execution environment
  (:class:`local.lambdas.FunctionProcess`): that many invocations at once, as Lambda caps them;
- each receives up to ``BatchSize`` messages (SQS returns at most 10 per call: more are gathered over
  ``MaximumBatchingWindowInSeconds``), with every system attribute, and invokes the function with the
  event Lambda sends (``Records`` of ``messageId``, ``receiptHandle``, ``body``, ``attributes`` incl.
  ``ApproximateReceiveCount``, ``messageAttributes``, ``md5OfBody``, ``eventSource``,
  ``eventSourceARN``, ``awsRegion``);
- with ``FunctionResponseTypes: [ReportBatchItemFailures]``, the messages named in the response's
  ``batchItemFailures`` stay in the queue and the others are deleted; a response that names a
  message not in the batch (or is not of that shape) fails the whole batch, as Lambda treats it;
- a failed invocation (exception, timeout, crash) deletes nothing: the batch becomes visible again
  when its visibility timeout (the queue's, or what the function set) runs out, and SQS's own redrive
  policy moves a message to the dead-letter queue after ``maxReceiveCount`` receives.

Nothing here retries or dead-letters by itself: SQS does both, and the function decides (the trigger
sets a failed record's next visibility itself).
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


def _ignore(kind: str, details: dict[str, Any]) -> None:
    return


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
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
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
    """The message IDs a ReportBatchItemFailures response names; None if the response is not valid."""
    if payload is None or (isinstance(payload, dict) and payload.get("batchItemFailures") is None):
        return set()
    if not isinstance(payload, dict) or not isinstance(payload["batchItemFailures"], list):
        return None
    failed = set()
    for item in payload["batchItemFailures"]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in batch:
            return None  # Lambda: an empty, missing or unknown identifier fails the whole batch
        failed.add(identifier)
    return failed


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
        if not functions:
            raise ValueError("a mapping needs at least one function process")
        self.mapping = mapping
        self.source = mapping.source
        self.queue_url = mapping.queue_url
        self.functions = functions
        self.sqs = sqs
        self.region = region
        self.notify = notify or _ignore
        self._lock = threading.Lock()
        self._busy = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Delivery:
        if not self.source.enabled:
            return self
        for index, function in enumerate(self.functions):
            thread = threading.Thread(
                target=self._poll,
                args=(function,),
                name=f"poller-{self.mapping.function_id}-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
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

    # -- one poller ---------------------------------------------------------------------------------

    def _poll(self, function: FunctionProcess) -> None:
        while not self._stop.is_set():
            try:
                messages = self._receive()
            except (ClientError, BotoCoreError) as exc:
                if self._stop.is_set():
                    break
                self.notify("poll-error", {"function": self.mapping.function_id, "error": str(exc)})
                self._stop.wait(0.5)
                continue
            if not messages:
                continue
            with self._lock:
                self._busy += 1
            try:
                self._handle(function, messages)
            except (ClientError, BotoCoreError) as exc:  # deleting failed: the messages come back
                self.notify("poll-error", {"function": self.mapping.function_id, "error": str(exc)})
            finally:
                with self._lock:
                    self._busy -= 1

    def _receive(self) -> list[dict[str, Any]]:
        """Up to BatchSize messages: one long poll, then more within the batching window."""
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.source.batching_window
        wait = LONG_POLL_SECONDS
        while len(batch) < self.source.batch_size and not self._stop.is_set():
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_RECEIVE_MAX, self.source.batch_size - len(batch)),
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
        records = [lambda_record(m, self.mapping.queue_arn, self.region) for m in messages]
        ids = {r["messageId"] for r in records}
        keys = [k for r in records for k in s3_keys(r["body"])]
        receives = [int(r["attributes"].get("ApproximateReceiveCount", "1")) for r in records]
        invocation = function.invoke({"Records": records})
        details: dict[str, Any] = {
            "function": self.mapping.function_id,
            "keys": keys,
            "batch": len(records),
            "max_receive_count": max(receives),
            "bodies": [r["body"] for r in records],
            "duration_ms": invocation.duration_ms,
        }
        if invocation.error:
            self.notify("invoke-error", {**details, "error": invocation.payload})
            return
        if self.source.report_batch_item_failures:
            failed = failed_items(invocation.payload, ids)
            if failed is None:
                error = {
                    "errorType": "InvalidBatchItemFailures",
                    "errorMessage": "the response's batchItemFailures is not valid: the whole batch failed",
                }
                self.notify("invoke-error", {**details, "error": error})
                return
        else:
            failed = set()
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), SQS_RECEIVE_MAX):
            chunk = done[start : start + SQS_RECEIVE_MAX]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": r["receiptHandle"]} for n, r in enumerate(chunk)],
            )
        self.notify("invoked", {**details, "result": invocation.payload, "failed": len(failed)})


__all__ = ["Delivery", "Notify", "failed_items", "lambda_record", "s3_keys"]
