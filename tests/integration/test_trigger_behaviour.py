"""What a user relies on beyond the sample events: exactly-once starts, decoding, failures, config."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from botocore.stub import Stubber
from trigger import handler
from trigger.errors import ConfigError, StartFailed, UnsupportedEvent

from tests.support.trigger import snapshot_of

Event = Callable[[str], dict[str, Any]]
BUCKET_URL = "s3://example-data-bucket/"
CARAVAN_SNAPSHOT = snapshot_of("coil2000/Caravan.csv", "0055AED6DCD90281E5", "Caravan.csv")


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def s3_record(
    encoded_key: str, *, version: str | None = "v1", etag: str | None = "e1", sequencer: str = "01"
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": encoded_key, "size": 10, "sequencer": sequencer}
    if version is not None:
        obj["versionId"] = version
    if etag is not None:
        obj["eTag"] = etag
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "example-data-bucket"}, "object": obj},
    }


def sqs_wrapped(event: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": json.dumps(event)}]}


# -- exactly once ------------------------------------------------------------------------------------


def test_a_duplicate_delivery_starts_no_second_execution(trigger: Any, event: Event) -> None:
    # Given an upload whose notification S3 delivers twice (at-least-once delivery)
    upload = event("s3-put.json")

    # When both deliveries reach the trigger
    first = trigger.invoke(upload)
    second = trigger.invoke(copy.deepcopy(upload))

    # Then the pipeline ran once: the second start named the same token and got the same execution
    assert len(trigger.executions()) == 1
    assert first["started"][0]["executionArn"] == second["started"][0]["executionArn"]
    assert trigger.calls[0]["ClientRequestToken"] == trigger.calls[1]["ClientRequestToken"]


def test_the_same_upload_through_sqs_and_directly_runs_once(trigger: Any, event: Event) -> None:
    # Given one upload delivered once directly and once wrapped in an SQS message
    upload = event("s3-put.json")
    trigger.invoke(upload)
    trigger.invoke(sqs_wrapped(upload))

    # Then there is one execution
    assert len(trigger.executions()) == 1


def test_a_re_upload_of_the_same_key_runs_again(trigger: Any, event: Event) -> None:
    # Given an upload, then a re-upload of the same key (a new version)
    first = trigger.invoke(event("s3-put.json"))
    second = trigger.invoke(event("s3-put-reupload.json"))

    # Then each upload has its own execution, each on its own snapshot of its own version, each
    # writing its own output folder (named by the upload's sequencer, which sorts in upload order)
    executions = trigger.executions()
    assert len(executions) == 2
    assert first["started"][0]["executionArn"] != second["started"][0]["executionArn"]
    assert sorted(e.parameters["InputDataUrl"] for e in executions) == [
        BUCKET_URL + snapshot_of("coil2000/Caravan.csv", "0055AED6DCD90281E5", "Caravan.csv"),
        BUCKET_URL + snapshot_of("coil2000/Caravan.csv", "0055AED6DCE3A1B2C4", "Caravan.csv"),
    ]
    assert sorted(e.parameters["OutputDataUrl"] for e in executions) == [
        "s3://example-data-bucket/clean/coil2000/Caravan.csv/0055AED6DCD90281E5/",
        "s3://example-data-bucket/clean/coil2000/Caravan.csv/0055AED6DCE3A1B2C4/",
    ]
    assert [c["CopySource"]["VersionId"] for c in trigger.copies] == [
        event("s3-put.json")["Records"][0]["s3"]["object"]["versionId"],
        event("s3-put-reupload.json")["Records"][0]["s3"]["object"]["versionId"],
    ]


def test_a_re_upload_of_identical_content_to_an_unversioned_bucket_runs_again(trigger: Any) -> None:
    # Given an unversioned bucket: same eTag (same bytes) but a new sequencer (a new PUT)
    trigger.invoke(s3_event(s3_record("raw/a.csv", version=None, etag="same", sequencer="01")))
    trigger.invoke(s3_event(s3_record("raw/a.csv", version=None, etag="same", sequencer="02")))

    # Then both PUTs ran, each copied only if the object still holds the notified bytes
    assert len(trigger.executions()) == 2
    assert [c.get("CopySourceIfMatch") for c in trigger.copies] == ["same", "same"]
    assert all("VersionId" not in c["CopySource"] for c in trigger.copies)


def test_the_same_record_twice_in_one_event_is_started_once(trigger: Any) -> None:
    # Given one event carrying the same record twice
    record = s3_record("raw/a.csv")

    # When it arrives
    summary = trigger.invoke(s3_event(record, copy.deepcopy(record)))

    # Then one start request is made and the repeat is reported as a skip
    assert len(trigger.calls) == 1
    assert [s["key"] for s in summary["started"]] == ["raw/a.csv"]
    assert summary["skipped"] == [
        {"key": "raw/a.csv", "reason": "duplicate of an earlier record in this event"}
    ]


# -- keys ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encode", "style"),
    [
        (lambda k: quote_plus(k, safe="/"), "S3 (quote_plus: '+' for a space, %2B for a plus)"),
        (lambda k: quote_plus(k, safe=""), "moto (quote_plus, slashes encoded too)"),
        (lambda k: quote(k, safe="/"), "sam local generate-event (quote: %20 for a space)"),
    ],
)
def test_keys_are_decoded_whatever_the_encoding(
    trigger: Any, encode: Callable[[str], str], style: str
) -> None:
    # Given a key with a space, a plus, accents and a non-Latin script, encoded as `style` does
    key = "raw/Q1 2026+extra/données_日本 \u2013 été.csv"
    summary = trigger.invoke(s3_event(s3_record(encode(key))))

    # Then the execution reads a snapshot of exactly that object and writes under its clean twin
    (execution,) = trigger.executions()
    assert summary["started"][0]["key"] == key
    assert trigger.copies[0]["CopySource"]["Key"] == key
    assert execution.parameters == {
        "InputDataUrl": BUCKET_URL
        + snapshot_of(key.removeprefix("raw/"), "01", "données_日本 \u2013 été.csv"),
        "OutputDataUrl": "s3://example-data-bucket/clean/Q1 2026+extra/données_日本 \u2013 été.csv/01/",
        "ProcessingVolumeSizeInGB": "30",
    }


def test_an_eventbridge_key_is_taken_literally(trigger: Any, event: Event) -> None:
    # Given an EventBridge event, whose key is not URL-encoded: a literal '+' and a literal '%2B'
    bridge = event("eventbridge-object-created.json")
    bridge["detail"]["object"]["key"] = "raw/100%2B more+less.csv"

    summary = trigger.invoke(bridge)

    # Then neither is decoded (unquote_plus would have made them '+' and ' ')
    assert trigger.copies[0]["CopySource"]["Key"] == "raw/100%2B more+less.csv"
    assert summary["started"][0]["inputDataUrl"].endswith("/100%2B more+less.csv")


def test_display_names_are_valid_and_distinct_for_keys_that_sanitise_alike(trigger: Any) -> None:
    # Given keys that differ only in characters a display name cannot hold, and a very long key
    keys = ["raw/a b.csv", "raw/a-b.csv", "raw/a_b.csv", "raw/" + "x" * 200 + ".csv"]
    trigger.invoke(
        s3_event(*(s3_record(quote_plus(k, safe="/"), sequencer=str(i)) for i, k in enumerate(keys)))
    )

    # Then every execution has its own valid display name, led by the readable key
    names = [call["PipelineExecutionDisplayName"] for call in trigger.calls]
    assert len(set(names)) == len(keys)
    assert all(len(name) <= 82 for name in names)
    assert names[0].startswith("a-b-csv-")


# -- what is sent, exactly ---------------------------------------------------------------------------


def test_the_exact_snapshot_and_start_requests_for_a_plain_upload(trigger: Any, event: Event) -> None:
    # Given S3 stubbed to expect exactly this copy: the notified version, under the snapshot prefix
    with Stubber(trigger.copy_for_real()) as s3, Stubber(trigger.client) as stub:
        s3.add_response(
            "copy_object",
            {"CopyObjectResult": {"ETag": '"0123456789abcdef0123456789abcdef"'}},
            expected_params={
                "Bucket": "example-data-bucket",
                "Key": CARAVAN_SNAPSHOT,
                "CopySource": {
                    "Bucket": "example-data-bucket",
                    "Key": "raw/coil2000/Caravan.csv",
                    "VersionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
                },
                "TaggingDirective": "REPLACE",
            },
        )
        # And the SageMaker API stubbed to expect exactly this request
        stub.add_response(
            "start_pipeline_execution",
            {"PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc"},
            expected_params={
                "PipelineName": "s3-sagemaker-trigger",
                "PipelineExecutionDisplayName": "coil2000-Caravan-csv-ad6eb861",
                # The ledger: which upload this execution runs, and where its output goes
                "PipelineExecutionDescription": (
                    's3-sagemaker-trigger upload {"bucket": "example-data-bucket", '
                    '"key": "raw/coil2000/Caravan.csv", "versionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", '
                    '"sequencer": "0055AED6DCD90281E5", "eTag": "0123456789abcdef0123456789abcdef", '
                    '"size": 1024, "eventTime": "2026-11-26T12:00:00.000Z", '
                    '"output": "s3://example-data-bucket/clean/coil2000/Caravan.csv/0055AED6DCD90281E5/"}'
                ),
                "PipelineParameters": [
                    {
                        "Name": "InputDataUrl",
                        "Value": BUCKET_URL + CARAVAN_SNAPSHOT,
                    },
                    {
                        "Name": "OutputDataUrl",
                        "Value": "s3://example-data-bucket/clean/coil2000/Caravan.csv/0055AED6DCD90281E5/",
                    },
                    {"Name": "ProcessingVolumeSizeInGB", "Value": "30"},
                ],
                # Golden value: the token recipe must not change silently between releases, or a
                # duplicate delivered across a deploy would start a second execution.
                "ClientRequestToken": "3a4464d91f1599b1d1bee986f2f6345c3d45ed2bdc9451ab4ad4941c0effb475",
            },
        )
        # When the plain upload event arrives
        summary = trigger.invoke(event("s3-put.json"))

        # Then that one copy and that one start were made, and its execution reported
        s3.assert_no_pending_responses()
        stub.assert_no_pending_responses()
    assert summary["started"][0]["executionArn"].endswith("/execution/abc")


def test_long_keys_run_up_to_the_longest_key_s3_accepts(trigger: Any) -> None:
    # Given two uploads with long keys: a 700-character Hive-style one, and one of S3's full 1,024 bytes
    name = "part-00000-7b1c9d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e-c000.csv"
    folders = "raw/source=web/year=2026/month=12/day=03/" + "".join(f"h={n:06d}/" for n in range(80))
    hive = folders[: 700 - len(name)] + name
    longest = "raw/" + "k" * (1024 - len("raw/") - len(".csv")) + ".csv"
    assert (len(hive), len(longest.encode())) == (700, 1024)

    # When both arrive
    summary = trigger.invoke(s3_event(s3_record(quote_plus(hive, safe="/")), s3_record(longest)))

    # Then both start, each with URLs a processing job's input and output take (1,024 characters), and
    # the 700-character one keeps its whole file name and writes under its own path
    assert [s["key"] for s in summary["started"]] == [hive, longest]
    assert summary["skipped"] == []
    for execution in trigger.executions():
        assert len(execution.parameters["InputDataUrl"]) <= 1024
        assert len(execution.parameters["OutputDataUrl"]) <= 1024
    first = summary["started"][0]
    assert first["inputDataUrl"].endswith("/01/" + hive.rsplit("/", 1)[1])
    assert first["outputDataUrl"] == f"{BUCKET_URL}clean/{hive.removeprefix('raw/')}/01/"


def test_uploads_it_cannot_run_are_warnings_and_records_not_its_own_are_info(trigger: Any) -> None:
    # Given an upload with an unsafe key, and an object outside the raw prefix
    unsafe, outside = "raw/../clean/x.csv", "uploads/x.csv"

    # When both arrive
    trigger.invoke(s3_event(s3_record(quote_plus(unsafe)), s3_record(quote_plus(outside))))

    # Then the upload it cannot run is a WARNING (alarmable), the foreign object an INFO line
    levels = {r["key"]: r["level"] for r in trigger.log_records() if r["message"] == "record skipped"}
    assert levels == {unsafe: "WARNING", outside: "INFO"}


def test_the_log_lines_of_a_start_carry_bucket_key_and_execution(trigger: Any, event: Event) -> None:
    # When a multi-record event is handled
    summary = trigger.invoke(event("s3-multi-record.json"))

    # Then each start is logged (JSON) with its bucket, key and execution ARN, each skip with its reason
    records = trigger.log_records()
    started = [r for r in records if r["message"] == "pipeline execution started"]
    skipped = [r for r in records if r["message"] == "record skipped"]
    assert [(r["bucket"], r["key"], r["execution_arn"]) for r in started] == [
        ("example-data-bucket", s["key"], s["executionArn"]) for s in summary["started"]
    ]
    assert [(r["key"], r["reason"]) for r in skipped] == [(s["key"], s["reason"]) for s in summary["skipped"]]
    # and the per-record keys do not leak into the next lines
    (done,) = [r for r in records if r["message"] == "event handled"]
    assert "key" not in done
    assert "execution_arn" not in done
    assert (done["started"], done["skipped"], done["failed"]) == (2, 2, 0)


# -- failures ------------------------------------------------------------------------------------------


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _error(request: AWSPreparedRequest, status: int, code: str, message: str) -> AWSResponse:
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.1"}
    return AWSResponse(request.url, status, headers, _Body(body))


class Faults:
    """Answers StartPipelineExecution with an error before it reaches the emulator, on cue."""

    def __init__(
        self, client: Any, rule: Callable[[dict[str, Any], int], tuple[int, str, str] | None]
    ) -> None:
        self.rule = rule
        self.attempts: list[str] = []
        client.meta.events.register("before-send.sagemaker.StartPipelineExecution", self)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        params = json.loads(request.body)
        input_url = params["PipelineParameters"][0]["Value"]
        self.attempts.append(input_url)
        fault = self.rule(params, len(self.attempts))
        return None if fault is None else _error(request, *fault)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retry mode, without its (random, up to 20 s) sleeps between attempts."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


def test_a_failed_start_among_good_records_fails_alone_and_is_named(trigger: Any, event: Event) -> None:
    # Given SageMaker refusing the start for one object of a multi-record event (e.g. access denied)
    Faults(
        trigger.client,
        lambda params, _: (
            (400, "AccessDeniedException", "not allowed")
            if params["PipelineParameters"][0]["Value"].endswith("/test.csv")
            else None
        ),
    )

    # When the event arrives
    with pytest.raises(StartFailed) as failed:
        trigger.invoke(event("s3-multi-record.json"))

    # Then the good record started, and the error names the bad key and its cause
    assert [e.parameters["InputDataUrl"] for e in trigger.executions()] == [
        BUCKET_URL + snapshot_of("coil2000/train.csv", "0055AED6DD00000001", "train.csv")
    ]
    assert "raw/coil2000/test.csv" in str(failed.value)
    assert "AccessDeniedException" in str(failed.value)
    assert "train.csv" not in str(failed.value)
    assert isinstance(failed.value.__cause__, ClientError)
    assert trigger.metrics() == {"ExecutionsStarted": 1, "RecordsSkipped": 2, "StartFailures": 1}
    # And the WARNING says it was rejected for good (access denied is no refusal that passes)
    failure_logs = [r for r in trigger.log_records() if r["message"].startswith("upload ")]
    assert [(r["message"], r["level"], r["key"]) for r in failure_logs] == [
        ("upload rejected", "WARNING", "raw/coil2000/test.csv")
    ]


def test_retrying_the_whole_event_after_a_failure_starts_nothing_twice(trigger: Any, event: Event) -> None:
    # Given the first attempt failed for one record (so Lambda's async retry sends the event again)
    faults = Faults(
        trigger.client, lambda params, attempt: (400, "AccessDeniedException", "no") if attempt == 2 else None
    )
    with pytest.raises(StartFailed):
        trigger.invoke(event("s3-multi-record.json"))
    faults.rule = lambda params, attempt: None

    # When the retry arrives
    trigger.invoke(event("s3-multi-record.json"))

    # Then both objects ran once each
    assert sorted(e.parameters["InputDataUrl"].rsplit("/", 1)[1] for e in trigger.executions()) == [
        "test.csv",
        "train.csv",
    ]


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "ThrottlingException"), (500, "InternalFailure"), (503, "ServiceUnavailable")],
)
def test_throttling_and_server_errors_are_retried(trigger: Any, event: Event, status: int, code: str) -> None:
    # Given SageMaker throttling (or failing) the first two attempts
    faults = Faults(
        trigger.client, lambda params, attempt: (status, code, "try later") if attempt <= 2 else None
    )

    # When an upload arrives
    summary = trigger.invoke(event("s3-put.json"))

    # Then botocore retried and the third attempt started the execution, once
    assert len(faults.attempts) == 3
    assert len(trigger.executions()) == 1
    assert summary["started"][0]["key"] == "raw/coil2000/Caravan.csv"


@pytest.mark.usefixtures("no_backoff")
def test_throttling_beyond_the_retry_budget_fails_the_invocation(trigger: Any, event: Event) -> None:
    # Given SageMaker throttling every attempt
    faults = Faults(trigger.client, lambda params, attempt: (400, "ThrottlingException", "Rate exceeded"))

    # When an upload arrives, Then the trigger gives up after the bounded attempts with a clear error
    with pytest.raises(
        StartFailed, match=r"raw/coil2000/Caravan\.csv: .*ThrottlingException.*max retries: 4"
    ):
        trigger.invoke(event("s3-put.json"))
    assert len(faults.attempts) == handler.MAX_ATTEMPTS
    assert trigger.executions() == []


def test_a_missing_pipeline_is_a_clear_start_failure(trigger: Any, event: Event) -> None:
    # Given the trigger pointed at a pipeline that does not exist
    trigger.configure(PIPELINE_NAME="no-such-pipeline")

    with pytest.raises(StartFailed, match=r"raw/coil2000/Caravan\.csv: .*no-such-pipeline"):
        trigger.invoke(event("s3-put.json"))


# -- bad configuration and bad events ------------------------------------------------------------------

# Nothing was counted when the invocation fails before the first record; Powertools says so.
no_metrics_warning = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@no_metrics_warning
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PIPELINE_NAME": None}, "PIPELINE_NAME is required"),
        (
            {"PIPELINE_NAME": "not a name!"},
            "PIPELINE_NAME 'not a name!' is not a SageMaker pipeline name or ARN",
        ),
        ({"TRIGGER_MODE": "batch"}, "TRIGGER_MODE must be one of object, marker (got 'batch')"),
        ({"CLEAN_PREFIX": "clean"}, "CLEAN_PREFIX 'clean' must end with '/'"),
        (
            {"CLEAN_PREFIX": "raw/clean/"},
            "the routed prefix 'raw/' and CLEAN_PREFIX 'raw/clean/' overlap: each must be a folder of its "
            "own (a write under a routed prefix would start a pipeline again",
        ),
        ({"CLEAN_PREFIX": "data/../c/"}, "CLEAN_PREFIX 'data/../c/' must not contain empty, '.' or '..'"),
        ({"MARKER_NAME": "a/_SUCCESS"}, "MARKER_NAME 'a/_SUCCESS' must be a plain file name"),
        ({"SNAPSHOT_PREFIX": "raw/snap/"}, "SNAPSHOT_PREFIX 'raw/snap/' overlap"),
        ({"SNAPSHOT_PREFIX": "clean/"}, "CLEAN_PREFIX 'clean/' and SNAPSHOT_PREFIX 'clean/' overlap"),
        ({"SNAPSHOT_PREFIX": "code/x/"}, "SNAPSHOT_PREFIX 'code/x/' and the code folder 'code/' overlap"),
        (
            {"BACKOFF_BASE_SECONDS": "soon"},
            "BACKOFF_BASE_SECONDS must be a whole number of seconds (got 'soon')",
        ),
        ({"BACKOFF_BASE_SECONDS": "0"}, "BACKOFF_BASE_SECONDS must be at least 1 (got 0)"),
        ({"BACKOFF_BASE_SECONDS": "60", "BACKOFF_CAP_SECONDS": "30"}, "BACKOFF_CAP_SECONDS must lie between"),
        ({"BACKOFF_CAP_SECONDS": "50000"}, "43200-second visibility limit counts from the receive"),
    ],
)
def test_a_bad_configuration_is_a_clear_error_and_starts_nothing(
    trigger: Any, event: Event, env: dict[str, str | None], message: str
) -> None:
    # Given the trigger deployed with a bad setting
    trigger.configure(**env)

    # When an upload arrives, Then the invocation fails with a message naming the setting, and nothing starts
    with pytest.raises(ConfigError) as error:
        trigger.invoke(event("s3-put.json"))

    assert message in str(error.value)
    assert str(error.value).startswith("invalid trigger configuration: ")
    assert trigger.calls == []


@no_metrics_warning
def test_every_configuration_problem_is_reported_at_once(trigger: Any, event: Event) -> None:
    # Given three bad settings
    trigger.configure(PIPELINE_NAME=None, CLEAN_PREFIX="clean", MARKER_NAME="..")

    # Then one error names all three, so one redeploy fixes them
    with pytest.raises(ConfigError) as error:
        trigger.invoke(event("s3-put.json"))

    assert all(name in str(error.value) for name in ("PIPELINE_NAME", "CLEAN_PREFIX", "MARKER_NAME"))


@no_metrics_warning
def test_an_event_of_another_kind_is_a_clear_error(trigger: Any) -> None:
    # Given an event that is no S3 notification (here a CloudFormation request), Then a clear error
    with pytest.raises(UnsupportedEvent, match=r"not an S3 notification.*top-level fields: RequestType"):
        trigger.invoke({"RequestType": "Create", "ResourceProperties": {}})
    assert trigger.calls == []


def test_malformed_records_are_skipped_with_their_reason(trigger: Any) -> None:
    # Given an event mixing a good record with broken ones
    no_key = s3_record("raw/x.csv")
    del no_key["s3"]["object"]["key"]
    wrong_type = s3_record("raw/y.csv")
    wrong_type["s3"]["object"]["versionId"] = 7
    no_identity = s3_record("raw/z.csv", version=None, etag=None)
    del no_identity["s3"]["object"]["sequencer"]
    bad_bucket = s3_record("raw/b.csv")
    bad_bucket["s3"]["bucket"]["name"] = "evil/../bucket"
    event = {
        "Records": [
            s3_record("raw/good.csv"),
            no_key,
            wrong_type,
            no_identity,
            bad_bucket,
            s3_record("raw/%FF.csv"),  # not UTF-8 once decoded
            {"eventSource": "aws:sqs", "messageId": "m-2", "body": "not json"},
            {"eventSource": "aws:sns"},
            "not a record",
        ]
    }

    # When it arrives
    summary = trigger.invoke(event)

    # Then the good record starts and each broken one is skipped with what is wrong with it
    assert [s["key"] for s in summary["started"]] == ["raw/good.csv"]
    assert [s["reason"] for s in summary["skipped"]] == [
        "malformed S3 record: missing field 'key'",
        "malformed S3 record: s3.object.versionId must be a string",
        "malformed record: no versionId, eTag or sequencer to tell this upload from a re-upload",
        "malformed record: 'evil/../bucket' is not an S3 bucket name",
        "key is not URL-encoded UTF-8, as S3 encodes keys in notifications",
        "SQS message 'm-2': body is not JSON (Expecting value: line 1 column 1 (char 0))",
        "record 7: unsupported event source 'aws:sns'",
        "record 8: unsupported event source None",
    ]
    assert len(trigger.calls) == 1
