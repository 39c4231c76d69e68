"""Fault injection on the upload queue's path: what SageMaker, S3 and the network do, and what a user finds.

The promise under test (checked after every test by ``check_promise``): every upload under raw/ runs
exactly once, on a snapshot holding exactly its bytes, or is skipped with a logged reason, or waits in
the dead-letter queue after 24 h of retries; nothing is lost, nothing runs twice. The real trigger runs
against the emulator, delivered the way the event source mapping delivers; the faults the emulator
cannot produce on cue are injected in front of it by ``before-send`` hooks on the trigger's own
clients, so botocore's real retry logic meets them.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from trigger import backoff, handler

from tests.support.hardening import MAX_RECEIVE_COUNT, Stack

KEY = "raw/coil2000/Caravan.csv"
LIMIT = "The account-level service limit 'Maximum number of concurrent pipeline executions' is 20"
BASE, CAP = backoff.DEFAULT_BASE_SECONDS, backoff.DEFAULT_CAP_SECONDS


def within_backoff(postponed: list[tuple[str, int]]) -> bool:
    """Each wait the trigger chose lies within the backoff's jitter for that receive."""
    return all(
        backoff.minimum(n, BASE, CAP) <= wait <= backoff.ceiling(n, BASE, CAP)
        for n, (_, wait) in enumerate(postponed, start=1)
    )


# -- throttling and server errors ---------------------------------------------------------------------


@pytest.mark.parametrize("throttled", [1, handler.MAX_ATTEMPTS - 1])
def test_throttled_starts_are_retried_by_botocore_and_the_upload_runs_once(
    stack: Stack, throttled: int
) -> None:
    # Given SageMaker throttling the first `throttled` starts (fewer than the client's attempt budget)
    stack.rule = lambda key, attempt: (
        stack.reply(400, "ThrottlingException", "Rate exceeded") if attempt <= throttled else None
    )
    stack.upload(KEY)

    # When the upload queue delivers the upload
    delivery = stack.deliver()

    # Then botocore retried within the one invocation and the upload ran once
    assert (delivery.invocations, delivery.failures) == (1, [])
    assert stack.attempts_for(KEY) == throttled + 1
    assert stack.executed_keys() == [KEY]


def test_throttling_beyond_one_invocation_waits_in_the_queue_and_runs_once(stack: Stack) -> None:
    # Given SageMaker throttling 7 starts in a row: more than one invocation's 5 attempts
    stack.rule = lambda key, attempt: (
        stack.reply(400, "ThrottlingException", "Rate exceeded") if attempt <= 7 else None
    )
    stack.upload(KEY)

    # When the upload queue delivers it (and again once its backoff ran out)
    delivery = stack.deliver()

    # Then the first delivery failed that message alone and pushed it out by the first backoff; the
    # second started it, once; nothing was dead-lettered
    assert delivery.invocations == 2
    assert len(delivery.failures) == 1
    assert len(stack.postponed) == 1
    assert within_backoff(stack.postponed)
    assert stack.attempts_for(KEY) == 8
    assert stack.executed_keys() == [KEY]
    assert stack.dlq_bodies() == []


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalFailure"), (502, "BadGateway"), (503, "ServiceUnavailable")]
)
def test_a_5xx_is_retried_and_the_upload_runs_once(stack: Stack, status: int, code: str) -> None:
    # Given SageMaker failing the first two starts with a server error
    stack.rule = lambda key, attempt: stack.reply(status, code, "internal error") if attempt <= 2 else None
    stack.upload(KEY)

    # When the upload queue delivers it, Then it runs once
    stack.deliver()
    assert stack.executed_keys() == [KEY]


def test_a_lasting_5xx_is_retried_for_24_hours_then_waits_in_the_dlq_and_a_redrive_runs_it_once(
    stack: Stack,
) -> None:
    # Given SageMaker failing every start of one upload with a server error
    failing = {"on": True}
    stack.rule = lambda key, attempt: stack.reply(500, "InternalFailure", "down") if failing["on"] else None
    stack.upload(KEY)

    # When the upload queue delivers it until SQS gives up
    delivery = stack.deliver()

    # Then it was received maxReceiveCount times, each failure postponed by the growing, capped
    # backoff, whose shortest possible sum is 24 h; then SQS moved it to the dead-letter queue
    assert delivery.invocations == MAX_RECEIVE_COUNT
    assert len(stack.postponed) == MAX_RECEIVE_COUNT
    assert within_backoff(stack.postponed)
    assert max(wait for _, wait in stack.postponed) <= CAP
    assert sum(wait for _, wait in stack.postponed) >= backoff.RETRY_WINDOW_SECONDS
    assert len(stack.dlq_bodies()) == 1
    assert stack.executions() == {}

    # When SageMaker recovers and the operator redrives (SQS's StartMessageMoveTask)
    failing["on"] = False
    assert stack.redrive() == 1
    stack.deliver()

    # Then the upload runs once and the dead-letter queue is empty
    assert stack.executed_keys() == [KEY]
    assert stack.dlq_bodies() == []


