"""The upload queue's batches, with every AWS call stubbed (botocore Stubber): no emulator, no network.

What a user relies on: each message of a batch is snapshotted and started once; a refusal that passes
fails only its own message and pushes its next delivery out by the backoff; a message that can never
run is a logged skip (deleted, not retried); a duplicate delivery starts nothing twice.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.stub import ANY, Stubber
from trigger import backoff, handler
from trigger import config as trigger_config
from trigger.errors import ConfigError

from tests.support.lambda_context import LambdaContext
from tests.support.project import trigger_env

Event = Callable[[str], dict[str, Any]]
BUCKET = "example-data-bucket"
QUEUE_URL = "http://127.0.0.1:9/123456789012/s3-sagemaker-trigger-UploadQueue-Q3m9xK2LpT7v"
EXECUTION = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/s3-sagemaker-trigger/execution/"


@dataclass
class Stubs:
    s3: Stubber
    sagemaker: Stubber
    sqs: Stubber

    def copy(self, key: str, version: str, snapshot: str, *, redelivered: bool = False, **extra: str) -> None:
        """Expect the snapshot copy of ``key``'s version (``extra``: more parameters it must carry)."""
        if redelivered:  # a redelivery first looks for the snapshot an earlier attempt may have made
            self.s3.add_client_error(
                "head_object", "404", "Not Found", 404, expected_params={"Bucket": BUCKET, "Key": snapshot}
            )
        self.s3.add_response(
            "copy_object",
            {"CopyObjectResult": {"ETag": '"e"'}},
            expected_params={
                "Bucket": BUCKET,
                "Key": snapshot,
                "CopySource": {"Bucket": BUCKET, "Key": key, "VersionId": version},
                "TaggingDirective": "REPLACE",
                **extra,
            },
        )

    def start(self, snapshot: str, output: str, name: str = "x", volume_gb: int = 30) -> None:
        self.sagemaker.add_response(
            "start_pipeline_execution",
            {"PipelineExecutionArn": EXECUTION + name},
            expected_params={
                "PipelineName": "s3-sagemaker-trigger",
                "PipelineExecutionDisplayName": ANY,
                "PipelineExecutionDescription": ANY,
                "PipelineParameters": [
                    {"Name": "InputDataUrl", "Value": f"s3://{BUCKET}/{snapshot}"},
                    {"Name": "OutputDataUrl", "Value": f"s3://{BUCKET}/{output}"},
                    {"Name": "ProcessingVolumeSizeInGB", "Value": str(volume_gb)},
                ],
                "ClientRequestToken": ANY,
            },
        )

    def postpone(self, receipt_handle: str, wait: int) -> None:
        """Expect the message's next delivery pushed out by ``wait`` seconds."""
        self.sqs.add_response(
            "change_message_visibility",
            {},
            expected_params={
                "QueueUrl": QUEUE_URL,
                "ReceiptHandle": receipt_handle,
                "VisibilityTimeout": wait,
            },
        )

    def done(self) -> None:
        for stub in (self.s3, self.sagemaker, self.sqs):
            stub.assert_no_pending_responses()


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubs]:
    """Given the trigger configured from events/env.json, its three clients stubbed, jitter at its top."""
    for name, value in trigger_env().items():
        monkeypatch.setenv(name, value)
    offline = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens: an unstubbed call fails, never leaves
    }
    for name, value in offline.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(backoff.random, "uniform", lambda low, high: high)
    caches = (trigger_config.settings, handler.s3_client, handler.sagemaker_client, handler.sqs_client)
    for cached in caches:
        cached.cache_clear()
    stubbers = Stubs(
        Stubber(handler.s3_client()), Stubber(handler.sagemaker_client()), Stubber(handler.sqs_client())
    )
    for stub in (stubbers.s3, stubbers.sagemaker, stubbers.sqs):
        stub.activate()
    yield stubbers
    for stub in (stubbers.s3, stubbers.sagemaker, stubbers.sqs):
        stub.deactivate()
    for cached in caches:
        cached.cache_clear()


