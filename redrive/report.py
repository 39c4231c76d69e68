"""What waits in the trigger's dead-letter queue, and why: a report that moves and deletes nothing.

SQS moves an upload here (its S3 notification, unchanged) once the upload queue's redrive policy gave
up on it: 24 h of retries with backoff (``trigger.backoff``). Sending messages back is SQS's own
redrive (``StartMessageMoveTask``, or the console's "Start DLQ redrive"), which this module does not
replace. What SQS does not say is what each message is and whether a redrive can run it; this module
reads each message (receiving it hidden for the report's length, then making it visible again at
once) and asks the trigger's own parser and rules about it, offline:

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

Function API (used by ``python -m redrive`` and wrapped by the project CLI)::

    config = deployed_config(boto3.client("lambda"), trigger_function_name, routes)  # the stack's settings
    rows = waiting(queue_url, sqs=boto3.client("sqs"), max_messages=None, config=config)
    for row in rows: row.message_id, row.sent_at, row.receives, row.verdict, row.key, row.reason

``config`` is the trigger's :class:`~trigger.config.Config` to judge with. Pass the deployed function's
(:func:`deployed_config`, from the stack output ``TriggerFunctionName``): the trigger's mode, routes
and marker name decide the verdicts. Without it, the settings come from this process's
environment as the trigger would read them, or the trigger's defaults with a placeholder pipeline
name, which may judge a stack deployed with other settings wrongly. Raises :class:`ReportError` when
the queue (or the function's configuration) cannot be read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trigger.config import Config, settings
from trigger.errors import ConfigError, UnsupportedEvent
from trigger.events import ObjectEvent, Skip, normalise
from trigger.routing import route

from contract.routes import Routes

BATCH = 10  # SQS's maximum per ReceiveMessage
WAIT_SECONDS = 2  # long polling: any wait above 0 makes SQS ask all its servers, not a sample
MAX_MESSAGES = 10_000  # the most one report reads unless told otherwise
TIME_LIMIT = 120.0  # seconds one report reads for at most
# Longer than a report reads: a message read stays hidden until the report ends and makes it visible.
VISIBILITY_TIMEOUT = int(TIME_LIMIT) + 60
PLACEHOLDER_PIPELINE = "pipeline-name-unset"


class ReportError(Exception):
    """The dead-letter queue cannot be read (missing, no permission, AWS unreachable)."""


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


def waiting(
    queue_url: str,
    *,
    sqs: Any,
    max_messages: int | None = None,
    config: Config | None = None,
    time_limit: float = TIME_LIMIT,
    clock: Callable[[], float] = time.monotonic,
) -> list[Row]:
    """One row per upload waiting in ``queue_url`` (in the order received); changes nothing."""
    judge = config or local_config()
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
                rows.extend(_rows(message, judge))
            if not fresh and _visible(sqs, queue_url) == 0:
                break  # nothing new, and nothing the report has not read is left visible
    except (ClientError, BotoCoreError) as err:
        raise ReportError(f"cannot read the dead-letter queue {queue_url}: {err}") from err
    finally:
        _release(sqs, queue_url, list(handles.items()))
    return rows


def deployed_config(lambda_client: Any, function_name: str, routes: Routes) -> Config:
    """The deployed trigger's settings: its function configuration's environment, as it reads it, with
    ``routes`` (the function's routes.json is inside its code: pass the routes.yaml it was built from)."""
    try:
        answer = lambda_client.get_function_configuration(FunctionName=function_name)
    except (ClientError, BotoCoreError) as err:
        raise ReportError(f"cannot read the trigger function {function_name!r}'s settings: {err}") from err
    variables: Mapping[str, str] = answer.get("Environment", {}).get("Variables", {})
    try:
        return Config.from_env(variables, routes)
    except ConfigError as err:
        raise ReportError(f"the trigger function {function_name!r} is misconfigured: {err}") from err


def _visible(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))


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


def as_json(rows: list[Row]) -> str:
    return json.dumps([row.as_dict() for row in rows], indent=2, ensure_ascii=False)


def local_config() -> Config:
    """The trigger's settings from this process's environment, or its defaults (see the module doc)."""
    try:
        return settings()
    except ConfigError:
        return Config(PLACEHOLDER_PIPELINE)  # only the rules matter here, not the pipeline's name


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


__all__ = ["ReportError", "Row", "as_json", "deployed_config", "local_config", "render", "waiting"]
