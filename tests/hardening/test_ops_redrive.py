"""The dead-letter report (``s3sm redrive``): what waits in the dead-letter queue and why, untouched.

Redrive itself is SQS's (StartMessageMoveTask, which moto lacks: ``stack.redrive()`` does what it does).
The report runs against the emulator's SQS, on messages that got there the real way (the upload queue's
redrive policy after maxReceiveCount failed deliveries) and on messages placed there by hand. Reading
the queue with SQS stubbed: tests/unit/test_ops_redrive.py.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from ops import cli
from ops.dlq import render, report
from ops.target import OpsError, Target, load_routes
from tests.support.hardening import BUCKET, Stack

KEY = "raw/coil2000/Caravan.csv"


def stack_of(stack: Stack, dlq_url: str | None = None) -> Target:
    """The hardening stack as ``s3sm`` finds a deployed one: its outputs (the emulator's endpoint comes
    from AWS_ENDPOINT_URL, as for every client)."""
    outputs = {
        "PipelineName": stack.pipeline_name,
        "UploadQueueUrl": stack.queue_url,
        "TriggerDeadLetterQueueUrl": dlq_url or stack.dlq_url,
    }
    session = boto3.session.Session()
    return Target("hardening", str(session.region_name), outputs, session=session)


def waiting(stack: Stack, max_messages: int | None = None) -> list[Any]:
    return report(stack_of(stack), load_routes(), max_messages=max_messages)


def dead_letter_one_upload(stack: Stack) -> None:
    """An upload SageMaker refused for all of its retries: SQS moved it to the dead-letter queue."""
    stack.rule = lambda key, attempt: stack.reply(400, "ResourceLimitExceeded", "limit of 20")
    stack.upload(KEY)
    stack.deliver()
    stack.rule = lambda key, attempt: None


def test_an_upload_refused_for_24_hours_is_reported_runnable_and_left_in_place(stack: Stack) -> None:
    # Given an upload SQS moved to the dead-letter queue after its retries
    dead_letter_one_upload(stack)

    # When the report runs
    rows = waiting(stack)

    # Then it names the upload, says it would run, and where its snapshot would be
    (row,) = rows
    assert (row.verdict, row.bucket, row.key) == ("runnable", BUCKET, KEY)
    assert "upload deferred" in row.reason
    assert str(row.input_url).startswith(f"s3://{BUCKET}/snapshot/")
    assert row.sent_at.startswith("20")
    # And the message is still there, visible at once (the report moved and deleted nothing)
    assert len(stack.dlq_bodies()) == 1
    assert len(waiting(stack)) == 1

    # When the operator redrives it (SQS's own move) and it is delivered, Then it runs once
    assert stack.redrive() == 1
    stack.deliver()
    assert stack.executed_keys() == [KEY]
    assert waiting(stack) == []


@pytest.mark.parametrize(
    ("body", "verdict", "phrase"),
    [
        ("not json", "unreadable", "not an S3 notification"),
        ('{"Records": "nope"}', "unreadable", "not an S3 notification"),
        (
            json.dumps(
                {
                    "Records": [
                        {
                            "eventSource": "aws:s3",
                            "eventName": "ObjectCreated:Put",
                            "s3": {
                                "bucket": {"name": BUCKET},
                                "object": {"key": "raw/../x.csv", "eTag": "e"},
                            },
                        }
                    ]
                }
            ),
            "skip",
            "unsafe key",
        ),
        (json.dumps({"Event": "s3:TestEvent", "Bucket": BUCKET}), "skip", "s3:TestEvent"),
    ],
)
def test_what_can_never_run_is_reported_with_why(stack: Stack, body: str, verdict: str, phrase: str) -> None:
    # Given a message in the dead-letter queue the trigger cannot run
    boto3.client("sqs").send_message(QueueUrl=stack.dlq_url, MessageBody=body)

    # When the report runs, Then it says so, and why
    (row,) = waiting(stack)
    assert row.verdict == verdict
    assert phrase in row.reason
    assert verdict in render([row])


def test_max_bounds_how_many_messages_are_read(stack: Stack) -> None:
    sqs = boto3.client("sqs")
    for i in range(5):
        sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=f"junk {i}")
    assert len(waiting(stack, max_messages=2)) == 2
    assert len(waiting(stack)) == 5


def test_a_missing_queue_is_a_clear_error(stack: Stack) -> None:
    url = stack.dlq_url.rsplit("/", 1)[0] + "/no-such-queue"
    with pytest.raises(OpsError, match="reading the dead-letter queue"):
        report(stack_of(stack, url), load_routes(), max_messages=None)


def test_the_command_prints_the_report_and_exits_1_when_something_waits(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one upload in the dead-letter queue
    dead_letter_one_upload(stack)

    # When `s3sm redrive` runs on the stack (with and without --json)
    def run(*args: str) -> tuple[int, str]:
        code = cli.cmd_redrive(stack_of(stack), cli.parser().parse_args(["redrive", *args]))
        return code, capsys.readouterr().out

    (code, text), (json_code, as_json) = run(), run("--json")

    # Then it prints the summary and the row, and exits 1 (something waits, nothing moved)
    assert code == 1
    assert "1 waiting in the dead-letter queue: 1 runnable" in text
    assert f"s3://{BUCKET}/{KEY}" in text
    assert "`.venv/bin/s3sm redrive --move` sends them back" in text
    assert json_code == 1
    assert [row["key"] for row in json.loads(as_json)["waiting"]] == [KEY]

    # And with the queue empty (redriven and run) it exits 0
    stack.redrive()
    stack.deliver()
    assert run()[0] == 0
