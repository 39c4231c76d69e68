"""``s3sm redrive``: what waits in the dead-letter queue and why, a report that moves and deletes nothing;
with ``--move``, SQS's own redrive (StartMessageMoveTask) back to the upload queue.

SQS moves an upload here (its S3 notification, unchanged) once the upload queue's redrive policy gave
up on it: 24 h of retries with backoff (``trigger.backoff``). Sending messages back is SQS's own
redrive (``StartMessageMoveTask``, or the console's "Start DLQ redrive"), which this module starts but
does not replace. What SQS does not say is what each message is and whether a redrive can run it; the
report reads each message (receiving it hidden for the report's length, then making it visible again
at once) and asks the trigger's own parser and rules about it, with the stack's settings
(:func:`ops.target.trigger_settings`), offline:

- ``runnable``: the trigger would snapshot and start this upload; it was refused (quota, throttling,
  a missing pipeline, an error not known to be final) for 24 h. Its ``upload deferred`` log lines
  say with what. Fix that, then redrive.
- ``skip``: the trigger would skip it, with the reason (a redrive would only delete it).
- ``unreadable``: the body is not an S3 notification the trigger accepts.

Reading: SQS answers a receive from a sample of its servers unless it long-polls, so a short poll
may find nothing in a queue that holds messages. Every receive here long-polls, and the report ends
only when a receive finds nothing new *and* the queue's ``ApproximateNumberOfMessages`` (the visible
ones: those it has not read) is 0, or at ``max_messages`` (default :data:`MAX_MESSAGES`), or after
``time_limit`` seconds. A message read earlier that shows up again (hidden by someone else's shorter
visibility) is not counted twice and does not end the report.

(``python -m redrive``, the report's former command, is gone: ``s3sm redrive`` replaces it.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trigger.config import Config
from trigger.errors import UnsupportedEvent
from trigger.events import ObjectEvent, Skip, normalise
from trigger.routing import route

from contract.routes import Routes
from ops.target import OpsError, Target, explain, trigger_settings
from ops.text import COMMAND

BATCH = 10  # SQS's maximum per ReceiveMessage
WAIT_SECONDS = 2  # long polling: any wait above 0 makes SQS ask all its servers, not a sample
MAX_MESSAGES = 10_000  # the most one report reads unless told otherwise
TIME_LIMIT = 120.0  # seconds one report reads for at most
# Longer than a report reads: a message read stays hidden until the report ends and makes it visible.
VISIBILITY_TIMEOUT = int(TIME_LIMIT) + 60


@dataclass(frozen=True, slots=True)
class Row:
    """One upload (or unreadable message) waiting in the dead-letter queue."""

    message_id: str
    sent_at: str  # when S3 first sent it (ISO 8601, UTC); SQS keeps it across the move
    receives: int  # ApproximateReceiveCount as SQS reports it (includes this report's own receive)
    verdict: str  # runnable | skip | unreadable
    key: str | None
    reason: str
    bucket: str | None = None
    input_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def report(target: Target, routes: Routes, *, max_messages: int | None) -> list[Row]:
    """One row per message waiting in the stack's dead-letter queue: runnable, skip or unreadable, and why."""
    queue = target.output("TriggerDeadLetterQueueUrl")
    config = trigger_settings(target, routes)
    return waiting(queue, sqs=target.client("sqs"), max_messages=max_messages, config=config)


def waiting(
    queue_url: str,
    *,
    sqs: Any,
    config: Config,
    max_messages: int | None = None,
    time_limit: float = TIME_LIMIT,
    clock: Callable[[], float] = time.monotonic,
) -> list[Row]:
    """One row per upload waiting in ``queue_url`` (in the order received), judged with ``config``;
    changes nothing. Raises OpsError when the queue cannot be read."""
    limit = MAX_MESSAGES if max_messages is None else max_messages
    deadline = clock() + time_limit
    rows: list[Row] = []
    handles: dict[str, str] = {}  # message ID -> its latest receipt handle (to make it visible again)
    try:
        while len(handles) < limit and clock() < deadline:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(BATCH, limit - len(handles)),
                VisibilityTimeout=VISIBILITY_TIMEOUT,
                WaitTimeSeconds=WAIT_SECONDS,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in handles]
            for message in messages:
                handles[message["MessageId"]] = message["ReceiptHandle"]
            for message in fresh:
                rows.extend(_rows(message, config))
            if not fresh and _visible(sqs, queue_url) == 0:
                break  # nothing new, and nothing the report has not read is left visible
    except (ClientError, BotoCoreError) as err:
        raise explain(err, f"reading the dead-letter queue {queue_url}") from err
    finally:
        _release(sqs, queue_url, list(handles.items()))
    return rows


