"""Fault injection: what SageMaker and the network do to a start, and what a user then finds.

The promise under test: every upload under raw/ runs exactly once, eventually, or sits in the
dead-letter queue with its reason and can be replayed; nothing is lost, nothing runs twice. The real
trigger runs against the emulator; the faults the emulator cannot produce on cue (throttling, 5xx,
timeouts, lost answers, the concurrent-execution limit) are injected in front of it by a botocore
``before-send`` hook on the trigger's own SageMaker client, so botocore's real retry logic meets them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from trigger import handler
from trigger.errors import StartFailed

BUCKET = "example-data-bucket"
KEY = "raw/coil2000/Caravan.csv"
URL = f"s3://{BUCKET}/{KEY}"
LIMIT = "The account-level service limit 'Maximum number of concurrent pipeline executions' is 200"


def throttle_first(stack: Any, n: int) -> None:
    stack.rule = lambda url, attempt: (
        stack.reply(400, "ThrottlingException", "Rate exceeded") if attempt <= n else None
    )


# -- throttling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("throttled", [1, handler.MAX_ATTEMPTS - 1])
def test_throttled_starts_are_retried_and_the_upload_runs_once(stack: Any, throttled: int) -> None:
    # Given SageMaker throttling the first `throttled` starts (fewer than the client's attempt budget)
    throttle_first(stack, throttled)

    # When the upload's notification arrives
    summary = stack.invoke(stack.event(KEY))

    # Then botocore retried, the next attempt started it, and there is exactly one execution
    assert stack.attempts_for(KEY) == throttled + 1
    assert list(stack.executions().values()) == [URL]
    assert [s["inputDataUrl"] for s in summary["started"]] == [URL]


def test_throttling_beyond_one_invocation_is_absorbed_by_lambdas_retry(stack: Any) -> None:
    # Given SageMaker throttling 7 starts in a row: more than one invocation's 5 attempts
    throttle_first(stack, 7)

    # When Lambda's asynchronous invocation handles the event (an error -> a retry)
    result = stack.lambda_async(stack.event(KEY))

    # Then the first invocation failed clearly, the retry started the upload, once; nothing dead-lettered
    first, second = result.invocations
    assert isinstance(first, StartFailed)
    assert f"{KEY}: " in str(first)
    assert "ThrottlingException" in str(first)
    assert second["started"][0]["inputDataUrl"] == URL
    assert stack.attempts_for(KEY) == 8
    assert list(stack.executions().values()) == [URL]
    assert result.dead_letter is None
    assert stack.dlq_bodies() == []


# -- server errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalFailure"), (502, "BadGateway"), (503, "ServiceUnavailable")]
)
def test_a_5xx_is_retried_and_the_upload_runs_once(stack: Any, status: int, code: str) -> None:
    # Given SageMaker failing the first two starts with a server error
    stack.rule = lambda url, attempt: stack.reply(status, code, "internal error") if attempt <= 2 else None

    # When the upload arrives
    stack.invoke(stack.event(KEY))

    # Then the third attempt started it, once
    assert stack.attempts_for(KEY) == 3
    assert list(stack.executions().values()) == [URL]


def test_a_lasting_5xx_ends_in_the_dlq_and_the_redrive_runs_it_once(stack: Any) -> None:
    # Given SageMaker answering 500 to every start, for longer than Lambda keeps retrying
    stack.rule = lambda url, attempt: stack.reply(500, "InternalFailure", "We encountered an internal error")
    result = stack.lambda_async(stack.event(KEY))

    # Then every invocation failed naming the key and the cause, after the bounded attempts each
    assert len(result.invocations) == 3
    assert all(isinstance(e, StartFailed) and "InternalFailure" in str(e) for e in result.invocations)
    assert stack.attempts_for(KEY) == 3 * handler.MAX_ATTEMPTS
    assert stack.executions() == {}
    # and the event sits in the dead-letter queue with its reason
    (body,) = stack.dlq_bodies()
    assert json.loads(body)["responsePayload"]["errorType"] == "StartFailed"

    # When SageMaker has recovered and the operator redrives the queue
    stack.rule = lambda url, attempt: None
    report = stack.redrive()

    # Then the upload runs once, and the queue is empty
    assert [(s.key, s.new) for s in report.started] == [(KEY, True)]
    assert list(stack.executions().values()) == [URL]
    assert (report.deleted, report.failed) == (1, [])
    assert stack.dlq_bodies() == []


# -- timeouts ----------------------------------------------------------------------------------------


def test_a_lost_answer_is_retried_without_a_second_execution(stack: Any) -> None:
    # Given the first start reaching SageMaker (the execution starts) but its answer timing out
    stack.rule = lambda url, attempt: stack.lose_answer(ReadTimeoutError) if attempt == 1 else None

    # When the upload arrives
    summary = stack.invoke(stack.event(KEY))

    # Then botocore retried with the same idempotency token, and SageMaker answered with that execution
    assert stack.attempts_for(KEY) == 2
    executions = stack.executions()
    assert list(executions.values()) == [URL]
    assert summary["started"][0]["executionArn"] in executions


def test_answers_lost_for_a_whole_invocation_do_not_run_the_upload_twice(stack: Any) -> None:
    # Given every answer of the first invocation lost: the start happened, the trigger never learned it
    stack.rule = lambda url, attempt: (
        stack.lose_answer(ReadTimeoutError) if attempt <= handler.MAX_ATTEMPTS else None
    )

    # When Lambda's asynchronous invocation handles the event: it fails, then Lambda retries it
    result = stack.lambda_async(stack.event(KEY))

    # Then the retry found the execution the lost attempts had started (the same token): one execution
    first, second = result.invocations
    assert isinstance(first, StartFailed)
    assert "Read timeout on endpoint URL" in str(first)
    executions = stack.executions()
    assert list(executions.values()) == [URL]
    assert second["started"][0]["executionArn"] in executions


@pytest.mark.parametrize("timeout", [ConnectTimeoutError, ReadTimeoutError])
def test_a_timeout_is_retried_and_the_upload_runs_once(stack: Any, timeout: type[Exception]) -> None:
    # Given the first two attempts timing out before reaching SageMaker
    stack.rule = lambda url, attempt: stack.fail(timeout) if attempt <= 2 else None

    # When the upload arrives, Then the third attempt starts it, once
    stack.invoke(stack.event(KEY))
    assert stack.attempts_for(KEY) == 3
    assert list(stack.executions().values()) == [URL]


@pytest.mark.parametrize(
    ("timeout", "phrase"),
    [
        (ConnectTimeoutError, "Connect timeout on endpoint URL"),
        (ReadTimeoutError, "Read timeout on endpoint URL"),
    ],
)
def test_a_lasting_timeout_is_a_clear_start_failure_and_a_later_retry_runs_it_once(
    stack: Any, timeout: type[Exception], phrase: str
) -> None:
    # Given SageMaker unreachable: every attempt times out
    stack.rule = lambda url, attempt: stack.fail(timeout)
    event = stack.event(KEY)

    # When the upload arrives, Then after the bounded attempts a StartFailed names the key and the timeout
    with pytest.raises(StartFailed) as failed:
        stack.invoke(event)
    assert str(failed.value).startswith(f"StartPipelineExecution failed for 1 object: {KEY}: {phrase}")
    assert isinstance(failed.value.__cause__, timeout)
    assert stack.attempts_for(KEY) == handler.MAX_ATTEMPTS
    assert stack.executions() == {}

    # When SageMaker is reachable again and Lambda's retry arrives, Then the upload runs once
    stack.rule = lambda url, attempt: None
    stack.invoke(event)
    assert list(stack.executions().values()) == [URL]


# -- the pipeline missing ------------------------------------------------------------------------------


def test_a_missing_pipeline_dead_letters_the_upload_and_the_redrive_runs_it_once(stack: Any) -> None:
    # Given the pipeline is missing (deleted, or not deployed yet)
    stack.delete_pipeline()
    event = stack.event(KEY)

    # When the upload arrives, Then each invocation fails clearly, naming the key and the pipeline
    result = stack.lambda_async(event)
    assert len(result.invocations) == 3
    error = result.invocations[-1]
    assert isinstance(error, StartFailed)
    assert f"{KEY}: An error occurred (ResourceNotFound)" in str(error)
    assert f"Pipeline '{stack.pipeline_name}' does not exist" in str(error)
    assert isinstance(error.__cause__, ClientError)

    # And the dead-letter queue holds Lambda's failure record: the original event, and why it failed
    (body,) = stack.dlq_bodies()
    record = json.loads(body)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == event
    assert record["responsePayload"]["errorType"] == "StartFailed"

    # When the pipeline is deployed and the operator redrives the queue
    stack.create_pipeline()
    report = stack.redrive()

    # Then the upload runs once, the message is deleted, and a second redrive finds nothing to do
    assert [(s.key, s.input_url, s.new) for s in report.started] == [(KEY, URL, True)]
    assert (report.read, report.replayed, report.deleted, report.failed) == (1, 1, 1, [])
    assert list(stack.executions().values()) == [URL]
    assert stack.redrive().read == 0
    assert len(stack.executions()) == 1


# -- the concurrent-execution limit --------------------------------------------------------------------


def test_at_the_concurrency_limit_the_start_fails_and_a_later_retry_runs_it_once(stack: Any) -> None:
    # Given SageMaker at its concurrent-execution limit during the first invocation only
    state = {"full": True}
    stack.rule = lambda url, attempt: (
        stack.reply(400, "ResourceLimitExceeded", LIMIT) if state["full"] else None
    )
    event = stack.event(KEY)

    # When the upload arrives
    with pytest.raises(StartFailed) as failed:
        stack.invoke(event)

    # Then the invocation fails (so Lambda retries it later), naming the key and the limit; the limit is
    # no throttle, so botocore does not hammer SageMaker with it: one attempt
    assert f"{KEY}: An error occurred (ResourceLimitExceeded)" in str(failed.value)
    assert stack.attempts_for(KEY) == 1
    assert stack.executions() == {}

    # When executions finish (room again) and Lambda's retry arrives
    state["full"] = False
    stack.invoke(event)
    stack.invoke(event)  # and a late duplicate delivery

    # Then the upload runs, once
    assert list(stack.executions().values()) == [URL]


def test_a_limit_that_outlasts_lambdas_retries_is_redriven_later(stack: Any) -> None:
    # Given the limit reached for longer than Lambda retries: the event goes to the dead-letter queue
    stack.rule = lambda url, attempt: stack.reply(400, "ResourceLimitExceeded", LIMIT)
    result = stack.lambda_async(stack.event(KEY))
    assert result.dead_letter is not None
    assert "ResourceLimitExceeded" in result.dead_letter["responsePayload"]["errorMessage"]

    # When a redrive runs while the limit still holds, Then the message stays, with its reason
    blocked = stack.redrive()
    assert (blocked.deleted, len(blocked.failed)) == (0, 1)
    assert "ResourceLimitExceeded" in blocked.failed[0].reason
    assert len(stack.dlq_bodies()) == 1

    # When the limit clears and the redrive runs again, Then the upload runs once and the queue is empty
    stack.rule = lambda url, attempt: None
    report = stack.redrive()
    assert [s.key for s in report.started] == [KEY]
    assert list(stack.executions().values()) == [URL]
    assert stack.dlq_bodies() == []


# -- one bad record among good ones --------------------------------------------------------------------


def test_one_bad_record_fails_alone_and_retries_of_the_whole_event_start_nothing_twice(stack: Any) -> None:
    # Given a six-record event where SageMaker refuses one object's start (whatever the attempt)
    good = [f"raw/batch/part-{i}.csv" for i in range(5)]
    bad = "raw/batch/refused.csv"
    event = stack.event(*good[:3], bad, *good[3:])
    refused = {"on": True}
    stack.rule = lambda url, attempt: (
        stack.reply(400, "ValidationException", "refused")
        if url.endswith("/refused.csv") and refused["on"]
        else None
    )

    # When Lambda's asynchronous invocation handles it: the first attempt and two retries of the WHOLE event
    result = stack.lambda_async(event)

    # Then each invocation failed naming only the bad key
    assert len(result.invocations) == 3
    for error in result.invocations:
        assert isinstance(error, StartFailed)
        assert error.failures[0][0] == bad
        assert len(error.failures) == 1
    # And every good object started once: three invocations, the same five executions
    executions = stack.executions()
    assert sorted(executions.values()) == sorted(f"s3://{BUCKET}/{k}" for k in good)
    assert all(stack.attempts_for(k) == 3 for k in good)  # started again each time, answered the same

    # When the cause is fixed and the dead-lettered event is redriven
    refused["on"] = False
    report = stack.redrive()

    # Then only the bad object starts; the five good ones are reported as already running, not run again
    assert [s.key for s in report.started if s.new] == [bad]
    assert sorted(s.execution_arn for s in report.started if s.new is False) == sorted(executions)
    after = stack.executions()
    assert len(after) == 6
    assert set(executions) < set(after)
    assert (report.deleted, report.failed) == (1, [])
