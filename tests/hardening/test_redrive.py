"""The dead-letter report (``python -m redrive``): what waits in the dead-letter queue and why, untouched.

Redrive itself is SQS's (StartMessageMoveTask, which moto lacks: ``stack.redrive()`` does what it does).
The report runs against the emulator's SQS, on messages that got there the real way (the upload queue's
redrive policy after maxReceiveCount failed deliveries) and on messages placed there by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from redrive import ReportError, render, waiting
from tests.hardening.conftest import BUCKET, Stack

ROOT = Path(__file__).resolve().parents[2]
KEY = "raw/coil2000/Caravan.csv"


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
    rows = waiting(stack.dlq_url, sqs=boto3.client("sqs"))

    # Then it names the upload, says it would run, and where its snapshot would be
    (row,) = rows
    assert (row.verdict, row.bucket, row.key) == ("runnable", BUCKET, KEY)
    assert "upload deferred" in row.reason
    assert str(row.input_url).startswith(f"s3://{BUCKET}/snapshot/")
    assert row.sent_at.startswith("20")
    # And the message is still there, visible at once (the report moved and deleted nothing)
    assert len(stack.dlq_bodies()) == 1
    assert len(waiting(stack.dlq_url, sqs=boto3.client("sqs"))) == 1

    # When the operator redrives it (SQS's own move) and it is delivered, Then it runs once
    assert stack.redrive() == 1
    stack.deliver()
    assert stack.executed_keys() == [KEY]
    assert waiting(stack.dlq_url, sqs=boto3.client("sqs")) == []


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
    (row,) = waiting(stack.dlq_url, sqs=boto3.client("sqs"))
    assert row.verdict == verdict
    assert phrase in row.reason
    assert verdict in render([row])


def test_max_bounds_how_many_messages_are_read(stack: Stack) -> None:
    sqs = boto3.client("sqs")
    for i in range(5):
        sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=f"junk {i}")
    assert len(waiting(stack.dlq_url, sqs=sqs, max_messages=2)) == 2
    assert len(waiting(stack.dlq_url, sqs=sqs)) == 5


def test_a_missing_queue_is_a_clear_error(stack: Stack) -> None:
    url = stack.dlq_url.rsplit("/", 1)[0] + "/no-such-queue"
    with pytest.raises(ReportError, match="cannot read the dead-letter queue"):
        waiting(url, sqs=boto3.client("sqs"))


def test_the_command_prints_the_report_and_exits_1_when_something_waits(stack: Stack) -> None:
    # Given one upload in the dead-letter queue
    dead_letter_one_upload(stack)

    # When the command runs (as a user would, against the same endpoint)
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "redrive", "--queue-url", stack.dlq_url, *args],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            cwd=ROOT,
            check=False,
        )

    text, as_json = run(), run("--json")

    # Then it prints the summary and the row, and exits 1 (something waits)
    assert text.returncode == 1, text.stderr
    assert "1 waiting in the dead-letter queue: 1 runnable" in text.stdout
    assert f"s3://{BUCKET}/{KEY}" in text.stdout
    assert as_json.returncode == 1
    assert [row["key"] for row in json.loads(as_json.stdout)] == [KEY]

    # And with the queue empty (redriven and run) it exits 0; a missing queue exits 2 with a clear error
    stack.redrive()
    stack.deliver()
    assert run().returncode == 0
    missing = subprocess.run(
        [sys.executable, "-m", "redrive", "--queue-url", stack.dlq_url + "-missing"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=ROOT,
        check=False,
    )
    assert missing.returncode == 2
    assert "redrive: error: cannot read the dead-letter queue" in missing.stderr
