"""The dead-letter report (``python -m redrive``): what waits in the dead-letter queue and why, untouched.

Redrive itself is SQS's (StartMessageMoveTask, which moto lacks: ``stack.redrive()`` does what it does).
The report runs against the emulator's SQS, on messages that got there the real way (the upload queue's
redrive policy after maxReceiveCount failed deliveries) and on messages placed there by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from trigger.config import Config, TriggerMode, shipped_routes

from contract.routes import parse
from redrive import ReportError, deployed_config, render, waiting
from redrive.__main__ import parse_args, settings
from redrive.report import VISIBILITY_TIMEOUT, WAIT_SECONDS
from tests.support.hardening import BUCKET, Stack

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


# -- reading the queue, with SQS stubbed (botocore Stubber, no network) ------------------------------

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


def test_the_verdicts_follow_the_deployed_triggers_settings() -> None:
    # Given a marker-mode stack with its own raw prefix, and its marker's notification waiting
    lam = offline("lambda")
    stub = Stubber(lam)
    variables = {"PIPELINE_NAME": "etl", "TRIGGER_MODE": "marker", "MARKER_NAME": "_DONE"}
    stub.add_response(
        "get_function_configuration",
        {"FunctionName": "stack-TriggerFunction-x", "Environment": {"Variables": variables}},
        expected_params={"FunctionName": "stack-TriggerFunction-x"},
    )
    with stub:
        config = deployed_config(lam, "stack-TriggerFunction-x", parse({"routes": [{"prefix": "landing/"}]}))
    reading = Reading()
    reading.receive(message(1, key="landing/batch/_DONE"))
    reading.receive()
    reading.visible(0)
    reading.release("h1")

    # When the report judges it with the deployed settings
    with reading.stub:
        (row,) = waiting(QUEUE, sqs=reading.sqs, config=config)

    # Then it is runnable (the operator's defaults, object mode under raw/, would call it a skip)
    assert (config.mode, config.routes.prefixes(), config.marker_name) == (
        TriggerMode.MARKER,
        ["landing/"],
        "_DONE",
    )
    assert row.verdict == "runnable", row.reason
    digest = hashlib.sha256(b"landing/batch").hexdigest()[:32]  # the folder's snapshot: its digest
    assert str(row.input_url).startswith(f"s3://{BUCKET}/snapshot/{digest}/")


def test_an_unreadable_function_configuration_is_a_clear_error() -> None:
    lam = offline("lambda")
    stub = Stubber(lam)
    stub.add_client_error("get_function_configuration", "ResourceNotFoundException", "no such function", 404)
    with stub, pytest.raises(ReportError, match="cannot read the trigger function 'gone'"):
        deployed_config(lam, "gone", shipped_routes())


def test_the_command_flags_set_the_triggers_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given no trigger settings in the environment, When the flags name them
    for name in ("TRIGGER_MODE", "ROUTES_FILE", "MARKER_NAME"):
        monkeypatch.delenv(name, raising=False)
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - prefix: in/\n", encoding="utf-8")
    args = parse_args(
        ["--queue-url", QUEUE, "--mode", "marker", "--routes", str(routes), "--marker-name", "_OK"]
    )

    # Then the report judges with them
    config = settings(args, session=None)
    assert (config.mode, config.routes.prefixes(), config.marker_name) == (TriggerMode.MARKER, ["in/"], "_OK")