def move(target: Target, *, rate: int | None) -> dict[str, Any]:
    """Start SQS's native redrive of the dead-letter queue to the queue each message came from."""
    if target.local:
        raise OpsError(
            "the local runtime cannot redrive: moto does not implement StartMessageMoveTask "
            f"(`{COMMAND} redrive` without --move reports what waits)"
        )
    sqs = target.client("sqs")
    queue = target.output("TriggerDeadLetterQueueUrl")
    try:
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        # Back to the upload queue by name: an upload EventBridge could not deliver has no source queue.
        destination = sqs.get_queue_attributes(
            QueueUrl=target.output("UploadQueueUrl"), AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        request: dict[str, Any] = {"SourceArn": arn, "DestinationArn": destination}
        if rate is not None:
            request["MaxNumberOfMessagesPerSecond"] = rate
        handle = sqs.start_message_move_task(**request)["TaskHandle"]
    except (ClientError, BotoCoreError) as exc:
        raise explain(exc, f"starting the redrive of {queue} (StartMessageMoveTask)") from exc
    return {"source": arn, "task_handle": handle}


def render(rows: list[Row]) -> str:
    """The report as text: a summary line, then one line per row."""
    counts = {v: sum(r.verdict == v for r in rows) for v in ("runnable", "skip", "unreadable")}
    lines = [
        f"{len(rows)} waiting in the dead-letter queue: {counts['runnable']} runnable (redrive once the "
        f"cause is fixed), {counts['skip']} the trigger would skip, {counts['unreadable']} unreadable"
    ]
    for row in rows:
        where = f"s3://{row.bucket}/{row.key}" if row.bucket and row.key else (row.key or "-")
        lines.append(f"  {row.verdict:<10} {row.sent_at}  {row.receives:>4}x  {where}  {row.reason}")
    return "\n".join(lines)


def _visible(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))


def _rows(message: dict[str, Any], config: Config) -> Iterator[Row]:
    attributes = message.get("Attributes", {})
    message_id, sent_at = str(message["MessageId"]), _time(attributes.get("SentTimestamp"))
    receives = int(attributes.get("ApproximateReceiveCount", 0) or 0)

    def row(
        verdict: str, key: str | None, reason: str, bucket: str | None = None, url: str | None = None
    ) -> Row:
        return Row(message_id, sent_at, receives, verdict, key, reason, bucket, url)

    try:
        body = json.loads(message.get("Body", ""))
        items = normalise(body if isinstance(body, dict) else {"body": body})
    except (ValueError, UnsupportedEvent) as err:
        yield row("unreadable", None, f"not an S3 notification: {err}")
        return
    for item in items:
        outcome = item if isinstance(item, Skip) else route(item, config)
        if isinstance(outcome, Skip):
            yield row("skip", outcome.key, outcome.reason, outcome.bucket)
            continue
        source: ObjectEvent = outcome.source
        reason = (
            "refused until the upload queue's redrive policy gave up (see the trigger's "
            "'upload deferred' or 'upload rejected' log lines for this key); "
            f"{source.identity}"
        )
        yield row("runnable", source.key, reason, source.bucket, outcome.input_url)


def _release(sqs: Any, queue_url: str, handles: list[tuple[str, str]]) -> None:
    """Make every message read visible again at once (in batches of 10)."""
    for start in range(0, len(handles), BATCH):
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, (_, handle) in enumerate(handles[start : start + BATCH])
        ]
        try:
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except (ClientError, BotoCoreError):
            continue  # they reappear by themselves after VISIBILITY_TIMEOUT seconds


def _time(millis: object) -> str:
    try:
        return datetime.fromtimestamp(int(str(millis)) / 1000, UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError):
        return "unknown"


__all__ = ["MAX_MESSAGES", "Row", "move", "render", "report", "waiting"]