def invoke(event: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
    result: dict[str, Any] = handler.lambda_handler(event, context or LambdaContext())
    return result


@dataclass(frozen=True)
class RunningOut(LambdaContext):
    """A Lambda context whose clock answers the given seconds left, one per look (the last repeats)."""

    seconds_left: list[float] = field(default_factory=list)

    def get_remaining_time_in_millis(self) -> int:
        left = self.seconds_left.pop(0) if len(self.seconds_left) > 1 else self.seconds_left[0]
        return int(left * 1000)


def body(record: dict[str, Any]) -> dict[str, Any]:
    notification: dict[str, Any] = json.loads(record["body"])
    return notification


TRAIN = ("raw/batch 2026/train.csv", "Tq6lH3eXBqfGhZ4rS8oUv2wYx0aCdE1F", "00675C1B3F2A8E4D10")
TEST = ("raw/batch 2026/test.csv", "Vb7nK4fYCrgHia5sT9pVw3xZy1bDeF2G", "00675C1B3F2B1C9E27")


def snapshot_of(upload: tuple[str, str, str]) -> tuple[str, str]:
    """The upload's snapshot key (a folder named by a digest of its key, not its folders) and output."""
    key, _, sequencer = upload
    relative = key.removeprefix("raw/")
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"snapshot/{digest}/{sequencer}/{relative.rsplit('/', 1)[1]}", f"clean/{relative}/{sequencer}/"


def test_a_batch_starts_each_upload_once_and_skips_the_test_event_and_the_duplicate(
    stubs: Stubs, load_event: Event
) -> None:
    # Given the upload queue's batch: S3's test event, an upload, S3 delivering it twice, another upload
    batch = load_event("sqs-upload-batch.json")
    for upload in (TRAIN, TEST):
        snapshot, output = snapshot_of(upload)
        stubs.copy(upload[0], upload[1], snapshot, redelivered=upload is TEST)  # its 3rd receive
        stubs.start(snapshot, output)

    # When the event source mapping delivers it
    result = invoke(batch)

    # Then every message succeeded (all are deleted): two copies and two starts, nothing else
    assert result == {"batchItemFailures": []}
    stubs.done()


def test_a_quota_refusal_fails_only_its_message_and_pushes_its_next_delivery_out(
    stubs: Stubs, load_event: Event
) -> None:
    # Given a batch whose second upload (its third delivery) SageMaker refuses for the quota
    batch = load_event("sqs-upload-batch.json")
    train_snapshot, train_output = snapshot_of(TRAIN)
    test_snapshot, _ = snapshot_of(TEST)
    stubs.copy(TRAIN[0], TRAIN[1], train_snapshot)
    stubs.start(train_snapshot, train_output)
    stubs.copy(TEST[0], TEST[1], test_snapshot, redelivered=True)
    stubs.sagemaker.add_client_error(
        "start_pipeline_execution", "ResourceLimitExceeded", "limit of 20 concurrent executions", 400
    )
    # And its next delivery expected after the backoff of a third receive, at the top of its jitter
    last = batch["Records"][3]
    assert last["attributes"]["ApproximateReceiveCount"] == "3"
    wait = backoff.ceiling(3, backoff.DEFAULT_BASE_SECONDS, backoff.DEFAULT_CAP_SECONDS)
    stubs.postpone(last["receiptHandle"], wait)

    # When the batch is delivered
    result = invoke(batch)

    # Then only that message is reported failed (SQS redelivers it after 120 s); the rest are deleted
    assert wait == 120
    assert result == {"batchItemFailures": [{"itemIdentifier": last["messageId"]}]}
    stubs.done()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("ResourceNotFound", 400),  # the pipeline is not created yet (or was deleted): retried too
        ("InternalFailure", 500),
        ("ServiceUnavailable", 503),
        ("ConflictException", 409),  # not known to be final: retried, never rejected
    ],
)
def test_every_refusal_that_passes_is_retried_through_the_queue(
    stubs: Stubs, load_event: Event, code: str, status: int
) -> None:
    # Given one upload message and SageMaker answering it with a passing refusal
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    snapshot, _ = snapshot_of(TRAIN)
    stubs.copy(TRAIN[0], TRAIN[1], snapshot)
    stubs.sagemaker.add_client_error("start_pipeline_execution", code, "try later", status)
    stubs.postpone(record["receiptHandle"], 30)

    # When it is delivered the first time
    result = invoke({"Records": [record]})

    # Then it waits (30 s after a first receive) instead of being deleted or dead-lettered
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    stubs.done()