# -- lost answers and timeouts -------------------------------------------------------------------------


def test_a_lost_answer_is_retried_without_a_second_execution(stack: Stack) -> None:
    # Given the first start reaching SageMaker (the execution starts) but its answer lost
    stack.rule = lambda key, attempt: (
        stack.lose_answer(lambda **kw: ReadTimeoutError(**kw)) if attempt == 1 else None
    )
    stack.upload(KEY)

    # When the upload is delivered, Then botocore's retry names the same token: one execution
    stack.deliver()
    assert stack.attempts_for(KEY) == 2
    assert stack.executed_keys() == [KEY]


def test_answers_lost_for_a_whole_invocation_do_not_run_the_upload_twice(stack: Stack) -> None:
    # Given every answer of the first invocation lost (each attempt started or found the execution)
    stack.rule = lambda key, attempt: (
        stack.lose_answer(lambda **kw: ReadTimeoutError(**kw)) if attempt <= handler.MAX_ATTEMPTS else None
    )
    stack.upload(KEY)

    # When the queue redelivers it after its backoff
    delivery = stack.deliver()

    # Then the redelivery got the execution the lost answers had started: one execution
    assert delivery.invocations == 2
    assert stack.executed_keys() == [KEY]


@pytest.mark.parametrize("timeout", [ConnectTimeoutError, EndpointConnectionError])
def test_a_lasting_network_failure_waits_in_the_queue_and_runs_once(
    stack: Stack, timeout: type[Exception]
) -> None:
    # Given SageMaker unreachable for three invocations' worth of attempts
    stack.rule = lambda key, attempt: (
        stack.fail(lambda **kw: timeout(**kw)) if attempt <= 3 * handler.MAX_ATTEMPTS else None
    )
    stack.upload(KEY)

    # When it is delivered until it succeeds, Then it waited with a growing backoff and ran once
    delivery = stack.deliver()
    assert delivery.invocations == 4
    waits = [wait for _, wait in stack.postponed]
    assert len(waits) == 3
    assert within_backoff(stack.postponed)
    assert stack.executed_keys() == [KEY]


# -- the pipeline missing, the concurrent-execution limit ----------------------------------------------


def test_a_missing_pipeline_is_retried_until_it_is_deployed_and_then_runs_once(stack: Stack) -> None:
    # Given the pipeline is missing (not deployed yet, or being replaced)
    stack.delete_pipeline()
    stack.upload(KEY)

    # When the upload is delivered, Then it waits in the upload queue, not in the dead-letter queue
    delivery = stack.deliver(max_receives=3)
    assert delivery.invocations == 3
    assert len(delivery.failures) == 3
    deferred = [r for r in stack.log_records() if r["message"] == "upload deferred"]
    assert "ResourceNotFound" in deferred[-1]["reason"]
    assert stack.dlq_bodies() == []

    # When the pipeline is deployed, Then the next delivery runs it, once
    stack.create_pipeline()
    stack.deliver()
    assert stack.executed_keys() == [KEY]


