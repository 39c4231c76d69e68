"""s3sm against a deployed stack, with every AWS call stubbed (botocore Stubber, exact parameters):
status, retry, redrive, and the bad input that must end in one clear line."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY

from etl.cli import main as etl_main
from ops import cli, dlq
from ops.retry import DATA_ERROR_EXIT_STATUS, is_data_error, token
from ops.status import Collector, render
from ops.target import Target
from ops.text import shorten, table
from tests.support.ops import DEAD_LETTERS, OUTPUTS, PIPELINE, PIPELINE_ARN, REGION, UPLOAD_QUEUE, Stubs

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BUCKET = OUTPUTS["DataBucketName"]
LONG_KEY = "raw/partner-uploads/2026/december/first-week/insurance-company-benchmark/Caravan-2026-12-01.csv"
FAILED = f"{PIPELINE_ARN}/execution/f41l3d0000aa"
SUCCEEDED = f"{PIPELINE_ARN}/execution/5ucc33d000bb"
REASON = "Step CleanData failed: no valid rows: all 3 rows were rejected; see rejects.csv"


def out_prefix(execution: str) -> str:
    return f"clean/{LONG_KEY.removeprefix('raw/')}/{execution[-4:]}/"


def stub_execution(stubs: Stubs, arn: str, status: str, *, reason: str | None = None) -> None:
    sagemaker = stubs["sagemaker"]
    described: dict[str, Any] = {
        "PipelineArn": PIPELINE_ARN,
        "PipelineExecutionArn": arn,
        "PipelineExecutionStatus": status,
        "CreationTime": NOW - timedelta(minutes=10),
        "LastModifiedTime": NOW - timedelta(minutes=10, seconds=-42),
    }
    if reason:
        described["FailureReason"] = reason
    sagemaker.add_response("describe_pipeline_execution", described, {"PipelineExecutionArn": arn})
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {
            "PipelineParameters": [
                {"Name": "InputDataUrl", "Value": f"s3://{BUCKET}/{LONG_KEY}"},
                {"Name": "OutputDataUrl", "Value": f"s3://{BUCKET}/{out_prefix(arn)}"},
            ]
        },
        {"PipelineExecutionArn": arn},
    )
    step: dict[str, Any] = {"StepName": "CleanData", "StepStatus": "Failed" if reason else status}
    if reason:
        step["FailureReason"] = "no valid rows: all 3 rows were rejected; see rejects.csv"
    sagemaker.add_response(
        "list_pipeline_execution_steps", {"PipelineExecutionSteps": [step]}, {"PipelineExecutionArn": arn}
    )


def stub_report(stubs: Stubs, arn: str, totals: dict[str, int] | None) -> None:
    s3 = stubs["s3"]
    prefix = out_prefix(arn)
    contents = [{"Key": f"{prefix}full_data.csv"}, {"Key": f"{prefix}rejects.csv"}]
    if totals is not None:
        contents.append({"Key": f"{prefix}report.json"})
    s3.add_response("list_objects_v2", {"Contents": contents}, {"Bucket": BUCKET, "Prefix": prefix})
    if totals is not None:
        body = json.dumps({"status": "succeeded", "totals": totals}).encode()
        s3.add_response(
            "get_object", {"Body": io.BytesIO(body)}, {"Bucket": BUCKET, "Key": f"{prefix}report.json"}
        )


def stub_queues(stubs: Stubs, *, waiting: int, oldest: float | None, dead: int, now: Any = NOW) -> None:
    sqs = stubs["sqs"]
    sqs.add_response(
        "get_queue_attributes",
        {
            "Attributes": {
                "ApproximateNumberOfMessages": str(waiting),
                "ApproximateNumberOfMessagesNotVisible": "2",
            }
        },
        {
            "QueueUrl": UPLOAD_QUEUE,
            "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        },
    )
    points = [] if oldest is None else [{"Timestamp": NOW - timedelta(minutes=2), "Maximum": oldest}]
    stubs["cloudwatch"].add_response(
        "get_metric_statistics",
        {"Datapoints": points},
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Dimensions": [{"Name": "QueueName", "Value": "prod-UploadQueue-AbC123"}],
            "StartTime": now - timedelta(minutes=15) if now is NOW else ANY,
            "EndTime": now,
            "Period": 60,
            "Statistics": ["Maximum"],
        },
    )
    sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"ApproximateNumberOfMessages": str(dead)}},
        {"QueueUrl": DEAD_LETTERS, "AttributeNames": ["ApproximateNumberOfMessages"]},
    )


def stub_recent(stubs: Stubs) -> None:
    stubs["sagemaker"].add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                {"PipelineExecutionArn": FAILED, "PipelineExecutionStatus": "Failed"},
                {"PipelineExecutionArn": SUCCEEDED, "PipelineExecutionStatus": "Succeeded"},
            ]
        },
        {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 20},
    )
    stub_execution(stubs, FAILED, "Failed", reason=REASON)
    stub_report(stubs, FAILED, None)
    stub_execution(stubs, SUCCEEDED, "Succeeded")
    stub_report(stubs, SUCCEEDED, {"rows_read": 5825, "rows_written": 5822, "rows_rejected": 3})


# -- status --------------------------------------------------------------------------------------------


def test_middle_shortening_keeps_the_start_and_the_file_name() -> None:
    short = shorten(f"s3://{BUCKET}/{LONG_KEY}", 40)
    assert len(short) == 40
    assert short.startswith("s3://prod-dat")
    assert short.endswith("Caravan-2026-12-01.csv")
    assert "…" in short
    assert shorten("short", 40) == "short"


def test_a_table_gives_up_width_from_the_widest_shrinkable_column() -> None:
    lines = table(["A", "B"], [["x" * 10, "y" * 200]], width=60, shrink=[1])
    assert max(len(line) for line in lines) == 60
    assert lines[2].startswith("x" * 10)  # the column that may not shrink is whole


def test_status_shows_each_execution_its_failure_rows_and_the_queues_in_100_columns(
    stubs: Stubs, target: Target
) -> None:
    # Given a failed and a succeeded execution, uploads waiting and one dead letter
    stub_recent(stubs)
    stub_queues(stubs, waiting=7, oldest=540.0, dead=1)
    # When status collects and renders them
    collector = Collector(target, now=NOW)
    executions, queues = collector.recent(20), collector.queues()
    text = render(target, executions, queues)
    # Then every line fits, the failure is named with its step, and the rows come from report.json
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[2] == "uploads waiting: 7 (oldest: 9 min); in flight or backing off: 2; dead letters: 1"
    failed_row = next(line for line in lines if line.startswith("f41l3d0000aa"))
    assert failed_row.split()[1] == "Failed"
    why = lines[lines.index(failed_row) + 1]
    assert why == "  -> CleanData: no valid rows: all 3 rows were rejected; see rejects.csv"
    succeeded_row = next(line for line in lines if line.startswith("5ucc33d000bb"))
    assert "5822/3" in succeeded_row
    assert "42 s" in succeeded_row
    assert "Caravan-2026-12-01.csv" in failed_row  # the end of the upload's key survives the shortening
    assert f"s3://{BUCKET}/" not in text  # the bucket is in the header, once
    output = lines[lines.index(succeeded_row) + 1]
    assert output.startswith("  => clean/partner-uploads/")  # where to look: 108 characters made 100,
    assert output.endswith("/Caravan-2026-12-01.csv/00bb/")  # the middle gave way
    assert len(output) == 100


def test_status_json_gives_every_value_in_full(
    stubs: Stubs, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    stub_recent(stubs)
    stub_queues(stubs, waiting=0, oldest=None, dead=0, now=ANY)
    assert cli.cmd_status(target, cli.parser().parse_args(["status", "--json"])) == 0
    shown = json.loads(capsys.readouterr().out)
    failed, succeeded = shown["executions"]
    assert failed["upload"] == f"s3://{BUCKET}/{LONG_KEY}"
    assert failed["output"] == f"s3://{BUCKET}/{out_prefix(FAILED)}"
    assert (failed["failed_step"], failed["reason"]) == ("CleanData", REASON)
    assert (succeeded["rows_written"], succeeded["rows_rejected"], succeeded["seconds"]) == (5822, 3, 42.0)
    assert shown["queues"] == {"waiting": 0, "in_flight": 2, "oldest_seconds": None, "dead_letters": 0}


# -- retry ---------------------------------------------------------------------------------------------


def stub_describe(stubs: Stubs, arn: str, status: str, changed: datetime) -> None:
    stubs["sagemaker"].add_response(
        "describe_pipeline_execution",
        {
            "PipelineExecutionArn": arn,
            "PipelineExecutionStatus": status,
            "FailureReason": REASON if status == "Failed" else "",
            "LastModifiedTime": changed,
        },
        {"PipelineExecutionArn": arn},
    )


SNAPSHOT = f"s3://{BUCKET}/snapshot/3f9a0c1d2e4b5a6978808a9b0c1d2e3f/00675C1B3F2A8E4D10/Caravan.csv"
AWS_DATA_ERROR = "AlgorithmError: , exit code: 1"  # SageMaker's reason for a job that exited 1


def stub_retry_checks(
    stubs: Stubs,
    arn: str,
    *,
    step_failure: str = "InternalServerError: try again",
    input_left: bool = True,
    include_data_errors: bool = False,
) -> None:
    """What retry reads before retrying: the failed step's reason, then whether the input is still there
    (not looked at for a data error, unless data errors are included)."""
    stubs["sagemaker"].add_response(
        "list_pipeline_execution_steps",
        {
            "PipelineExecutionSteps": [
                {"StepName": "CleanData", "StepStatus": "Failed", "FailureReason": step_failure}
            ]
        },
        {"PipelineExecutionArn": arn},
    )
    stubs["sagemaker"].add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "InputDataUrl", "Value": SNAPSHOT}]},
        {"PipelineExecutionArn": arn},
    )
    if is_data_error(step_failure) and not include_data_errors:
        return
    prefix = SNAPSHOT.removeprefix(f"s3://{BUCKET}/")
    listed = {"KeyCount": 1, "Contents": [{"Key": prefix, "Size": 10}]} if input_left else {"KeyCount": 0}
    stubs["s3"].add_response("list_objects_v2", listed, {"Bucket": BUCKET, "Prefix": prefix, "MaxKeys": 1})


def test_retry_retries_a_failed_execution_with_a_token_of_that_failure(
    stubs: Stubs, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = NOW - timedelta(minutes=3)
    stub_describe(stubs, FAILED, "Failed", changed)
    stub_retry_checks(stubs, FAILED)
    stubs["sagemaker"].add_response(
        "retry_pipeline_execution",
        {"PipelineExecutionArn": FAILED},
        {"PipelineExecutionArn": FAILED, "ClientRequestToken": token(FAILED, changed)},
    )
    code = cli.cmd_retry(target, cli.parser().parse_args(["retry", "f41l3d0000aa"]))
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        f"f41l3d0000aa: retried (it had failed: {REASON})",
        "1 of 1 retried",
    ]


def test_the_same_failure_gets_the_same_token_and_a_new_failure_a_new_one() -> None:
    first = token(FAILED, NOW)
    assert first == token(FAILED, NOW)
    assert first != token(FAILED, NOW + timedelta(seconds=1))
    assert 32 <= len(first) <= 128


def test_retry_of_an_execution_that_did_not_fail_says_so_and_calls_nothing_else(
    stubs: Stubs, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    stub_describe(stubs, SUCCEEDED, "Succeeded", NOW)
    code = cli.cmd_retry(target, cli.parser().parse_args(["retry", SUCCEEDED]))
    assert code == 1  # Stubber fails the test on any call not stubbed (no RetryPipelineExecution)
    assert capsys.readouterr().out.splitlines()[0] == (
        "5ucc33d000bb: is Succeeded, not Failed: not retried, nothing changed"
    )


def test_retry_failed_since_retries_only_the_failed_ones_created_since_then(
    stubs: Stubs, target: Target, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ops.retry.datetime", _FrozenDatetime)
    since = NOW - timedelta(hours=6)
    stubs["sagemaker"].add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                {"PipelineExecutionArn": FAILED, "PipelineExecutionStatus": "Failed"},
                {"PipelineExecutionArn": SUCCEEDED, "PipelineExecutionStatus": "Succeeded"},
            ]
        },
        {"PipelineName": PIPELINE, "CreatedAfter": since, "SortBy": "CreationTime", "SortOrder": "Ascending"},
    )
    stub_describe(stubs, FAILED, "Failed", NOW)
    stub_retry_checks(stubs, FAILED)
    stubs["sagemaker"].add_response(
        "retry_pipeline_execution",
        {"PipelineExecutionArn": FAILED},
        {"PipelineExecutionArn": FAILED, "ClientRequestToken": token(FAILED, NOW)},
    )
    assert cli.cmd_retry(target, cli.parser().parse_args(["retry", "--failed-since", "6h"])) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 of 1 retried"


def test_retry_names_a_run_whose_input_expired_and_does_not_retry_it(
    stubs: Stubs, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failed execution whose snapshot the lifecycle rule has deleted (SnapshotRetentionDays)
    stub_describe(stubs, FAILED, "Failed", NOW)
    stub_retry_checks(stubs, FAILED, input_left=False)

    # When it is retried (no RetryPipelineExecution stubbed: the Stubber fails the test on one)
    code = cli.cmd_retry(target, cli.parser().parse_args(["retry", "f41l3d0000aa"]))

    # Then it is named, with why and what to do, and the command says it was done in part
    assert code == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"f41l3d0000aa: its input {SNAPSHOT} no longer exists (snapshots expire after the stack's "
        "SnapshotRetentionDays): not retried; upload the data again to run it"
    )
    assert lines[-1] == "0 of 1 retried; 0 failed on their data; 1 without input"


@pytest.mark.parametrize(
    "reason",
    [
        AWS_DATA_ERROR,
        "AlgorithmError: etl: error: broken.csv: unrecognised first line 'not,a,coil,row', exit code: 1",
    ],
)
def test_retry_skips_a_run_that_failed_on_its_data_and_hints_to_upload_corrected_data(
    stubs: Stubs, target: Target, capsys: pytest.CaptureFixture[str], reason: str
) -> None:
    # Given a failed execution whose ETL exited with status 1 (bad input), as AWS and the local runner say
    stub_describe(stubs, FAILED, "Failed", NOW)
    stub_retry_checks(stubs, FAILED, step_failure=reason)

    # When it is retried without --include-data-errors
    code = cli.cmd_retry(target, cli.parser().parse_args(["retry", "f41l3d0000aa"]))

    # Then it is not retried: it would fail the same way; the line says so and what to do instead
    assert code == 1
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("f41l3d0000aa: failed on its data (AlgorithmError: ")
    assert line.endswith(
        "not retried, it would fail the same way; upload corrected data to run it "
        "(--include-data-errors retries it anyway)"
    )


def test_include_data_errors_retries_a_data_failure_anyway(
    stubs: Stubs, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a data failure whose input is still there
    stub_describe(stubs, FAILED, "Failed", NOW)
    stub_retry_checks(stubs, FAILED, step_failure=AWS_DATA_ERROR, include_data_errors=True)
    stubs["sagemaker"].add_response(
        "retry_pipeline_execution",
        {"PipelineExecutionArn": FAILED},
        {"PipelineExecutionArn": FAILED, "ClientRequestToken": token(FAILED, NOW)},
    )

    # When it is retried with --include-data-errors, Then it is
    args = cli.parser().parse_args(["retry", "--include-data-errors", "f41l3d0000aa"])
    assert cli.cmd_retry(target, args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 of 1 retried"


@pytest.mark.parametrize(
    ("reason", "data"),
    [
        (AWS_DATA_ERROR, True),
        ("AlgorithmError: , exit code: 2", False),  # bad arguments: a definition problem, not the data
        ("AlgorithmError: , exit code: 137", False),  # killed (out of memory)
        ("AlgorithmError: see log, exit code: 1 on algo-2", True),
        ("ClientError: No S3 objects found under S3 URL", False),
        ("InternalServerError: We encountered an internal error.", False),
        (None, False),
    ],
)
def test_a_data_error_is_the_etls_exit_status_1_in_the_step_failure(reason: str | None, data: bool) -> None:
    assert is_data_error(reason) is data


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _FrozenDatetime:
        return cls.fromtimestamp(NOW.timestamp(), tz)


# -- redrive -------------------------------------------------------------------------------------------


def test_redrive_move_starts_sqs_native_redrive_of_the_dead_letter_queue(
    stubs: Stubs, target: Target
) -> None:
    arn = f"arn:aws:sqs:{REGION}:111122223333:prod-TriggerDeadLetterQueue-XyZ789"
    uploads = f"arn:aws:sqs:{REGION}:111122223333:prod-UploadQueue-AbC123"
    sqs = stubs["sqs"]
    sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": arn}},
        {"QueueUrl": DEAD_LETTERS, "AttributeNames": ["QueueArn"]},
    )
    sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": uploads}},
        {"QueueUrl": UPLOAD_QUEUE, "AttributeNames": ["QueueArn"]},
    )
    # Then the messages go back to the upload queue, named: an upload EventBridge could not deliver
    # has no source queue SQS could return it to
    sqs.add_response(
        "start_message_move_task",
        {"TaskHandle": "handle-1"},
        {"SourceArn": arn, "DestinationArn": uploads, "MaxNumberOfMessagesPerSecond": 5},
    )
    assert dlq.move(target, rate=5) == {"source": arn, "task_handle": "handle-1"}


# -- bad input: one clear line, exit 2, no traceback ---------------------------------------------------


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def no_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "runtime.json"
    monkeypatch.setattr("ops.target.STATE_FILE", state)
    return state


@pytest.fixture
def deployed(stubs: Stubs, monkeypatch: pytest.MonkeyPatch, no_runtime: Path) -> Stubs:
    """``--stack`` finds the stack through this stubbed session."""
    stubs["cloudformation"]
    monkeypatch.setattr(boto3.session, "Session", lambda **kwargs: stubs)
    return stubs


def test_a_stack_that_does_not_exist_is_one_line(deployed: Stubs, capsys: pytest.CaptureFixture[str]) -> None:
    deployed["cloudformation"].add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message="Stack with id nope does not exist",
        expected_params={"StackName": "nope"},
    )
    code, out, err = run_main(["status", "--stack", "nope"], capsys)
    assert (code, out) == (2, "")
    assert err == f"s3sm: error: stack nope does not exist in {REGION}\n"


def test_a_missing_permission_is_one_line_naming_it(
    deployed: Stubs, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = [{"OutputKey": k, "OutputValue": v} for k, v in OUTPUTS.items()]
    deployed["cloudformation"].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "prod",
                    "CreationTime": NOW,
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": outputs,
                }
            ]
        },
        {"StackName": "prod"},
    )
    message = (
        "User: arn:aws:iam::111122223333:user/ops is not authorized to perform: "
        f"sagemaker:ListPipelineExecutions on resource: {PIPELINE_ARN}"
    )
    deployed["sagemaker"].add_client_error(
        "list_pipeline_executions", service_error_code="AccessDeniedException", service_message=message
    )
    code, _, err = run_main(["status", "--stack", "prod"], capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert err == (
        f"s3sm: error: listing the executions of pipeline {PIPELINE}: permission missing "
        f"(AccessDeniedException): {message}\n"
    )


def test_local_without_a_running_runtime_is_one_line(
    no_runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["retry", "--local", "abc"], capsys)
    assert (code, err) == (
        2,
        "s3sm: error: no local runtime is running: start one with `make up` (python -m local up)\n",
    )


def test_a_runtime_whose_process_is_gone_counts_as_not_running(
    no_runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = 2**22 + 12345  # above the default pid_max: no such process
    assert not _alive(dead)
    no_runtime.write_text(json.dumps({"endpoint": "http://127.0.0.1:1", "region": "us-east-1", "pid": dead}))
    code, _, err = run_main(["status"], capsys)
    assert code == 2
    assert err.startswith("s3sm: error: no stack given and no local runtime running")


def test_a_bad_since_is_one_line(
    target: Target, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ops.cli.resolve", lambda **kwargs: target)
    code, _, err = run_main(["retry", "--failed-since", "yesterday"], capsys)
    assert (code, err) == (
        2,
        "s3sm: error: --failed-since 'yesterday': expected 30m, 6h, 2d or an ISO 8601 time\n",
    )


def test_retry_needs_executions_or_a_since(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["retry"])
    assert exited.value.code == 2
    assert "name executions or give --failed-since WHEN" in capsys.readouterr().err


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def test_an_html_error_page_is_one_line_not_the_page(stubs: Stubs, target: Target) -> None:
    page = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    stubs["sqs"].add_client_error(
        "get_queue_attributes", service_error_code="500", service_message=page, http_status_code=500
    )
    from ops.target import OpsError

    with pytest.raises(OpsError) as raised:
        dlq.move(target, rate=None)
    assert str(raised.value) == (
        f"starting the redrive of {DEAD_LETTERS} (StartMessageMoveTask): the endpoint answered HTTP 500 "
        "without an AWS error"
    )


def test_redrive_move_on_the_local_runtime_says_it_cannot(stubs: Stubs) -> None:
    from ops.target import OpsError

    local = Target("local", REGION, OUTPUTS, endpoint="http://127.0.0.1:1", local=True, session=stubs)
    with pytest.raises(OpsError, match="moto does not implement StartMessageMoveTask"):
        dlq.move(local, rate=None)


def test_an_empty_queue_shows_no_stale_age(target: Target) -> None:
    from ops.status import Queues

    text = render(target, [], Queues(waiting=0, in_flight=0, oldest_seconds=75.0, dead_letters=0))
    assert text.splitlines()[2] == "uploads waiting: 0; in flight or backing off: 0; dead letters: 0"


def test_a_stack_the_local_runtime_does_not_have_is_one_line(
    no_runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = {"endpoint": "http://127.0.0.1:1", "region": "us-east-1", "pid": os.getpid()}
    no_runtime.write_text(json.dumps({**state, "stacks": [{"name": "s3-sagemaker-trigger-local"}]}))
    code, _, err = run_main(["status", "--local", "--stack", "nope"], capsys)
    assert (code, err) == (
        2,
        "s3sm: error: the local runtime has no stack nope (it has: s3-sagemaker-trigger-local)\n",
    )


def test_redrive_reports_each_dead_letter_with_the_stacks_own_rules_and_releases_it(
    stubs: Stubs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a stack in marker mode built with routes under landing/, and two dead letters
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - prefix: landing/\n", encoding="utf-8")
    outputs = {
        **OUTPUTS,
        "CleanDataUrl": f"s3://{BUCKET}/clean/",
        "SnapshotDataUrl": f"s3://{BUCKET}/snapshot/",
        "TriggerMode": "marker",
        "MarkerName": "_SUCCESS",
    }
    stack = Target("prod", REGION, outputs, session=stubs)

    def message(n: int, key: str) -> dict[str, Any]:
        record = {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1, "sequencer": f"0{n}"}},
        }
        return {
            "MessageId": f"m{n}",
            "ReceiptHandle": f"h{n}",
            "Body": json.dumps({"Records": [record]}),
            "Attributes": {"SentTimestamp": "1764580000000", "ApproximateReceiveCount": "293"},
        }

    receive = {
        "QueueUrl": DEAD_LETTERS,
        "MaxNumberOfMessages": 10,
        "VisibilityTimeout": dlq.VISIBILITY_TIMEOUT,
        "WaitTimeSeconds": dlq.WAIT_SECONDS,
        "MessageSystemAttributeNames": ["All"],
    }
    sqs = stubs["sqs"]
    sqs.add_response(
        "receive_message",
        {"Messages": [message(1, "landing/day1/_SUCCESS"), message(2, "landing/day1/a.csv")]},
        receive,
    )
    sqs.add_response("receive_message", {"Messages": []}, receive)
    sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"ApproximateNumberOfMessages": "0"}},
        {"QueueUrl": DEAD_LETTERS, "AttributeNames": ["ApproximateNumberOfMessages"]},
    )
    releases = [
        {"Id": "0", "ReceiptHandle": "h1", "VisibilityTimeout": 0},
        {"Id": "1", "ReceiptHandle": "h2", "VisibilityTimeout": 0},
    ]
    sqs.add_response(
        "change_message_visibility_batch",
        {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []},
        {"QueueUrl": DEAD_LETTERS, "Entries": releases},
    )
    # When redrive reports them
    code = cli.cmd_redrive(stack, cli.parser().parse_args(["redrive", "--json", "--routes", str(routes)]))
    # Then the marker is runnable and the data file a skip (marker mode), and nothing was moved
    shown = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(r["key"], r["verdict"]) for r in shown["waiting"]] == [
        ("landing/day1/_SUCCESS", "runnable"),
        ("landing/day1/a.csv", "skip"),
    ]
    assert shown["move"] is None


def test_the_etl_exits_with_the_status_retry_reads_as_a_data_error(tmp_path: Path) -> None:
    # Given input the ETL refuses (no COIL rows)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.csv").write_text("not,a,coil,row\n", encoding="utf-8")

    # When it runs, Then it exits with the status `s3sm retry` treats as a failure on the data
    args = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    assert etl_main(args) == DATA_ERROR_EXIT_STATUS
