"""``s3sm redrive``'s report (ops.dlq) reading the dead-letter queue, with SQS stubbed (botocore Stubber:
the exact calls, no network), and judging each message with the stack's own trigger settings.

The report against the emulator's queues: tests/hardening/test_redrive.py.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from trigger.config import Config, TriggerMode

from contract.routes import parse
from ops.dlq import VISIBILITY_TIMEOUT, WAIT_SECONDS, waiting
from ops.target import OpsError, Target, trigger_settings

BUCKET = "example-data-bucket"


QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/stack-TriggerDeadLetterQueue-abc"


def offline(service: str) -> Any:
    return boto3.session.Session().client(
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - a placeholder for an offline client
        endpoint_url="http://127.0.0.1:9",  # nothing listens: an unstubbed call never leaves
    )


def notification(key: str) -> str:
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-26T12:00:00.000Z",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "eTag": "e", "sequencer": "0A"}},
    }
    return json.dumps({"Records": [record]})


def message(n: int, handle: str | None = None, key: str | None = None) -> dict[str, Any]:
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": handle or f"h{n}",
        "Body": notification(key or f"raw/dead/{n}.csv"),
        "Attributes": {"SentTimestamp": "1795694400000", "ApproximateReceiveCount": "293"},
    }


class Reading:
    """The report's expected SQS calls, in order."""

    def __init__(self) -> None:
        self.sqs = offline("sqs")
        self.stub = Stubber(self.sqs)

    def receive(self, *messages: dict[str, Any], want: int = 10) -> None:
        self.stub.add_response(
            "receive_message",
            {"Messages": list(messages)} if messages else {},
            expected_params={
                "QueueUrl": QUEUE,
                "MaxNumberOfMessages": want,
                "VisibilityTimeout": VISIBILITY_TIMEOUT,
                "WaitTimeSeconds": WAIT_SECONDS,  # long polling: all of SQS's servers are asked
                "MessageSystemAttributeNames": ["All"],
            },
        )

    def visible(self, count: int) -> None:
        self.stub.add_response(
            "get_queue_attributes",
            {"Attributes": {"ApproximateNumberOfMessages": str(count)}},
            expected_params={"QueueUrl": QUEUE, "AttributeNames": ["ApproximateNumberOfMessages"]},
        )

    def release(self, *handles: str) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(handles)]
        self.stub.add_response(
            "change_message_visibility_batch",
            {"Successful": [{"Id": e["Id"]} for e in entries], "Failed": []},
            expected_params={"QueueUrl": QUEUE, "Entries": entries},
        )


def test_an_empty_receive_does_not_end_the_report_while_the_queue_says_messages_are_visible() -> None:
    # Given a dead-letter queue of two messages whose first receive finds nothing (SQS's servers may
    # hold them elsewhere) while the queue reports them visible
    reading = Reading()
    reading.receive()
    reading.visible(2)
    reading.receive(message(1), message(2))
    reading.receive()
    reading.visible(0)
    reading.release("h1", "h2")

    # When the report runs
    with reading.stub:
        rows = waiting(QUEUE, sqs=reading.sqs, config=Config("p"))

    # Then both are reported (never "0 waiting"), and both are made visible again
    assert [row.message_id for row in rows] == ["m1", "m2"]
    reading.stub.assert_no_pending_responses()


def test_a_message_that_shows_up_again_is_counted_once_and_does_not_end_the_report() -> None:
    # Given a queue where the first message shows up again (new receipt handle) before the second
    reading = Reading()
    reading.receive(message(1))
    reading.receive(message(1, handle="h1-again"))
    reading.visible(1)
    reading.receive(message(2))
    reading.receive()
    reading.visible(0)
    reading.release("h1-again", "h2")  # each with its latest receipt handle

    # When the report runs
    with reading.stub:
        rows = waiting(QUEUE, sqs=reading.sqs, config=Config("p"))

    # Then each message is one row, and the second was not missed
    assert [row.message_id for row in rows] == ["m1", "m2"]
    reading.stub.assert_no_pending_responses()


def test_the_report_stops_at_its_time_limit() -> None:
    # Given a queue that keeps answering, and a clock past the limit after the first receive
    reading = Reading()
    reading.receive(message(1))
    reading.release("h1")
    ticks = iter([0.0, 0.0, 500.0])

    # When the report runs, Then it reads what it could in its time and stops
    with reading.stub:
        rows = waiting(QUEUE, sqs=reading.sqs, config=Config("p"), clock=lambda: next(ticks))
    assert [row.message_id for row in rows] == ["m1"]
    reading.stub.assert_no_pending_responses()


def test_the_verdicts_follow_the_stacks_trigger_settings() -> None:
    # Given a marker-mode stack (its outputs) built with its own raw prefix, and its marker's notification
    outputs = {
        "PipelineName": "etl",
        "TriggerMode": "marker",
        "MarkerName": "_DONE",
        "CleanDataUrl": f"s3://{BUCKET}/clean/",
        "SnapshotDataUrl": f"s3://{BUCKET}/snapshot/",
    }
    config = trigger_settings(
        Target("prod", "us-east-1", outputs), parse({"routes": [{"prefix": "landing/"}]})
    )
    reading = Reading()
    reading.receive(message(1, key="landing/batch/_DONE"))
    reading.receive()
    reading.visible(0)
    reading.release("h1")

    # When the report judges it with the stack's settings
    with reading.stub:
        (row,) = waiting(QUEUE, sqs=reading.sqs, config=config)

    # Then it is runnable (the trigger's defaults, object mode under raw/, would call it a skip)
    assert (config.mode, config.routes.prefixes(), config.marker_name) == (
        TriggerMode.MARKER,
        ["landing/"],
        "_DONE",
    )
    assert row.verdict == "runnable", row.reason
    digest = hashlib.sha256(b"landing/batch").hexdigest()[:32]  # the folder's snapshot: its digest
    assert str(row.input_url).startswith(f"s3://{BUCKET}/snapshot/{digest}/")


def test_outputs_that_make_no_trigger_configuration_are_a_clear_error() -> None:
    # Given a stack whose TriggerMode output is not a mode the trigger knows
    outputs = {"PipelineName": "etl", "TriggerMode": "sometimes"}

    # Then its settings cannot be read, and the error says why
    with pytest.raises(OpsError, match="do not make a trigger configuration"):
        trigger_settings(Target("prod", "us-east-1", outputs), parse({"routes": [{"prefix": "raw/"}]}))


def test_an_unreadable_queue_is_one_clear_line_and_releases_what_it_read() -> None:
    # Given a queue whose second receive is refused (the operator's role may not read it)
    reading = Reading()
    reading.receive(message(1))
    reading.stub.add_client_error("receive_message", "AccessDenied", "not allowed", 403)
    reading.release("h1")

    # When the report runs, Then it fails with what it was doing and what AWS said
    with reading.stub, pytest.raises(OpsError, match=r"reading the dead-letter queue .*permission missing"):
        waiting(QUEUE, sqs=reading.sqs, config=Config("p"))
    reading.stub.assert_no_pending_responses()
