"""``s3sm redrive``: what waits in the dead-letter queue and why (the trigger's dry-run report, which
changes nothing), and with ``--move`` SQS's own redrive (StartMessageMoveTask) back to the upload queue."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.target import OpsError, Target, explain
from redrive.replay import in_process
from redrive.run import RedriveError, Report, redrive


def report(target: Target, *, max_messages: int | None) -> Report:
    """The dry-run report of the stack's dead-letter queue: every message, its keys and its recorded error."""
    queue = target.output("TriggerDeadLetterQueueUrl")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return redrive(
                queue,
                in_process(),  # never called: a dry run replays nothing
                sqs=target.client("sqs"),
                sagemaker=target.client("sagemaker"),
                max_messages=max_messages,
                dry_run=True,
                wait_seconds=1,
                target="nothing (dry run)",
            )
    except RedriveError as exc:
        raise OpsError(f"reading the dead-letter queue {queue}: {exc}") from exc
    except (ClientError, BotoCoreError) as exc:
        raise explain(exc, f"reading the dead-letter queue {queue}") from exc


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
        request: dict[str, Any] = {"SourceArn": arn}
        if rate is not None:
            request["MaxNumberOfMessagesPerSecond"] = rate
        handle = sqs.start_message_move_task(**request)["TaskHandle"]
    except (ClientError, BotoCoreError) as exc:
        raise explain(exc, f"starting the redrive of {queue} (StartMessageMoveTask)") from exc
    return {"source": arn, "task_handle": handle}


__all__ = ["move", "report"]
