"""The trigger's orchestration (trigger.start) on its own: every AWS call stubbed with botocore's Stubber
(its expected parameters checked), the log lines read as CloudWatch would get them (Powertools JSON).

What a user relies on: a routed upload is snapshotted, then started once; anything else is skipped with
its reason in the log and the result; an upload that must wait is named, and its queue message is
hidden for the backoff (or for no time, when SageMaker refused it for good).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.stub import ANY, Stubber
from trigger import backoff, snapshot
from trigger.config import Config
from trigger.errors import Rejected, StartFailed, Transient
from trigger.events import normalise
from trigger.start import START_SECONDS, Clients, Run, is_queue_batch

Event = Callable[[str], dict[str, Any]]
PIPELINE = "s3-sagemaker-trigger"
BUCKET = "example-data-bucket"
ENDPOINT = "https://sqs.us-east-1.amazonaws.com"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:s3-sagemaker-trigger-UploadQueue-Q3m9xK2LpT7v"
QUEUE_URL = f"{ENDPOINT}/123456789012/s3-sagemaker-trigger-UploadQueue-Q3m9xK2LpT7v"
EXECUTION = f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{PIPELINE}/execution/e1"
KEY, VERSION, SEQUENCER = (
    "raw/coil2000/Caravan.csv",
    "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    "0055AED6DCD90281E5",
)
SNAPSHOT = f"snapshot/{hashlib.sha256(KEY.encode()).hexdigest()[:32]}/{SEQUENCER}/Caravan.csv"

LOG = io.StringIO()
LOGGER = Logger(service="trigger-start-test", logger_handler=logging.StreamHandler(LOG))


@dataclass
class Aws:
    """The three clients, stubbed; each call must be expected, with its parameters."""

    s3: Stubber
    sagemaker: Stubber
    sqs: Stubber

    def clients(self) -> Clients:
        return Clients(
            s3=lambda: self.s3.client, sagemaker=lambda: self.sagemaker.client, sqs=lambda: self.sqs.client
        )

    def copies(self) -> None:
        self.s3.add_response(
            "copy_object",
            {"CopyObjectResult": {"ETag": '"e"'}},
            {
                "Bucket": BUCKET,
                "Key": SNAPSHOT,
                "CopySource": {"Bucket": BUCKET, "Key": KEY, "VersionId": VERSION},
                "TaggingDirective": "REPLACE",
            },
        )

    def starts(self) -> None:
        self.sagemaker.add_response(
            "start_pipeline_execution",
            {"PipelineExecutionArn": EXECUTION},
            {
                "PipelineName": PIPELINE,
                "PipelineExecutionDisplayName": ANY,
                "PipelineExecutionDescription": ANY,
                "PipelineParameters": [
                    {"Name": "InputDataUrl", "Value": f"s3://{BUCKET}/{SNAPSHOT}"},
                    {
                        "Name": "OutputDataUrl",
                        "Value": f"s3://{BUCKET}/clean/coil2000/Caravan.csv/{SEQUENCER}/",
                    },
                    {"Name": "ProcessingVolumeSizeInGB", "Value": "30"},
                ],
                "ClientRequestToken": ANY,
            },
        )

    def refuses_start(self, code: str) -> None:
        self.sagemaker.add_client_error("start_pipeline_execution", code, "no", 400)

    def hides(self, wait: int, receipt_handle: str) -> None:
        self.sqs.add_response(
            "change_message_visibility",
            {},
            {"QueueUrl": QUEUE_URL, "ReceiptHandle": receipt_handle, "VisibilityTimeout": wait},
        )

    def done(self) -> None:
        for stub in (self.s3, self.sagemaker, self.sqs):
            stub.assert_no_pending_responses()


@pytest.fixture
def aws() -> Iterator[Aws]:
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - a placeholder: a stubbed client sends nothing
        region_name="us-east-1",
    )
    stubs = Aws(*(Stubber(session.client(name)) for name in ("s3", "sagemaker", "sqs")))
    for stub in (stubs.s3, stubs.sagemaker, stubs.sqs):
        stub.activate()
    yield stubs
    for stub in (stubs.s3, stubs.sagemaker, stubs.sqs):
        stub.deactivate()


@pytest.fixture
def logs() -> Callable[[], list[dict[str, Any]]]:
    """The JSON log lines written since the test began."""
    LOG.seek(0)
    LOG.truncate()
    return lambda: [json.loads(line) for line in LOG.getvalue().splitlines()]


def run(aws: Aws, budget: snapshot.Budget | None = None) -> Run:
    return Run(Config(PIPELINE), aws.clients(), LOGGER, budget)


def queue_message(load_event: Event, receives: int = 1) -> SQSRecord:
    """The upload queue's message announcing the s3-put sample's upload, at its ``receives``-th receive."""
    notification = load_event("s3-put.json")
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    record["body"] = json.dumps(notification)
    record["eventSourceARN"] = QUEUE_ARN
    record["attributes"]["ApproximateReceiveCount"] = str(receives)
    return SQSRecord(record)


def test_a_routed_upload_is_snapshotted_then_started_once(
    aws: Aws, load_event: Event, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given an upload under raw/, announced twice in one event (S3 may deliver a notification twice)
    event = load_event("s3-put.json")
    event["Records"] *= 2
    aws.copies()
    aws.starts()

    # When the run handles the event
    result = run(aws).every(normalise(event))

    # Then one snapshot and one start; the second record is a skip saying it is a duplicate
    aws.done()
    output = f"s3://{BUCKET}/clean/coil2000/Caravan.csv/{SEQUENCER}/"
    assert result == {
        "started": [
            {
                "key": KEY,
                "inputDataUrl": f"s3://{BUCKET}/{SNAPSHOT}",
                "outputDataUrl": output,
                "executionArn": EXECUTION,
            }
        ],
        "skipped": [{"key": KEY, "reason": "duplicate of an earlier record in this event"}],
    }
    started = next(line for line in logs() if line["message"] == "pipeline execution started")
    assert (started["key"], started["bucket"], started["execution_arn"]) == (KEY, BUCKET, EXECUTION)
    skipped = next(line for line in logs() if line["message"] == "record skipped")
    assert "execution_arn" not in skipped  # one upload's keys do not leak into the next line


def test_an_upload_outside_the_routes_is_a_logged_skip_with_no_aws_call(
    aws: Aws, load_event: Event, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given an upload outside raw/ (the only route)
    event = load_event("s3-put.json")
    event["Records"][0]["s3"]["object"]["key"] = "incoming/Caravan.csv"

    # When the run handles it
    result = run(aws).every(normalise(event))

    # Then nothing is copied or started, and the skip says why, in the result and in the log
    aws.done()
    [skip] = result["skipped"]
    assert result["started"] == []
    assert skip["key"] == "incoming/Caravan.csv"
    assert "raw/" in skip["reason"]
    [line] = [line for line in logs() if line["message"] == "record skipped"]
    assert (line["key"], line["bucket"], line["reason"]) == ("incoming/Caravan.csv", BUCKET, skip["reason"])
    assert line["level"] == "INFO"


def test_a_throttled_start_is_named_after_every_record_was_handled(
    aws: Aws, load_event: Event, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given SageMaker throttling the start, and a second record outside the routes after it
    event = load_event("s3-put.json")
    other = copy.deepcopy(event["Records"][0])
    other["s3"]["object"]["key"] = "elsewhere/x.csv"
    event["Records"].append(other)
    aws.copies()
    aws.refuses_start("ThrottlingException")

    # When the run handles the event
    with pytest.raises(StartFailed) as failed:
        run(aws).every(normalise(event))

    # Then the throttled upload is named to be retried, the other record was still handled (skipped)
    aws.done()
    assert KEY in str(failed.value)
    [deferred] = [line for line in logs() if line["message"] == "upload deferred"]
    assert deferred["key"] == KEY
    assert "will retry" in deferred["reason"]
    assert [line["key"] for line in logs() if line["message"] == "record skipped"] == ["elsewhere/x.csv"]


def test_a_queue_message_that_must_wait_is_hidden_for_its_backoff(
    aws: Aws, load_event: Event, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given the third delivery of a message whose start SageMaker throttles (jitter at its top)
    monkeypatch.setattr(backoff.random, "uniform", lambda low, high: high)
    message = queue_message(load_event, receives=3)
    config = Config(PIPELINE)
    wait = backoff.delay(3, config.backoff_base_seconds, config.backoff_cap_seconds)
    aws.s3.add_client_error("head_object", "404", "Not Found", 404, {"Bucket": BUCKET, "Key": SNAPSHOT})
    aws.copies()
    aws.refuses_start("ThrottlingException")
    aws.hides(wait, message.receipt_handle)

    # When the run handles the message
    with pytest.raises(Transient):
        run(aws).message(message)

    # Then its next delivery is pushed out by the backoff of its receive count, on the client's endpoint
    aws.done()
    [postponed] = [line for line in logs() if line["message"] == "message postponed"]
    assert (postponed["receive_count"], postponed["visibility_timeout"]) == (3, wait)


def test_a_queue_message_sagemaker_refuses_for_good_is_not_held_back(
    aws: Aws, load_event: Event, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given a message whose start SageMaker refuses (the role may not start the pipeline)
    message = queue_message(load_event)
    aws.copies()
    aws.refuses_start("AccessDeniedException")
    aws.hides(0, message.receipt_handle)

    # When the run handles it
    with pytest.raises(Rejected):
        run(aws).message(message)

    # Then it is visible again at once (the redrive policy dead-letters it), and the log says rejected
    aws.done()
    [rejected] = [line for line in logs() if line["message"] == "upload rejected"]
    assert rejected["level"] == "WARNING"
    assert "dead-letter queue" in rejected["reason"]


def test_a_malformed_queue_message_is_an_unprocessable_skip_not_a_wait(
    aws: Aws, load_event: Event, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given a queue message whose body is not JSON
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    record["body"] = "{not json"

    # When the run handles it
    work = run(aws)
    work.message(SQSRecord(record))

    # Then it is done with (not postponed): a WARNING skip, counted
    aws.done()
    [line] = [line for line in logs() if line["message"] == "record skipped"]
    assert line["level"] == "WARNING"
    assert line["unprocessable"] is True
    assert work.counts() == {"started": 0, "skipped": 1, "failed": 0}


def test_a_start_that_would_not_fit_in_the_time_left_waits_for_the_next_invocation(
    aws: Aws, load_event: Event
) -> None:
    # Given an invocation with less time left after the copy than a start is budgeted
    left = iter([300.0, START_SECONDS])
    budget = snapshot.Budget(lambda: next(left), total=300.0)
    aws.copies()

    # When the run handles the upload
    with pytest.raises(StartFailed) as failed:
        run(aws, budget).every(normalise(load_event("s3-put.json")))

    # Then nothing is started (the snapshot is kept for the retry), and the upload is named
    aws.done()
    assert KEY in str(failed.value)


def test_only_a_batch_of_sqs_messages_is_a_queue_batch(load_event: Event) -> None:
    # Given the upload queue's batch, an S3 notification, and SQS-shaped records without message IDs
    batch = load_event("sqs-upload-batch.json")
    bare = copy.deepcopy(batch)
    for record in bare["Records"]:
        del record["messageId"]

    # Then only the first is handled as a batch (with partial failures)
    assert is_queue_batch(batch)
    assert not is_queue_batch(load_event("s3-put.json"))
    assert not is_queue_batch(bare)
    assert not is_queue_batch({"Records": []})
