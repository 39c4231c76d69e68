"""``s3sm redrive``: what waits in the dead-letter queue and why (the trigger's dry-run report,
:mod:`redrive.report`, which changes nothing), and with ``--move`` SQS's own redrive
(StartMessageMoveTask) back to the upload queue."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trigger.config import Config, TriggerMode
from trigger.errors import ConfigError

from contract.routes import Routes
from ops.target import OpsError, Target, explain
from redrive.report import ReportError, Row, waiting


def _prefix(target: Target, output: str) -> str | None:
    """``clean/`` from ``CleanDataUrl`` = ``s3://<bucket>/clean/``."""
    url = target.outputs.get(output)
    return url.split("/", 3)[3] if url and url.startswith("s3://") and url.count("/") >= 3 else None


def judge(target: Target, routes: Routes) -> Config:
    """The trigger's settings as this stack has them (with the ``routes`` it was built from): the
    report and the backfill ask its rules about each message."""
    given: dict[str, Any] = {
        "routes": routes,
        "clean_prefix": _prefix(target, "CleanDataUrl"),
        "snapshot_prefix": _prefix(target, "SnapshotDataUrl"),
        "marker_name": target.outputs.get("MarkerName"),
    }
    mode = target.outputs.get("TriggerMode")
    if mode:
        given["mode"] = TriggerMode(mode)
    try:
        return Config(target.output("PipelineName"), **{k: v for k, v in given.items() if v is not None})
    except (ConfigError, ValueError) as exc:
        raise OpsError(f"the stack's outputs do not make a trigger configuration: {exc}") from exc


def report(target: Target, routes: Routes, *, max_messages: int | None) -> list[Row]:
    """One row per message waiting in the stack's dead-letter queue: runnable, skip or unreadable, and why."""
    queue = target.output("TriggerDeadLetterQueueUrl")
    config = judge(target, routes)
    try:
        return waiting(queue, sqs=target.client("sqs"), max_messages=max_messages, config=config)
    except ReportError as exc:
        raise OpsError(" ".join(str(exc).split())) from exc


def move(target: Target, *, rate: int | None) -> dict[str, Any]:
    """Start SQS's native redrive of the dead-letter queue to the queue each message came from."""
    if target.local:
        raise OpsError(
            "the local runtime cannot redrive: moto does not implement StartMessageMoveTask "
            "(`s3sm redrive` without --move reports what waits)"
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


__all__ = ["judge", "move", "report"]
