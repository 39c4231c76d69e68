"""s3sm backfill against a deployed stack, every AWS call stubbed (botocore Stubber, exact parameters): what
it lists, what it sends to the upload queue (and in how many calls), what it leaves alone and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY
from trigger.events import ObjectEvent, normalise

from contract.ledger import Upload, describe
from ops.target import Target
from tests.support.ops import OUTPUTS, PIPELINE, PIPELINE_ARN, UPLOAD_QUEUE, Stubs, s3sm

BUCKET = OUTPUTS["DataBucketName"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LANDED = datetime(2026, 11, 30, 9, 30, 5, tzinfo=UTC)
CLAIMS = "claims-training"
ROUTES = f"""
routes:
  - prefix: raw/claims/
    pattern: 'date=(?P<date>\\d{{4}}-\\d{{2}}-\\d{{2}})/[^/]+\\.csv'
    pipeline: {CLAIMS}
    parameters:
      InputDataUrl: '{{snapshot_url}}'
      RunDate: '{{date}}'
  - prefix: raw/coil/
"""
LEDGER_PAGE = {"SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 100}


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES, encoding="utf-8")
    return path


@pytest.fixture
def stack(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    """The stubbed stack, which s3sm finds, at NOW (the --rerun stamp, --since and --until count from it)."""
    monkeypatch.setattr("ops.cli.resolve", lambda **kwargs: target)
    monkeypatch.setattr("ops.cli.datetime", _Frozen)
    monkeypatch.setattr("ops.retry.datetime", _Frozen)
    return target


def version(key: str, n: int, *, latest: bool = True, size: int = 120) -> dict[str, Any]:
    return {
        "Key": key,
        "VersionId": f"v{n}",
        "IsLatest": latest,
        "ETag": f'"e{n:031d}"',
        "Size": size,
        "LastModified": LANDED,
    }


def ran(
    key: str, n: int, execution: str = "0ldrun000001", pipeline_arn: str = PIPELINE_ARN
) -> dict[str, Any]:
    """A ledger entry: an execution the trigger started for version v<n> of ``key``."""
    upload = Upload(BUCKET, key, f"v{n}", "0055AED6DCD90281E5", f"e{n:031d}", 120, "2026-11-30T09:30:05Z")
    return {
        "PipelineExecutionArn": f"{pipeline_arn}/execution/{execution}",
        "PipelineExecutionStatus": "Succeeded",
        "PipelineExecutionDescription": describe(upload),
        "StartTime": LANDED + timedelta(seconds=3),
    }


def stub_ledger(stubs: Stubs, own: list[dict[str, Any]], claims: list[dict[str, Any]], **since: Any) -> None:
    """ListPipelineExecutions of each routed pipeline: the stack's own, then the claims route's."""
    for name, summaries in ((PIPELINE, own), (CLAIMS, claims)):
        stubs["sagemaker"].add_response(
            "list_pipeline_executions",
            {"PipelineExecutionSummaries": summaries},
            {"PipelineName": name, **LEDGER_PAGE, **since},
        )


def stub_listing(stubs: Stubs, versions: list[dict[str, Any]], prefix: str = "raw/") -> None:
    s3 = stubs["s3"]
    s3.add_response("get_bucket_versioning", {"Status": "Enabled"}, {"Bucket": BUCKET})
    s3.add_response(
        "list_object_versions",
        {"Versions": versions, "DeleteMarkers": [], "IsTruncated": False},
        {"Bucket": BUCKET, "Prefix": prefix},
    )


def sent_batches(stubs: Stubs, *counts: int) -> list[list[dict[str, Any]]]:
    """Stub one SendMessageBatch per count (every entry accepted); the events each call sends."""
    captured: list[list[dict[str, Any]]] = []

    def capture(params: dict[str, Any], **kwargs: Any) -> None:
        captured.append([json.loads(entry["MessageBody"]) for entry in params["Entries"]])

    stubs.client("sqs").meta.events.register_first("provide-client-params.sqs.SendMessageBatch", capture)
    for count in counts:
        ids = [str(i) for i in range(count)]
        stubs["sqs"].add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": i, "MessageId": f"m{i}", "MD5OfMessageBody": "x"} for i in ids],
                "Failed": [],
            },
            {"QueueUrl": UPLOAD_QUEUE, "Entries": [{"Id": i, "MessageBody": ANY} for i in ids]},
        )
    return captured


def test_a_dry_run_lists_each_object_with_its_route_and_verdict_and_sends_nothing(
    stubs: Stubs, stack: Target, routes_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a versioned bucket: a new claims file, a coil file that already ran, a folder placeholder,
    # a key no route matches, an older version and a deleted object (neither is the latest)
    stub_ledger(stubs, [ran("raw/coil/Caravan.csv", 2)], [])
    stub_listing(
        stubs,
        [
            version("raw/claims/date=2026-11-30/a.csv", 1),
            version("raw/coil/Caravan.csv", 2),
            version("raw/coil/Caravan.csv", 1, latest=False),
            version("raw/coil/day1/", 3, size=0),
            version("raw/notes.txt", 4),
        ],
    )
    # When it is backfilled with --dry-run
    code, out, err = s3sm(["backfill", "raw/", "--dry-run", "--routes", str(routes_file)], capsys)
    # Then each latest object is listed once with what would happen, and no message is sent (the
    # Stubber fails on any SendMessageBatch)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"would start  raw/claims/date=2026-11-30/a.csv  route 1 -> {CLAIMS}",
        f"already ran  raw/coil/Caravan.csv  execution 0ldrun000001 (Succeeded, pipeline {PIPELINE})",
        "skip         raw/coil/day1/  folder placeholder (the key ends with '/')",
        "no route     raw/notes.txt",
        f"s3://{BUCKET}/raw/: 4 objects (ListObjectVersions, latest versions)",
        "  1 would start, 1 already ran, 1 skipped (the trigger would skip them), 1 match no route",
        "dry run: nothing was sent",
        "objects that already ran start nothing again "
        "(--rerun runs them anew; .venv/bin/s3sm retry resumes a failed run)",
    ]


def test_the_message_is_s3s_eventbridge_event_and_the_trigger_reads_the_upload_from_it(
    stubs: Stubs, stack: Target, routes_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one object that never ran
    stub_ledger(stubs, [], [])
    stub_listing(stubs, [version("raw/coil/Caravan.csv", 7)], prefix="raw/coil/")
    batches = sent_batches(stubs, 1)
    # When it is backfilled
    code, out, _ = s3sm(["backfill", "raw/coil/", "--routes", str(routes_file)], capsys)
    # Then the upload queue gets S3's "Object Created" event for that version, as the rule delivers it
    assert code == 0
    ((event,),) = batches
    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2026-11-30T09:30:05Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": "raw/coil/Caravan.csv", "size": 120, "etag": f"e{7:031d}", "version-id": "v7"},
            "reason": "s3sm backfill",
        },
    }
    # And the trigger's own parser reads the upload from it: the version (so the token of the live upload)
    (item,) = normalise(event)
    assert isinstance(item, ObjectEvent)
    assert (item.bucket, item.key, item.identity) == (BUCKET, "raw/coil/Caravan.csv", "versionId=v7")
    assert (
        out.splitlines()[0]
        == "listed 1: enqueued 1 (1 SendMessageBatch), already ran 0, skipped 0, no route 0"
    )


def test_25_objects_go_in_3_send_message_batch_calls_with_a_progress_line(
    stubs: Stubs, stack: Target, routes_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub_ledger(stubs, [], [])
    stub_listing(stubs, [version(f"raw/coil/part-{n:02d}.csv", n) for n in range(25)])
    bodies = sent_batches(stubs, 10, 10, 5)
    code, out, _ = s3sm(["backfill", "raw/", "--routes", str(routes_file)], capsys)
    assert code == 0
    assert [len(b) for b in bodies] == [10, 10, 5]
    keys = [e["detail"]["object"]["key"] for batch in bodies for e in batch]
    assert keys == [f"raw/coil/part-{n:02d}.csv" for n in range(25)]  # each once, in listing order
    lines = out.splitlines()
    assert lines[0] == "listed 25: enqueued 25 (3 SendMessageBatch), already ran 0, skipped 0, no route 0"
    assert (
        lines[2] == "  25 enqueued, 0 already ran, 0 skipped (the trigger would skip them), 0 match no route"
    )


def test_rerun_sends_what_already_ran_again_with_a_rerun_stamp_and_says_so(
    stubs: Stubs,
    stack: Target,
    routes_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a claims file the claims pipeline already ran
    key = "raw/claims/date=2026-11-30/a.csv"
    stub_ledger(stubs, [], [ran(key, 1, pipeline_arn=f"{PIPELINE_ARN.rsplit('/', 1)[0]}/{CLAIMS}")])
    stub_listing(stubs, [version(key, 1)], prefix="raw/claims/")
    batches = sent_batches(stubs, 1)
    # When it is backfilled with --rerun
    code, out, _ = s3sm(["backfill", "raw/claims/", "--rerun", "--routes", str(routes_file)], capsys)
    # Then it is sent again, marked as a rerun the trigger folds into the upload's identity
    assert code == 0
    ((event,),) = batches
    assert event["detail"]["rerun"] == "2026-12-01T12:00:00.000Z"
    lines = out.splitlines()
    assert lines[2] == (
        "  0 enqueued, 1 enqueued again, 0 already ran, 0 skipped (the trigger would skip them), "
        "0 match no route"
    )
    assert lines[3:5] == [
        "--rerun: objects that already ran were sent again, with detail.rerun = 2026-12-01T12:00:00.000Z:",
        "  each gets a new token and a new output folder",
    ]


def test_an_unversioned_bucket_is_listed_with_list_objects_v2_and_matched_by_etag(
    stubs: Stubs, stack: Target, routes_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an unversioned bucket whose object ran as a live upload (no version ID: S3 said "null")
    live = Upload(
        BUCKET, "raw/coil/Caravan.csv", "null", "0055AED6DCD90281E5", "9b2cf535f27731c974343645a3985328"
    )
    summary = {
        "PipelineExecutionArn": f"{PIPELINE_ARN}/execution/l1ve00000001",
        "PipelineExecutionStatus": "Failed",
        "PipelineExecutionDescription": describe(live),
    }
    stub_ledger(stubs, [summary], [])
    s3 = stubs["s3"]
    s3.add_response("get_bucket_versioning", {}, {"Bucket": BUCKET})
    contents = [
        {
            "Key": "raw/coil/Caravan.csv",
            "ETag": '"9b2cf535f27731c974343645a3985328"',
            "Size": 9,
            "LastModified": LANDED,
        },
        {
            "Key": "raw/coil/other.csv",
            "ETag": '"0000000000000000000000000000000a"',
            "Size": 9,
            "LastModified": LANDED,
        },
    ]
    s3.add_response(
        "list_objects_v2",
        {"Contents": contents, "IsTruncated": False},
        {"Bucket": BUCKET, "Prefix": "raw/coil/"},
    )
    # When it is backfilled (dry run)
    code, out, _ = s3sm(["backfill", "raw/coil/", "--dry-run", "--routes", str(routes_file)], capsys)
    # Then the object whose eTag ran "already ran" (its failed run is for s3sm retry), the other would start
    assert code == 0
    assert out.splitlines()[:3] == [
        f"already ran  raw/coil/Caravan.csv  execution l1ve00000001 (Failed, pipeline {PIPELINE})",
        "would start  raw/coil/other.csv  route 2 -> s3-sagemaker-trigger",
        f"s3://{BUCKET}/raw/coil/: 2 objects (ListObjectsV2)",
    ]


def test_since_and_until_keep_objects_last_modified_between_and_the_ledger_is_read_from_since(
    stubs: Stubs,
    stack: Target,
    routes_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    since = NOW - timedelta(days=2)
    stub_ledger(stubs, [], [], CreatedAfter=since)
    old, inside, late = (version(f"raw/coil/{n}.csv", n) for n in (1, 2, 3))
    old["LastModified"] = since - timedelta(seconds=1)
    late["LastModified"] = NOW - timedelta(minutes=30)
    stub_listing(stubs, [old, inside, late], prefix="raw/coil/")
    code, out, _ = s3sm(
        [
            "backfill",
            "raw/coil/",
            "--dry-run",
            "--since",
            "2d",
            "--until",
            "1h",
            "--routes",
            str(routes_file),
        ],
        capsys,
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("would start  raw/coil/2.csv")
    assert lines[1] == (
        f"s3://{BUCKET}/raw/coil/, last modified from 2026-11-29T12:00:00+00:00 to "
        "2026-12-01T11:00:00+00:00: 1 object (ListObjectVersions, latest versions)"
    )


def test_entries_sqs_failed_on_its_side_are_sent_again_and_the_senders_faults_reported(
    stubs: Stubs, stack: Target, routes_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub_ledger(stubs, [], [])
    stub_listing(stubs, [version(f"raw/coil/{n}.csv", n) for n in range(3)], prefix="raw/coil/")
    sqs = stubs["sqs"]
    sqs.add_response(
        "send_message_batch",
        {
            "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
            "Failed": [
                {"Id": "1", "SenderFault": False, "Code": "InternalError"},
                {"Id": "2", "SenderFault": True, "Code": "InvalidParameterValue", "Message": "too big"},
            ],
        },
        {"QueueUrl": UPLOAD_QUEUE, "Entries": [{"Id": str(i), "MessageBody": ANY} for i in range(3)]},
    )
    sqs.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "x"}], "Failed": []},
        {"QueueUrl": UPLOAD_QUEUE, "Entries": [{"Id": "1", "MessageBody": ANY}]},
    )
    code, out, _ = s3sm(["backfill", "raw/coil/", "--routes", str(routes_file)], capsys)
    assert code == 1  # done in part
    lines = out.splitlines()
    assert lines[0] == (
        "listed 3: enqueued 2 (2 SendMessageBatch), already ran 0, skipped 0, no route 0, NOT enqueued 1"
    )
    assert "not enqueued: raw/coil/2.csv: InvalidParameterValue: too big" in lines


def test_a_prefix_under_no_route_is_one_line_and_lists_nothing(
    stack: Target, routes_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # (no call is stubbed: the Stubber fails on any)
    code, out, err = s3sm(["backfill", "clean/", "--routes", str(routes_file)], capsys)
    assert (code, out) == (2, "")
    assert err == (
        "s3sm: error: 'clean/' lies under no route (routed prefixes: raw/claims/, raw/coil/): "
        "nothing to backfill\n"
    )


def test_an_invalid_routes_file_is_one_line_naming_the_route_and_field(
    stack: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "routes.yaml"
    bad.write_text("routes:\n  - prefix: raw/\n    pipline: x\n", encoding="utf-8")
    code, _, err = s3sm(["backfill", "raw/", "--routes", str(bad)], capsys)
    assert code == 2
    assert err.startswith(f"s3sm: error: {bad}: route 1 (prefix 'raw/'): unknown field 'pipline'")


def test_a_bad_since_is_one_line_naming_the_flag(stack: Target, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = s3sm(["backfill", "raw/", "--until", "tomorrow"], capsys)
    assert (code, err) == (2, "s3sm: error: --until 'tomorrow': expected 30m, 6h, 2d or an ISO 8601 time\n")


def test_the_default_routes_are_the_repositorys_routes_yaml(
    stubs: Stubs, stack: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the shipped routes.yaml (raw/ to the stack's own pipeline) and an object under raw/
    stubs["sagemaker"].add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": []},
        {"PipelineName": PIPELINE, **LEDGER_PAGE},
    )
    stub_listing(stubs, [version("raw/Caravan.csv", 1)])
    code, out, _ = s3sm(["backfill", "raw/", "--dry-run"], capsys)
    assert code == 0
    assert out.splitlines()[0] == f"would start  raw/Caravan.csv  route 1 -> {PIPELINE}"


class _Frozen(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _Frozen:
        return cls.fromtimestamp(NOW.timestamp(), tz)