def test_at_the_concurrency_limit_the_upload_waits_with_growing_backoff_and_runs_once(stack: Stack) -> None:
    # Given SageMaker at its concurrent-execution limit for five deliveries
    stack.rule = lambda key, attempt: (
        stack.reply(400, "ResourceLimitExceeded", LIMIT) if attempt <= 5 else None
    )
    stack.upload(KEY)

    # When the upload is delivered until it runs
    delivery = stack.deliver()

    # Then the limit (no throttle: botocore does not hammer SageMaker with it) cost one attempt per
    # delivery, each failure pushed the next out further, and the upload ran once
    assert delivery.invocations == 6
    assert stack.attempts_for(KEY) == 6
    waits = [wait for _, wait in stack.postponed]
    assert len(waits) == 5
    assert within_backoff(stack.postponed)
    assert [backoff.ceiling(n, BASE, CAP) for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert stack.executed_keys() == [KEY]


def test_a_duplicate_delivery_after_the_run_starts_nothing_twice(stack: Stack) -> None:
    # Given an upload that ran
    stack.upload(KEY)
    stack.deliver()
    (url,) = stack.executions().values()

    # When S3 delivers its notification again (at-least-once): twice more, in one batch
    for body in stack.bodies * 2:
        stack.send(body)
    stack.deliver()

    # Then nothing new started
    assert list(stack.executions().values()) == [url]


# -- the upload's own bytes -----------------------------------------------------------------------------


def test_a_key_overwritten_before_its_run_still_runs_on_its_own_bytes(stack: Stack) -> None:
    # Given a large upload, then the same key overwritten with a tiny file before either was delivered
    first, second = (
        stack.upload(KEY, body=b"row\n" * 50_000)[0],
        stack.upload(KEY, body=b"row\n" * 50)[0],
    )

    # When both notifications are delivered
    stack.deliver()

    # Then there are two runs, each reading a snapshot of its own version (check_promise compares the
    # bytes) and writing its own output folder
    assert stack.executed_keys() == [KEY, KEY]
    assert sorted(version for _, version in stack.uploads.values()) == sorted([first, second])
    outputs = [
        r["outputDataUrl"] for r in stack.log_records() if r["message"] == "pipeline execution started"
    ]
    assert len(set(outputs)) == 2


def test_a_key_deleted_before_its_run_still_runs_on_its_bytes(stack: Stack) -> None:
    # Given an upload whose key is deleted before the trigger sees it (a delete marker: the version stays)
    stack.upload(KEY)
    boto3.client("s3").delete_object(Bucket="example-data-bucket", Key=KEY)

    # When it is delivered, Then it runs on the version that was uploaded
    stack.deliver()
    assert stack.executed_keys() == [KEY]


def test_an_upload_whose_version_is_gone_is_a_logged_skip_saying_why(stack: Stack) -> None:
    # Given an upload whose version was permanently deleted before the trigger could copy it
    (version,) = stack.upload(KEY)
    boto3.client("s3").delete_object(Bucket="example-data-bucket", Key=KEY, VersionId=version)

    # When it is delivered
    delivery = stack.deliver()

    # Then it is not retried (it can never run): one delivery, a WARNING saying why, nothing started
    assert (delivery.invocations, delivery.failures) == (1, [])
    (skip,) = [r for r in stack.log_records() if r["message"] == "record skipped" and r.get("key")]
    assert skip["level"] == "WARNING"
    assert skip["key"] == KEY
    assert "is not in the bucket: never uploaded, or deleted before its snapshot was taken" in skip["reason"]
    assert stack.executions() == {}


def test_a_throttled_snapshot_copy_is_retried_through_the_queue_and_runs_once(stack: Stack) -> None:
    # Given S3 throttling the snapshot copy for more than one invocation's attempts
    stack.s3_rule = lambda key, attempt: (
        stack.reply(503, "SlowDown", "Please reduce your request rate.") if attempt <= 4 else None
    )
    stack.upload(KEY)

    # When it is delivered until it runs
    delivery = stack.deliver()

    # Then the first delivery failed (copy throttled beyond botocore's 3 attempts) and waited; the next ran
    assert delivery.invocations == 2
    assert stack.executed_keys() == [KEY]


def test_denied_access_to_the_upload_is_kept_for_a_redrive_not_dropped(stack: Stack) -> None:
    # Given the trigger's role not allowed to read the upload (its permissions, or a KMS key)
    stack.s3_rule = lambda key, attempt: stack.reply(403, "AccessDenied", "Access Denied")
    stack.upload(KEY)

    # When the queue delivers it until its redrive policy moves it on (no wait between: minutes on AWS)
    delivery = stack.deliver()

    # Then it failed every time, nothing ran, and it waits in the dead-letter queue for a redrive once
    # access is fixed; the line says what the role needs
    assert len(set(delivery.failures)) == 1
    assert stack.executed_keys() == []
    assert len(stack.dlq_bodies()) == 1
    rejected = [r for r in stack.log_records() if r["message"] == "upload rejected" and r.get("key") == KEY]
    assert rejected
    assert rejected[0]["level"] == "WARNING"
    assert "s3:GetObject" in rejected[0]["reason"]


# -- one bad message among good ones --------------------------------------------------------------------


def test_one_refused_upload_fails_alone_and_the_others_run_once(stack: Stack) -> None:
    # Given six uploads where SageMaker refuses one (whatever the attempt) until the cause is fixed
    good = [f"raw/batch/part-{i}.csv" for i in range(5)]
    bad = "raw/batch/refused.csv"
    refused = {"on": True}
    stack.rule = lambda key, attempt: (
        stack.reply(400, "ValidationException", "refused") if key == bad and refused["on"] else None
    )
    stack.upload(*good[:3], bad, *good[3:])

    # When the queue delivers them (three times for the refused one)
    delivery = stack.deliver(max_receives=3)

    # Then only the refused one failed, in every delivery; the five ran once each and were deleted
    assert len(set(delivery.failures)) == 1
    assert stack.executed_keys() == sorted(good)
    assert all(stack.attempts_for(k) == 1 for k in good)

    # When the cause is fixed, Then its next delivery runs it, and nothing else runs again
    refused["on"] = False
    stack.deliver()
    assert stack.executed_keys() == sorted([*good, bad])
