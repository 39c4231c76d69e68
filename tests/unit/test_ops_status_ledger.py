"""s3sm status with the ledger (the upload each execution ran, in its description), every AWS call stubbed:
the upload's own key instead of the snapshot path, each key's newest upload marked, and --key."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contract.ledger import Upload, describe
from ops import cli
from ops.status import Collector, Queues, render
from ops.target import Target
from ops.uploads import newest, recency, routed_pipelines, runs
from tests.support.ops import OUTPUTS, PIPELINE, PIPELINE_ARN, REGION, Stubs

BUCKET = OUTPUTS["DataBucketName"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = "raw/claims/date=2026-11-30/claims.csv"
CLAIMS_ARN = f"{PIPELINE_ARN.rsplit('/', 1)[0]}/claims-training"
LEDGER_PAGE = {"SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 100}


def upload(key: str, n: int, landed: str, *, rerun: str | None = None) -> Upload:
    return Upload(
        BUCKET,
        key,
        f"v{n}",
        f"00{n:016X}",
        f"e{n:031d}",
        5825,
        landed,
        f"s3://{BUCKET}/clean/{key.removeprefix('raw/')}/00{n:016X}/",
        rerun,
    )


def summary(arn: str, status: str, record: Upload | None, started: datetime) -> dict[str, Any]:
    found: dict[str, Any] = {
        "PipelineExecutionArn": arn,
        "PipelineExecutionStatus": status,
        "StartTime": started,
    }
    if record is not None:
        found["PipelineExecutionDescription"] = describe(record)
    return found


def stub_report(stubs: Stubs, output: str, written: int, rejected: int) -> None:
    prefix = output.removeprefix(f"s3://{BUCKET}/")
    stubs["s3"].add_response(
        "list_objects_v2",
        {"Contents": [{"Key": f"{prefix}report.json"}]},
        {"Bucket": BUCKET, "Prefix": prefix},
    )
    body = json.dumps({"totals": {"rows_written": written, "rows_rejected": rejected}}).encode()
    stubs["s3"].add_response(
        "get_object", {"Body": io.BytesIO(body)}, {"Bucket": BUCKET, "Key": f"{prefix}report.json"}
    )


def stub_described(stubs: Stubs, arn: str, record: Upload | None, started: datetime) -> None:
    described: dict[str, Any] = {
        "PipelineExecutionArn": arn,
        "PipelineExecutionStatus": "Succeeded",
        "CreationTime": started,
        "LastModifiedTime": started + timedelta(seconds=42),
    }
    if record is not None:
        described["PipelineExecutionDescription"] = describe(record)
    sagemaker = stubs["sagemaker"]
    sagemaker.add_response("describe_pipeline_execution", described, {"PipelineExecutionArn": arn})
    snapshot = f"s3://{BUCKET}/snapshot/claims/date=2026-11-30/{arn[-4:]}/claims.csv"
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "InputDataUrl", "Value": snapshot}]},
        {"PipelineExecutionArn": arn},
    )
    sagemaker.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": [{"StepName": "CleanData", "StepStatus": "Succeeded"}]},
        {"PipelineExecutionArn": arn},
    )


def test_status_shows_the_uploaded_key_not_the_snapshot_and_marks_each_keys_newest(
    stubs: Stubs, target: Target
) -> None:
    # Given three executions, newest first: the second upload of KEY, another key, the first upload of KEY
    second, other, first = (
        f"{PIPELINE_ARN}/execution/{name}" for name in ("sec0nd000002", "0ther0000003", "f1rst0000001")
    )
    runs = [
        (second, upload(KEY, 2, "2026-12-01T10:02:31.456Z")),
        (other, upload("raw/coil/Caravan.csv", 3, "2026-12-01T09:00:00.000Z")),
        (first, upload(KEY, 1, "2026-11-30T10:02:31.000Z")),
    ]
    stubs["sagemaker"].add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": [{"PipelineExecutionArn": arn} for arn, _ in runs]},
        {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 20},
    )
    for n, (arn, record) in enumerate(runs):
        stub_described(stubs, arn, record, NOW - timedelta(hours=n + 1))
        assert record.output is not None
        stub_report(stubs, record.output, 100 + n, 0)
    # When status shows them
    executions = Collector(target, now=NOW).recent(20)
    lines = render(target, executions, Queues(0, 0, None, 0)).splitlines()
    # Then each row names the key that was uploaded (not snapshot/...), the newest of each key marked
    rows = {
        line.split()[0]: line
        for line in lines
        if line[:12] in {"sec0nd000002", "0ther0000003", "f1rst0000001"}
    }
    assert rows["sec0nd000002"].endswith(f"* {KEY}")
    assert rows["0ther0000003"].endswith("* raw/coil/Caravan.csv")
    assert rows["f1rst0000001"].endswith(f"  {KEY}")  # superseded by the second upload: no mark
    assert "snapshot/" not in "\n".join(lines)
    assert (
        lines[lines.index(rows["sec0nd000002"]) + 1]
        == "  => clean/claims/date=2026-11-30/claims.csv/000000000000000002/"
    )
    assert lines[-2] == (
        "* newest upload of its key (event time, then S3 sequencer); "
        "all its uploads: .venv/bin/s3sm status --key KEY"
    )


def test_status_key_lists_every_upload_of_the_key_across_the_routed_pipelines_newest_marked(
    stubs: Stubs, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack that routes to its own pipeline and claims-training, and in their ledgers: two
    # uploads of KEY (one per pipeline, the newest a rerun), another key, and a run started by hand
    target = Target("prod", REGION, {**OUTPUTS, "RoutedPipelines": "claims-training"}, session=stubs)
    older = upload(KEY, 1, "2026-11-30T10:02:31.000Z")
    newer = upload(KEY, 2, "2026-12-01T10:02:31.456Z", rerun="2026-12-01T11:00:00.000Z")
    sagemaker = stubs["sagemaker"]
    sagemaker.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                summary(f"{PIPELINE_ARN}/execution/byhand000009", "Succeeded", None, NOW),
                summary(
                    f"{PIPELINE_ARN}/execution/0ther0000003", "Succeeded", upload("raw/x.csv", 3, "x"), NOW
                ),
                summary(f"{PIPELINE_ARN}/execution/f1rst0000001", "Failed", older, NOW - timedelta(days=1)),
            ]
        },
        {"PipelineName": PIPELINE, **LEDGER_PAGE},
    )
    sagemaker.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                summary(f"{CLAIMS_ARN}/execution/sec0nd000002", "Succeeded", newer, NOW)
            ]
        },
        {"PipelineName": "claims-training", **LEDGER_PAGE},
    )
    assert newer.output is not None
    assert older.output is not None
    stub_report(stubs, newer.output, 5822, 3)
    stub_report(stubs, older.output, 0, 5825)
    # When status --key shows the key
    code = cli.cmd_status(target, cli.parser().parse_args(["status", "--key", KEY]))
    # Then both uploads are listed, newest first and marked, with when each landed, its execution,
    # pipeline, status, output folder and rows
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:4] == [
        f"key {KEY} in bucket {BUCKET}",
        f"routed pipelines: {PIPELINE}, claims-training",
        "2 uploads, newest first:",
    ]
    header, _, newest, newest_output, oldest, oldest_output = lines[5:11]
    assert header.split() == ["LANDED", "EXECUTION", "PIPELINE", "STATUS", "ROWS", "OK/REJ"]
    assert newest.split() == [
        "*",
        "2026-12-01T10:02:31.456Z",
        "sec0nd000002",
        "claims-training",
        "Succeeded",
        "(rerun)",
        "5822/3",
    ]
    assert newest_output == "  => clean/claims/date=2026-11-30/claims.csv/000000000000000002/"
    assert oldest.split() == ["2026-11-30T10:02:31.000Z", "f1rst0000001", PIPELINE, "Failed", "0/5825"]
    assert oldest_output == "  => clean/claims/date=2026-11-30/claims.csv/000000000000000001/"
    assert max(len(line) for line in lines) <= 100
    assert (
        lines[-2]
        == "* newest upload of its key (event time, then S3 sequencer): its output is the key's current one"
    )


def test_status_key_json_gives_each_upload_in_full(
    stubs: Stubs, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    record = upload(KEY, 1, "2026-11-30T10:02:31.000Z")
    stubs["sagemaker"].add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": [summary(f"{PIPELINE_ARN}/execution/e1", "Executing", record, NOW)]},
        {"PipelineName": PIPELINE, **LEDGER_PAGE},
    )
    assert (
        cli.cmd_status(target, cli.parser().parse_args(["status", "--json", "--key", f"s3://{BUCKET}/{KEY}"]))
        == 0
    )
    (shown,) = json.loads(capsys.readouterr().out)["uploads"]
    assert shown["key"] == KEY
    assert (shown["status"], shown["rows_written"], shown["newest"]) == ("Executing", None, True)
    assert shown["output"] == record.output
    assert shown["version_id"] == "v1"


def test_a_key_with_no_run_says_so(stubs: Stubs, target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    stubs["sagemaker"].add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": []},
        {"PipelineName": PIPELINE, **LEDGER_PAGE},
    )
    assert cli.cmd_status(target, cli.parser().parse_args(["status", "--key", KEY])) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "no run of this key in the ledger (an upload the trigger skipped is in its log only)"
    )


def test_key_and_execution_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["status", "--key", KEY, "--execution", "abc"])
    assert exited.value.code == 2
    assert "--key or --execution (one of the two)" in capsys.readouterr().err


def test_the_newest_of_uploads_landing_in_one_second_is_the_greater_sequencer_right_padded() -> None:
    # Given two uploads of one key in the same second: S3 compares sequencers of different lengths
    # after right-padding the shorter with zeros, so "0055AED6DCD90281E6" is later than "0055AED6DCD90281E5A0"
    same = "2026-12-01T10:02:31Z"
    earlier = recency(same, "0055AED6DCD90281E5A0", NOW)
    later = recency(same, "0055AED6DCD90281E6", NOW - timedelta(minutes=1))
    assert newest([earlier, later], lambda _: KEY, lambda rank: rank) == {1}
    # And a rerun of one version (same event time and sequencer) is newer than the run before it
    rerun = recency(same, "0055AED6DCD90281E6", NOW)
    assert newest([later, rerun], lambda _: KEY, lambda rank: rank) == {1}


def test_a_routed_pipeline_that_does_not_exist_is_noted_and_the_others_are_read(stubs: Stubs) -> None:
    target = Target("prod", REGION, {**OUTPUTS, "RoutedPipelines": "claims-training"}, session=stubs)
    record = upload(KEY, 1, "2026-11-30T10:02:31.000Z")
    stubs["sagemaker"].add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                summary(f"{PIPELINE_ARN}/execution/f1rst0000001", "Executing", record, NOW)
            ]
        },
        {"PipelineName": PIPELINE, **LEDGER_PAGE},
    )
    stubs["sagemaker"].add_client_error(
        "list_pipeline_executions",
        service_error_code="ResourceNotFound",
        service_message="Pipeline 'claims-training' does not exist.",
        expected_params={"PipelineName": "claims-training", **LEDGER_PAGE},
    )
    notes: list[str] = []
    found = list(runs(target, routed_pipelines(target), note=notes.append))
    assert [r.execution_id for r in found] == ["f1rst0000001"]
    assert notes == ["note: routed pipeline claims-training does not exist: it has no executions"]


def test_status_lists_the_recent_runs_of_every_routed_pipeline_newest_first(stubs: Stubs) -> None:
    # Given a stack whose routes also start another team's pipeline, each with one recent run
    target = Target("prod", REGION, {**OUTPUTS, "RoutedPipelines": "claims-training"}, session=stubs)
    own, claims = f"{PIPELINE_ARN}/execution/0wn000000001", f"{CLAIMS_ARN}/execution/c1aims000002"
    page = {"SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 2}
    stubs["sagemaker"].add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": [summary(own, "Succeeded", None, NOW - timedelta(hours=2))]},
        {"PipelineName": PIPELINE, **page},
    )
    stubs["sagemaker"].add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": [summary(claims, "Executing", None, NOW - timedelta(hours=1))]},
        {"PipelineName": "claims-training", **page},
    )
    for n, arn in enumerate((claims, own)):
        stub_described(stubs, arn, upload(KEY, n, "2026-12-01T10:00:00Z"), NOW - timedelta(hours=n + 1))
        stub_report(stubs, upload(KEY, n, "2026-12-01T10:00:00Z").output or "", 10, 0)
    # When status lists the two most recent
    executions = Collector(target, now=NOW).recent(2)
    # Then both pipelines' runs are there, the newer (the claims pipeline's) first
    assert [e.arn for e in executions] == [claims, own]