@pytest.mark.parametrize(
    ("code", "status", "why"),
    [
        ("AccessDeniedException", 400, "needs sagemaker:StartPipelineExecution on pipeline"),
        ("ValidationException", 400, "refused the request: ValidationException"),
    ],
)
def test_a_start_that_waiting_cannot_fix_goes_to_the_dead_letter_queue_within_minutes(
    stubs: Stubs, load_event: Event, code: str, status: int, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an upload message (its first receive) whose start SageMaker rejects for good
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    snapshot, _ = snapshot_of(TRAIN)
    stubs.copy(TRAIN[0], TRAIN[1], snapshot)
    stubs.sagemaker.add_client_error("start_pipeline_execution", code, "not for you", status)
    # And its next delivery expected at once (visibility 0), not after the 30 s backoff
    stubs.postpone(record["receiptHandle"], 0)

    # When it is delivered
    result = invoke({"Records": [record]})

    # Then the message fails (kept, never deleted), so the redrive policy's receive count runs out in
    # minutes and moves it to the dead-letter queue; the WARNING says why
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    stubs.done()
    (line,) = [r for r in caplog.records if r.getMessage() == "upload rejected"]
    assert line.levelname == "WARNING"
    assert why in line.__dict__["reason"]
    assert "to the dead-letter queue" in line.__dict__["reason"]


@pytest.mark.parametrize(
    ("code", "status", "why"),
    [
        (
            "NoSuchVersion",
            404,
            "is not in the bucket: never uploaded, or deleted before its snapshot was taken",
        ),
        ("NoSuchKey", 404, "is not in the bucket: never uploaded, or deleted before its snapshot was taken"),
    ],
)
def test_a_snapshot_that_can_never_be_taken_is_a_logged_skip_not_a_retry(
    stubs: Stubs, load_event: Event, code: str, status: int, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an upload whose version is gone (deleted before the copy)
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    stubs.s3.add_client_error("copy_object", code, "no", status)
    stubs.s3.add_client_error("head_object", "404", "Not Found", 404)  # an earlier attempt's snapshot?

    # When it is delivered
    result = invoke({"Records": [record]})

    # Then the message is done (no start, no retry) and the skip says why, at WARNING
    assert result == {"batchItemFailures": []}
    stubs.done()
    (skip,) = [r for r in caplog.records if r.getMessage() == "record skipped"]
    assert skip.levelname == "WARNING"
    assert why in skip.__dict__["reason"]
    # (naming the version it looked for and S3's answer, and never claiming the object once existed)
    assert f"(version Tq6lH3eXBqfGhZ4rS8oUv2wYx0aCdE1F) {why} ({code})" in skip.__dict__["reason"]
    assert "no longer exists" not in skip.__dict__["reason"]


def test_an_upload_the_trigger_may_not_read_is_kept_in_the_dead_letter_queue_not_dropped(
    stubs: Stubs, load_event: Event, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an upload the trigger's role may not read (its permissions, or a KMS key it may not use)
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    stubs.s3.add_client_error("copy_object", "AccessDenied", "Access Denied", 403)
    stubs.postpone(record["receiptHandle"], 0)  # no wait: the redrive policy moves it within minutes

    # When it is delivered
    result = invoke({"Records": [record]})

    # Then it fails at once, for the dead-letter queue, where a redrive runs it once access is fixed
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    stubs.done()
    (line,) = [r for r in caplog.records if r.getMessage() == "upload rejected"]
    assert "an SSE-KMS object also needs kms:Decrypt on its KMS key" in line.__dict__["reason"]
    assert line.__dict__["reason"].endswith("redrive it once access is fixed")


def test_a_throttled_snapshot_is_retried_through_the_queue(stubs: Stubs, load_event: Event) -> None:
    # Given S3 throttling the copy beyond botocore's own retries
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    stubs.s3.add_client_error("copy_object", "SlowDown", "Please reduce your request rate.", 503)
    stubs.postpone(record["receiptHandle"], 30)

    # When it is delivered
    result = invoke({"Records": [record]})

    # Then the upload waits for its next delivery: nothing started, nothing dropped
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    stubs.done()


def test_a_retry_reuses_the_snapshot_an_earlier_attempt_made(stubs: Stubs, load_event: Event) -> None:
    # Given a redelivery (receive 2) of an upload whose snapshot the first attempt made
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    record["attributes"]["ApproximateReceiveCount"] = "2"
    snapshot, output = snapshot_of(TRAIN)
    stubs.s3.add_response(
        "head_object", {"ContentLength": 52480}, expected_params={"Bucket": BUCKET, "Key": snapshot}
    )
    stubs.start(snapshot, output)

    # When it is delivered, Then it starts on that snapshot without copying again
    assert invoke({"Records": [record]}) == {"batchItemFailures": []}
    stubs.done()


def test_the_backoff_grows_is_capped_and_reaches_the_dead_letter_queue_after_24_hours() -> None:
    base, cap = backoff.DEFAULT_BASE_SECONDS, backoff.DEFAULT_CAP_SECONDS
    ceilings = [backoff.ceiling(n, base, cap) for n in range(1, 9)]
    assert ceilings == [30, 60, 120, 240, 480, 600, 600, 600]
    # Jitter stays within [ceiling / 2, ceiling]
    for n in range(1, 12):
        low, high = backoff.minimum(n, base, cap), backoff.ceiling(n, base, cap)
        assert backoff.delay(n, base, cap, lambda a, b: a) == low
        assert backoff.delay(n, base, cap, lambda a, b: b) == high
    receives = backoff.max_receive_count()
    assert (
        backoff.minimum_total_wait(receives, base, cap)
        >= 86400
        > backoff.minimum_total_wait(receives - 1, base, cap)
    )


def test_the_backoff_is_scaled_by_the_environment(
    stubs: Stubs, load_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the waits scaled down (as the local runtime does): base 1 s, cap 4 s
    monkeypatch.setenv("BACKOFF_BASE_SECONDS", "1")
    monkeypatch.setenv("BACKOFF_CAP_SECONDS", "4")
    trigger_config.settings.cache_clear()
    # And a ninth delivery of an upload SageMaker refuses for the quota
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    record["attributes"]["ApproximateReceiveCount"] = "9"
    snapshot, _ = snapshot_of(TRAIN)
    stubs.copy(TRAIN[0], TRAIN[1], snapshot, redelivered=True)
    stubs.sagemaker.add_client_error("start_pipeline_execution", "ResourceLimitExceeded", "limit", 400)
    stubs.postpone(record["receiptHandle"], 4)  # min(4, 1 * 2**8): the cap

    # When it is delivered, Then its next delivery is pushed out by the scaled, capped wait
    assert invoke({"Records": [record]}) == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    stubs.done()


def test_a_redelivery_copies_when_s3_hides_a_missing_snapshot_behind_a_403(
    stubs: Stubs, load_event: Event
) -> None:
    # Given a redelivery: the trigger looks for an earlier snapshot, and S3 answers 403 (its answer for a
    # missing key to a role that may not list that prefix, as the trigger's role may not list snapshot/)
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    record["attributes"]["ApproximateReceiveCount"] = "2"
    snapshot, output = snapshot_of(TRAIN)
    stubs.s3.add_client_error("head_object", "403", "Forbidden", 403)
    stubs.copy(TRAIN[0], TRAIN[1], snapshot)
    stubs.start(snapshot, output)

    # When it is delivered, Then it copies and starts (a 403 there is no reason to drop the upload)
    assert invoke({"Records": [record]}) == {"batchItemFailures": []}
    stubs.done()


def test_a_copy_that_would_not_fit_in_the_time_left_is_not_begun_and_waits_its_backoff(
    stubs: Stubs, load_event: Event
) -> None:
    # Given the batch of two uploads, and an invocation whose clock reads 300 s at its start, before
    # the first copy and before its start, then 20 s before the second upload's copy (which needs its
    # copy, the start and the batch's answer: about 30 s)
    batch = load_event("sqs-upload-batch.json")
    clock = RunningOut(seconds_left=[300, 300, 299, 20])
    train_snapshot, train_output = snapshot_of(TRAIN)
    test_snapshot, _ = snapshot_of(TEST)
    stubs.copy(TRAIN[0], TRAIN[1], train_snapshot)
    stubs.start(train_snapshot, train_output)
    # And the second upload (its third receive) expected to look for an earlier snapshot, copy nothing,
    # and wait out the backoff of a third receive
    stubs.s3.add_client_error(
        "head_object", "404", "Not Found", 404, expected_params={"Bucket": BUCKET, "Key": test_snapshot}
    )
    last = batch["Records"][3]
    stubs.postpone(last["receiptHandle"], 120)

    # When the batch is delivered
    result = invoke(batch, clock)

    # Then the first upload started, the second is reported failed with no copy begun (so the batch
    # ends in time, and a later invocation with a fresh clock takes it)
    assert result == {"batchItemFailures": [{"itemIdentifier": last["messageId"]}]}
    stubs.done()


def test_an_object_too_large_for_any_invocation_goes_to_the_dead_letter_queue_saying_so(
    stubs: Stubs, load_event: Event, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an upload of 200 GiB: a multipart copy budgeted far beyond a 300 s invocation
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    notification = body(record)
    notification["Records"][0]["s3"]["object"]["size"] = 200 * 1024**3
    record["body"] = json.dumps(notification)
    stubs.postpone(record["receiptHandle"], 0)

    # When it is delivered with a whole invocation's time left
    result = invoke({"Records": [record]})

    # Then no copy is begun; the message fails with no wait (to the dead-letter queue within minutes)
    # and the WARNING says what to change
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    stubs.done()
    (line,) = [r for r in caplog.records if r.getMessage() == "upload rejected"]
    assert "raise the trigger function's Timeout" in line.__dict__["reason"]


def test_with_a_data_key_the_snapshot_is_encrypted_with_it(
    stubs: Stubs, load_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack deployed with DataKmsKeyArn (a bucket encrypted with a customer managed key)
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    monkeypatch.setenv("DATA_KMS_KEY_ARN", key_arn)
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    snapshot, output = snapshot_of(TRAIN)
    stubs.copy(TRAIN[0], TRAIN[1], snapshot, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    stubs.start(snapshot, output)

    # When it is delivered, Then the copy is written with that key and the run starts on it
    assert invoke({"Records": [record]}) == {"batchItemFailures": []}
    stubs.done()


@pytest.mark.parametrize("cap", [backoff.MAX_VISIBILITY_TIMEOUT, backoff.MAX_CAP_SECONDS + 1])
def test_a_backoff_cap_that_sqs_would_always_refuse_is_a_configuration_error(cap: int) -> None:
    # Given a cap of SQS's whole 12 hours (or just over the documented cap): ChangeMessageVisibility counts
    # those 12 hours from the receive, and the trigger always calls it some time after that receive
    environ = {"PIPELINE_NAME": "p", "BACKOFF_CAP_SECONDS": str(cap)}

    # When the trigger reads its settings, Then it refuses the cap, naming the largest it accepts
    with pytest.raises(ConfigError, match=f"and {backoff.MAX_CAP_SECONDS}: SQS's 43200-second"):
        trigger_config.Config.from_env(environ, trigger_config.shipped_routes())


def test_the_longest_wait_the_trigger_can_ask_for_fits_sqs_limit_counted_from_the_receive() -> None:
    # Given the largest cap the configuration accepts, and a message received as long before the call as
    # Lambda allows (the batching window's 300 s maximum, then the function's 900 s maximum timeout)
    config = trigger_config.Config.from_env(
        {"PIPELINE_NAME": "p", "BACKOFF_CAP_SECONDS": str(backoff.MAX_CAP_SECONDS)},
        trigger_config.shipped_routes(),
    )
    since_receive = 300 + 900

    # When the backoff of a late receive is drawn at the top of its jitter
    wait = backoff.delay(40, config.backoff_base_seconds, config.backoff_cap_seconds, lambda low, high: high)

    # Then the message's whole hidden time since its receive stays within SQS's 12 hours
    assert wait == backoff.MAX_CAP_SECONDS
    assert since_receive + wait <= backoff.MAX_VISIBILITY_TIMEOUT
    assert since_receive <= backoff.RECEIVE_ALLOWANCE_SECONDS


# -- the processing volume (finding 1) and what is not data in a marker's folder (finding 11) -----------


def upload_message(load_event: Event, key: str, size: int | None, **fields: str) -> dict[str, Any]:
    """An upload-queue message announcing ``key`` (``size`` bytes; None: the notification gives none)."""
    record = copy.deepcopy(load_event("sqs-upload-batch.json")["Records"][1])
    notification = body(record)
    announced = notification["Records"][0]["s3"]["object"]
    announced.update({"key": key, "size": size, **fields})
    if size is None:
        del announced["size"]
    record["body"] = json.dumps(notification)
    return record


def digest(relative: str) -> str:
    """The snapshot folder of the dataset at ``relative`` under raw/: a digest of its key."""
    return hashlib.sha256(f"raw/{relative}".encode()).hexdigest()[:32]


def test_the_processing_volume_holds_the_upload_and_its_output(stubs: Stubs, load_event: Event) -> None:
    # Given a 4.5 GB upload: with the SDK's 30 GB volume its output alone could not fit (a gzip input
    # expands about five times, and the input is on the volume too)
    record = upload_message(load_event, "raw/big/policies.csv.gz", 4_500_000_000)
    snapshot, output = snapshot_of(("raw/big/policies.csv.gz", TRAIN[1], TRAIN[2]))
    stubs.copy("raw/big/policies.csv.gz", TRAIN[1], snapshot)
    # And the start expected with a volume of 11 bytes per input byte, plus 2 GB: 4.5 x 11 + 2 = 51.5 -> 52
    stubs.start(snapshot, output, volume_gb=52)

    # When it is delivered, Then it starts with that volume
    assert invoke({"Records": [record]}) == {"batchItemFailures": []}
    stubs.done()


@pytest.mark.parametrize(("size", "volume_gb"), [(3_000_000_000, 35), (52_480, 30)])
def test_an_upload_announced_without_its_size_is_measured_before_its_volume_is_chosen(
    stubs: Stubs, load_event: Event, size: int, volume_gb: int
) -> None:
    # Given a notification without the object's size (hand-made, or an older format)
    record = upload_message(load_event, TRAIN[0].replace(" ", "+"), None)
    snapshot, output = snapshot_of(TRAIN)
    stubs.s3.add_response(
        "head_object",
        {"ContentLength": size},
        expected_params={"Bucket": BUCKET, "Key": TRAIN[0], "VersionId": TRAIN[1]},
    )
    stubs.copy(TRAIN[0], TRAIN[1], snapshot)
    stubs.start(snapshot, output, volume_gb=volume_gb)

    # When it is delivered, Then the version's size (HeadObject) sets the volume, never less than 30 GB
    assert invoke({"Records": [record]}) == {"batchItemFailures": []}
    stubs.done()


def test_an_empty_upload_found_empty_only_by_its_head_starts_nothing(
    stubs: Stubs, load_event: Event, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a notification without a size, for an object that turns out to be empty
    record = upload_message(load_event, TRAIN[0].replace(" ", "+"), None)
    stubs.s3.add_response("head_object", {"ContentLength": 0})

    # When it is delivered, Then nothing is copied or started, and the skip says why
    assert invoke({"Records": [record]}) == {"batchItemFailures": []}
    stubs.done()
    (skip,) = [r for r in caplog.records if r.getMessage() == "record skipped"]
    assert skip.__dict__["reason"] == "not data, nothing to run: zero-byte placeholder"


def marker_folder(stubs: Stubs, monkeypatch: pytest.MonkeyPatch, listing: dict[str, int]) -> None:
    """Marker mode, and ``raw/batch/`` listing ``listing`` (key under the folder -> size), unversioned."""
    monkeypatch.setenv("TRIGGER_MODE", "marker")
    trigger_config.settings.cache_clear()
    contents = [{"Key": f"raw/batch/{k}", "Size": n, "ETag": f'"{k}"'} for k, n in listing.items()]
    stubs.s3.add_response(
        "list_objects_v2", {"Contents": contents}, expected_params={"Bucket": BUCKET, "Prefix": "raw/batch/"}
    )


def test_a_markers_folder_is_snapshotted_without_its_hidden_temporary_and_empty_files(
    stubs: Stubs, load_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given marker mode and a Spark job's output folder: two parts, its work folder, a checksum, a staging
    # file, an empty placeholder, and the marker that says it is complete
    listing = {
        "_SUCCESS": 0,
        "_temporary/0/part-00002.csv": 5_000_000_000,
        ".part-00000.csv.crc": 12,
        ".spark-staging-1a2b/part-00003.csv": 100,
        "empty.csv": 0,
        "part-00000.csv": 3_000_000_000,
        "part-00001.csv": 2_000_000_000,
    }
    marker_folder(stubs, monkeypatch, listing)
    record = upload_message(load_event, "raw/batch/_SUCCESS", 0, versionId="")
    folder = f"snapshot/{digest('batch')}/{TRAIN[2]}/"
    for part in ("part-00000.csv", "part-00001.csv"):
        stubs.s3.add_response(
            "copy_object",
            {"CopyObjectResult": {"ETag": '"e"'}},
            expected_params={
                "Bucket": BUCKET,
                "Key": folder + part,
                "CopySource": {"Bucket": BUCKET, "Key": f"raw/batch/{part}"},
                "TaggingDirective": "REPLACE",
                "CopySourceIfMatch": part,
            },
        )
    # And the start expected on the two parts, its volume sized from their 5 GB: 5 x 11 + 2 = 57
    stubs.start(folder, f"clean/batch/{TRAIN[2]}/", volume_gb=57)

    # When the marker is delivered, Then only the data parts are copied, and the run starts on them
    assert invoke({"Records": [record]}) == {"batchItemFailures": []}
    stubs.done()


def test_a_folder_too_large_for_any_processing_volume_is_a_logged_skip_before_any_copy(
    stubs: Stubs, load_event: Event, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given marker mode and a folder of 1.6 TB: with room for its output, more than SageMaker's 16,384 GB
    marker_folder(stubs, monkeypatch, {f"part-{n:05d}.csv": 4_000_000_000 for n in range(400)})
    record = upload_message(load_event, "raw/batch/_SUCCESS", 0, versionId="")

    # When the marker is delivered
    result = invoke({"Records": [record]})

    # Then nothing is copied or started (no billed job that can only fail), the message is done, and
    # the WARNING says why and what to do
    assert result == {"batchItemFailures": []}
    stubs.done()
    (skip,) = [r for r in caplog.records if r.getMessage() == "record skipped"]
    assert skip.levelname == "WARNING"
    assert "1,600.0 GB of input need a 17,602 GB processing volume" in skip.__dict__["reason"]
    assert (
        "more than the 16,384 GB SageMaker allows: upload the data in smaller parts"
        in skip.__dict__["reason"]
    )


def test_a_markers_folder_holding_a_name_too_long_for_a_file_is_a_skip_naming_it(
    stubs: Stubs, load_event: Event, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given marker mode and a folder holding an object whose name (300 bytes) no file can take where the
    # processing job downloads it (a Linux file name holds 255 bytes)
    long_name = "p" * 296 + ".csv"
    marker_folder(stubs, monkeypatch, {"part-00000.csv": 10, long_name: 10})
    record = upload_message(load_event, "raw/batch/_SUCCESS", 0, versionId="")

    # When the marker is delivered, Then nothing is copied or started, and the WARNING names the object
    assert invoke({"Records": [record]}) == {"batchItemFailures": []}
    stubs.done()
    (skip,) = [r for r in caplog.records if r.getMessage() == "record skipped"]
    assert skip.levelname == "WARNING"
    assert f"'raw/batch/{long_name}'" in skip.__dict__["reason"]
    assert "a path segment of 300 bytes; a file name holds 255" in skip.__dict__["reason"]
