"""The redrive command: what it reads from the dead-letter queue, what it replays, deletes and reports.

Message formats are checked without the emulator; everything else runs the real trigger against the
emulator's SageMaker and SQS, in-process (``--local``) or through a Lambda client whose Invoke runs the
handler and answers as Lambda does (the emulator cannot run functions without Docker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from redrive.messages import DeadLetter, Unreadable, read
from redrive.replay import via_lambda
from redrive.run import RedriveError, redrive

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "example-data-bucket"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:TriggerFunction"


def s3_event(encoded_key: str) -> dict[str, Any]:
    obj = {"key": encoded_key, "size": 10, "eTag": "e" * 32, "versionId": "v1", "sequencer": "0A"}
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": obj},
    }
    return {"Records": [record]}


def lambda_record(
    event: dict[str, Any], error: str = "StartFailed", message: str = "it failed"
) -> dict[str, Any]:
    """An on-failure invocation record, as Lambda documents it (and sends it to SQS)."""
    return {
        "version": "1.0",
        "timestamp": "2026-11-26T12:03:00.000Z",
        "requestContext": {
            "requestId": "c2a6f2ae-7dbb-4d22-8782-d0485c9877e2",
            "functionArn": f"{FUNCTION}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": message, "errorType": error, "stackTrace": []},
    }


def sqs_message(body: str, **attributes: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": body,
        "Attributes": {"SentTimestamp": "1795694580000"},
    }
    if attributes:
        message["MessageAttributes"] = {
            k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
        }
    return message


# -- what a message holds (no emulator) ----------------------------------------------------------------


def test_a_lambda_failure_record_yields_the_original_event_and_why_it_failed() -> None:
    # Given Lambda's on-failure record of an S3 event whose key has a space and a plus
    event = s3_event("raw/my+data/a%2Bb.csv")
    record = lambda_record(event, "StartFailed", "StartPipelineExecution failed for 1 object: ...")

    # When the redrive reads it
    item = read(sqs_message(json.dumps(record)))

    # Then it replays the original event, and knows its keys, its history and when it was dead-lettered
    assert isinstance(item, DeadLetter)
    assert item.event == event
    assert item.keys == ("raw/my data/a+b.csv",)
    assert item.origin == "Lambda on-failure record (RetriesExhausted, 3 attempts)"
    assert item.error == "StartFailed: StartPipelineExecution failed for 1 object: ..."
    assert item.sent_at == datetime(2026, 11, 26, 12, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "attributes", "keys", "error"),
    [
        # S3 -> SQS directly: the notification itself
        (s3_event("raw/a.csv"), {}, ("raw/a.csv",), None),
        # a Lambda dead-letter queue (DeadLetterConfig): the event, the error in a message attribute
        (s3_event("raw/b.csv"), {"ErrorMessage": "Task timed out"}, ("raw/b.csv",), "Task timed out"),
        # an EventBridge event (key not URL-encoded)
        (
            {"source": "aws.s3", "detail-type": "Object Created",
             "detail": {"bucket": {"name": BUCKET}, "object": {"key": "raw/c+d.csv", "etag": "e"}}},
            {}, ("raw/c+d.csv",), None,
        ),
    ],
)  # fmt: skip
def test_a_bare_event_is_replayed_as_it_is(
    body: dict[str, Any], attributes: dict[str, str], keys: tuple[str, ...], error: str | None
) -> None:
    item = read(sqs_message(json.dumps(body), **attributes))
    assert isinstance(item, DeadLetter)
    assert (item.event, item.keys, item.origin, item.error) == (body, keys, "event", error)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "body is not JSON (Expecting property name enclosed in double quotes"),
        ("[1, 2]", "body is a JSON list, not an invocation record or an event"),
        (
            json.dumps({**lambda_record({}), "requestPayload": None}),
            "without the original event (requestPayload)",
        ),
        (json.dumps({"requestContext": {"condition": "RetriesExhausted"}}), "without the original event"),
        (json.dumps({"hello": "world"}), "not an event the trigger accepts: not an S3 notification"),
        (json.dumps(lambda_record({"RequestType": "Create"})), "not an event the trigger accepts"),
    ],
)
def test_an_unreadable_message_is_named_with_its_reason(body: str, reason: str) -> None:
    item = read(sqs_message(body))
    assert isinstance(item, Unreadable)
    assert reason in item.reason


# -- replaying, against the emulator -------------------------------------------------------------------


def test_replaying_a_record_whose_execution_already_started_starts_nothing_new(stack: Any) -> None:
    # Given an upload whose execution started, yet whose event still reached the dead-letter queue
    # (say the function timed out after the start), twice
    event = stack.event("raw/coil2000/Caravan.csv")
    arn = stack.invoke(event)["started"][0]["executionArn"]
    stack.send_to_dlq(
        json.dumps(lambda_record(event, "Sandbox.Timedout", "Task timed out after 30.00 seconds"))
    )
    stack.send_to_dlq(json.dumps(lambda_record(event)))

    # When the operator redrives the queue
    report = stack.redrive()

    # Then the replays start nothing: the trigger's token returns the running execution, reported as such
    assert stack.executions() == {arn: f"s3://{BUCKET}/raw/coil2000/Caravan.csv"}
    assert [(s.execution_arn, s.new) for s in report.started] == [(arn, False), (arn, False)]
    assert (report.read, report.replayed, report.deleted, report.failed) == (2, 2, 2, [])
    assert "started          0 new executions" in report.render()
    assert stack.dlq_bodies() == []


def test_two_messages_about_one_upload_start_it_once(stack: Any) -> None:
    # Given the same failed event dead-lettered twice (before it ever started)
    stack.delete_pipeline()
    event = stack.event("raw/twice.csv")
    stack.lambda_async(event)
    stack.lambda_async(event)
    stack.create_pipeline()

    # When redriven, Then it runs once: the first message starts it, the second finds it running
    report = stack.redrive()
    assert [s.new for s in report.started] == [True, False]
    assert len(stack.executions()) == 1
    assert report.deleted == 2


def test_unreadable_messages_stay_in_the_queue_and_fail_the_run(stack: Any) -> None:
    # Given a good record between two messages the redrive cannot replay
    stack.send_to_dlq("{oops")
    stack.send_to_dlq(json.dumps(lambda_record(stack.event("raw/good.csv"))))
    stack.send_to_dlq(json.dumps({"RequestType": "Delete"}))

    # When redriven
    report = stack.redrive()

    # Then the good one ran and was deleted; the two bad ones are reported and stay (visible again at once)
    assert [s.key for s in report.started] == ["raw/good.csv"]
    assert report.deleted == 1
    assert not report.ok
    reasons = sorted(f.reason for f in report.failed)
    assert reasons[0].startswith("body is not JSON")
    assert reasons[1].startswith("not an event the trigger accepts")
    assert sorted(stack.dlq_bodies()) == sorted(["{oops", json.dumps({"RequestType": "Delete"})])


def test_a_replay_that_fails_again_keeps_its_message_with_both_reasons(stack: Any) -> None:
    # Given a dead-lettered upload whose pipeline is still missing
    stack.delete_pipeline()
    stack.lambda_async(stack.event("raw/a.csv"))

    # When redriven
    report = stack.redrive()

    # Then the message stays, and the report gives the new failure and the one the record carries
    (failure,) = report.failed
    assert failure.keys == ("raw/a.csv",)
    assert failure.reason.startswith("StartFailed: StartPipelineExecution failed for 1 object: raw/a.csv: ")
    assert "ResourceNotFound" in failure.reason
    assert failure.recorded_error is not None
    assert failure.recorded_error.startswith("StartFailed: ")
    assert (report.replayed, report.deleted) == (1, 0)
    assert len(stack.dlq_bodies()) == 1


def test_max_bounds_how_many_messages_are_handled(stack: Any) -> None:
    for name in ("a", "b", "c"):
        stack.send_to_dlq(json.dumps(stack.event(f"raw/{name}.csv")))

    report = stack.redrive(max_messages=2)

    assert (report.read, report.replayed, report.deleted) == (2, 2, 2)
    assert len(stack.executions()) == 2
    assert len(stack.dlq_bodies()) == 1


def test_a_dry_run_lists_what_it_would_replay_and_changes_nothing(stack: Any) -> None:
    stack.send_to_dlq(json.dumps(lambda_record(stack.event("raw/x y.csv"), "StartFailed", "boom")))
    stack.send_to_dlq(json.dumps(stack.event("raw/z.csv")), ErrorMessage="Task timed out")

    report = stack.redrive(dry_run=True)

    assert sorted((p.keys, p.recorded_error) for p in report.pending) == [
        (("raw/x y.csv",), "StartFailed: boom"),
        (("raw/z.csv",), "Task timed out"),
    ]
    assert (report.replayed, report.deleted, report.started) == (0, 0, [])
    assert stack.executions() == {}
    assert len(stack.dlq_bodies()) == 2  # and visible again at once
    assert "dry run: nothing replayed, nothing deleted" in report.render()


def test_a_missing_queue_is_a_clear_error(stack: Any) -> None:
    missing = stack.dlq_url.rsplit("/", 1)[0] + "/no-such-queue"
    with pytest.raises(RedriveError, match=r"queue .*/no-such-queue does not exist"):
        stack.redrive(missing)


# -- through the deployed function (lambda:Invoke) -----------------------------------------------------


def test_replay_through_the_function_deletes_what_started_and_keeps_what_failed(stack: Any) -> None:
    # Given two dead-lettered uploads, SageMaker refusing one of them
    stack.send_to_dlq(json.dumps(lambda_record(stack.event("raw/ok.csv"))))
    stack.send_to_dlq(json.dumps(lambda_record(stack.event("raw/refused.csv"))))
    stack.rule = lambda url, attempt: (
        stack.reply(400, "ValidationException", "no") if url.endswith("/refused.csv") else None
    )

    # When redriven through the function (synchronous lambda:Invoke)
    replay = via_lambda(stack.lambda_client(), "TriggerFunction")
    report = redrive(
        stack.dlq_url, replay, sqs=boto3.client("sqs"), sagemaker=boto3.client("sagemaker"), wait_seconds=0
    )

    # Then the function error fails its message only, with the function's errorType and errorMessage
    assert [(s.key, s.new) for s in report.started] == [("raw/ok.csv", True)]
    (failure,) = report.failed
    assert failure.reason.startswith(
        "StartFailed: StartPipelineExecution failed for 1 object: "
        "raw/refused.csv: An error occurred (ValidationException)"
    )
    assert report.deleted == 1
    assert [
        json.loads(b)["requestPayload"]["Records"][0]["s3"]["object"]["key"] for b in stack.dlq_bodies()
    ] == ["raw/refused.csv"]


def test_a_function_that_does_not_exist_fails_each_message_clearly(stack: Any) -> None:
    stack.send_to_dlq(json.dumps(lambda_record(stack.event("raw/a.csv"))))

    replay = via_lambda(stack.lambda_client(deployed=False), "TriggerFunction")
    report = redrive(stack.dlq_url, replay, sqs=boto3.client("sqs"), wait_seconds=0)

    (failure,) = report.failed
    assert failure.reason.startswith(
        "lambda:Invoke of TriggerFunction failed: An error occurred (ResourceNotFoundException)"
    )
    assert "Function not found" in failure.reason
    assert len(stack.dlq_bodies()) == 1


# -- the command line ----------------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redrive", *args],
        cwd=ROOT,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_prints_its_report_and_exits_non_zero_when_a_message_failed(stack: Any) -> None:
    # Given one good dead-lettered upload and one message that is not JSON
    stack.send_to_dlq(json.dumps(lambda_record(stack.event("raw/cli.csv"))))
    stack.send_to_dlq("not json")

    # When the operator runs the command against the queue
    done = run_cli("--queue-url", stack.dlq_url, "--local", "--wait-seconds", "0")

    # Then stdout holds the report only (the trigger's JSON logs go to stderr) and the exit status is 1
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    target = f"the trigger handler in-process, pipeline {stack.pipeline_name}"
    assert lines[0] == f"Redrive of {stack.dlq_url} (replayed through {target})"
    assert "  read             2 messages" in lines
    assert "  started          1 new execution" in lines
    assert "  failed           1 message (left in the queue)" in lines
    assert "  deleted          1 message" in lines
    assert not any(line.startswith("{") for line in lines)
    assert '"message":"pipeline execution started"' in done.stderr
    assert list(stack.executions().values()) == [f"s3://{BUCKET}/raw/cli.csv"]

    # When the bad message is removed by hand and the command runs again (JSON report), Then exit 0
    sqs = boto3.client("sqs")
    (msg,) = sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=stack.dlq_url, ReceiptHandle=msg["ReceiptHandle"])
    again = run_cli("--queue-url", stack.dlq_url, "--local", "--wait-seconds", "0", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["read"] == 0


def test_the_command_stops_with_a_clear_error_when_it_cannot_run(stack: Any) -> None:
    missing = stack.dlq_url.rsplit("/", 1)[0] + "/no-such-queue"
    done = run_cli("--queue-url", missing, "--local")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip() == f"redrive: error: queue {missing} does not exist"

    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_NAME"}
    done = run_cli("--queue-url", stack.dlq_url, "--local", env=env)
    assert done.returncode == 2
    assert "redrive: error: invalid trigger configuration: PIPELINE_NAME is required" in done.stderr

    done = run_cli("--queue-url", stack.dlq_url)
    assert done.returncode == 2
    assert "one of --function-name or --local is required" in done.stderr
