"""s3sm and the notifications through the local runtime: a failed run's status-change event goes through
the template's own rule (pattern and input transformer) to the stand-in topic queue, word for word; status,
retry, redrive and backfill work on the runtime as on a stack."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from coilgen import generate
from local.cli import runtime_state
from local.emulator import DETAIL_TYPE, SOURCE
from local.runtime import Runtime
from tests.support.ops import s3sm
from tests.support.project import DOCUMENTED_STATUS_EVENT
from tests.support.runtime import Recorder, finished, running

pytestmark = pytest.mark.e2e
STACK = "ops-local"


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def runtime(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with running(STACK, recorder, tmp_path_factory.mktemp("scratch")) as rt:
        yield rt


@pytest.fixture
def state(runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """runtime.json of this runtime, where s3sm looks for it."""
    found = runtime_state(runtime)
    path = tmp_path / "runtime.json"
    path.write_text(json.dumps(found), encoding="utf-8")
    monkeypatch.setattr("ops.target.STATE_FILE", path)
    return found


def executions(runtime: Runtime) -> list[dict[str, Any]]:
    name = runtime.stacks[0].parameters["PipelineName"]
    summaries: list[dict[str, Any]] = boto3.client("sagemaker").list_pipeline_executions(PipelineName=name)[
        "PipelineExecutionSummaries"
    ]
    return summaries


def wait_for(condition: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s")


def run(runtime: Runtime, key: str, body: bytes) -> str:
    """Start the pipeline on an object as the trigger does (its tests cover how uploads get there); the
    key is outside the raw prefix, so the trigger starts nothing else."""
    bucket = runtime.stacks[0].ref("DataBucket")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    arn: str = boto3.client("sagemaker").start_pipeline_execution(
        PipelineName=runtime.stacks[0].parameters["PipelineName"],
        PipelineExecutionDescription=f"Cleans s3://{bucket}/{key}",  # the trigger describes each run
        PipelineParameters=[
            {"Name": "InputDataUrl", "Value": f"s3://{bucket}/{key}"},
            {"Name": "OutputDataUrl", "Value": f"s3://{bucket}/clean/{key}/1/"},
        ],
    )["PipelineExecutionArn"]
    return arn


def status_of(arn: str) -> str:
    described = boto3.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)
    return str(described["PipelineExecutionStatus"])


@pytest.fixture(scope="module")
def failed(runtime: Runtime, recorder: Recorder) -> str:
    """The ARN of an execution that failed: its input is not COIL 2000 data."""
    arn = run(runtime, "ops-input/broken.csv", b"not,a,coil,row\n" * 3)
    wait_for(lambda: status_of(arn) == "Failed")
    wait_for(lambda: recorder.of("topic-notification"), timeout=15)
    return arn


def sentence(execution_arn: str, status: str, pipeline: str) -> str:
    described = boto3.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    return (
        f"Pipeline {pipeline}: execution {execution_arn} is {status}. "
        f"It ran: {described['PipelineExecutionDescription']}. "
        f"See why: .venv/bin/s3sm status --stack {STACK} --execution {execution_arn} "
        "(or the SageMaker console, Pipelines: "
        "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/pipelines)"
    )


def test_a_failed_run_reaches_the_topic_as_one_sentence(
    runtime: Runtime, recorder: Recorder, failed: str
) -> None:
    pipeline = runtime.stacks[0].parameters["PipelineName"]
    (notification,) = recorder.of("topic-notification")
    assert notification["topic"] == "NotificationTopic"
    assert notification["message"] == sentence(failed, "Failed", pipeline)


def test_the_runtime_sends_sagemakers_event_for_each_transition(
    runtime: Runtime, recorder: Recorder, failed: str
) -> None:
    # Given a rule of our own on every pipeline event, to a queue (the template's rule only passes Failed)
    events, sqs = boto3.client("events"), boto3.client("sqs")
    url = sqs.create_queue(QueueName="ops-all-pipeline-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="ops-all", EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]})
    )
    events.put_targets(Rule="ops-all", Targets=[{"Id": "q", "Arn": arn}])
    # When a good upload runs
    data = generate(Path(runtime.scratch_dir or "/tmp") / "good", layout="named", rows=60, seed=5)
    execution = run(runtime, "ops-input/good.csv", (data.out_dir / "Caravan.csv").read_bytes())
    wait_for(lambda: status_of(execution) == "Succeeded")
    # Then SageMaker's events arrive: Executing, then Succeeded after Executing, in the real detail shape
    received: list[dict[str, Any]] = []

    def two() -> bool:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            received.append(json.loads(m["Body"]))
        return len([e for e in received if e["detail"]["pipelineExecutionArn"] == execution]) >= 2

    wait_for(two, timeout=15)
    mine = [e for e in received if e["detail"]["pipelineExecutionArn"] == execution]
    assert [e["detail"]["currentPipelineExecutionStatus"] for e in mine] == ["Executing", "Succeeded"]
    assert mine[1]["detail"]["previousPipelineExecutionStatus"] == "Executing"
    assert mine[1]["source"] == "aws.sagemaker"
    assert mine[1]["detail-type"] == DETAIL_TYPE
    assert mine[1]["detail"]["pipelineArn"] == runtime.stacks[0].outputs["PipelineArn"]
    # (the fields of the event SageMaker documents)
    documented = json.loads(DOCUMENTED_STATUS_EVENT.read_text(encoding="utf-8"))
    assert set(mine[1]["detail"]) == set(documented["detail"])
    # and without NotifyOnSuccess, the topic heard nothing of it
    assert runtime.notifications is not None
    runtime.notifications.drain()
    messages = [d["message"] for d in recorder.of("topic-notification")]
    assert messages
    assert not [m for m in messages if execution in m]


def test_status_on_the_runtime_names_the_failure_in_100_columns(
    state: dict[str, Any], failed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = s3sm(["status"], capsys)  # the running runtime is the default
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"stack {STACK} (local runtime at http://127.0.0.1:")
    assert lines[2].startswith("uploads waiting: ")
    assert "(oldest: unknown" not in lines[2]  # the runtime publishes CloudWatch's SQS age metric
    assert max(len(line) for line in lines) <= 100
    row = next(line for line in lines if line.startswith(failed.rsplit("/", 1)[-1]))
    assert row.split()[1] == "Failed"
    assert lines[lines.index(row) + 1].startswith("  -> CleanData: ")
    code, out, _ = s3sm(["status", "--json", "--execution", failed], capsys)
    (shown,) = json.loads(out)["executions"]
    assert (shown["status"], shown["failed_step"]) == ("Failed", "CleanData")
    assert "broken.csv: unrecognised first line 'not,a,coil,row'" in shown["reason"]


def test_retry_runs_a_failed_execution_again_and_leaves_others_alone(
    runtime: Runtime,
    recorder: Recorder,
    state: dict[str, Any],
    failed: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    notified = len(recorder.of("topic-notification"))
    # it failed on its data (the ETL's exit status 1): named and skipped unless asked for
    code, out, err = s3sm(["retry", "--local", failed.rsplit("/", 1)[-1]], capsys)
    assert (code, err) == (1, "")
    assert out.splitlines()[0].startswith(
        f"{failed.rsplit('/', 1)[-1]}: failed on its data (AlgorithmError: "
    )
    assert "upload corrected data to run it" in out.splitlines()[0]
    code, out, err = s3sm(["retry", "--local", "--include-data-errors", failed.rsplit("/", 1)[-1]], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[0].startswith(f"{failed.rsplit('/', 1)[-1]}: retried (it had failed: ")
    # it runs again (and fails again, on the same bytes): a second notification, after Executing
    wait_for(lambda: len(recorder.of("topic-notification")) > notified, timeout=60)
    succeeded = wait_for(
        lambda: [s for s in executions(runtime) if s["PipelineExecutionStatus"] == "Succeeded"]
    )
    arn = succeeded[0]["PipelineExecutionArn"]
    code, out, _ = s3sm(["retry", arn], capsys)
    assert code == 1
    assert (
        out.splitlines()[0]
        == f"{arn.rsplit('/', 1)[-1]}: is Succeeded, not Failed: not retried, nothing changed"
    )


def test_redrive_reports_what_waits_in_the_dead_letter_queue_and_moves_nothing(
    runtime: Runtime, state: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an empty dead-letter queue, then one upload in it (as SQS moves it: the S3 notification)
    code, out, err = s3sm(["redrive", "--json"], capsys)
    assert (code, err, json.loads(out)) == (0, "", {"waiting": [], "move": None})
    queue = runtime.stacks[0].outputs["TriggerDeadLetterQueueUrl"]
    bucket = runtime.stacks[0].ref("DataBucket")
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": "raw/ops/late.csv", "size": 10, "sequencer": "00AB"},
        },
    }
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record]}))
    # When redrive reports it
    code, out, err = s3sm(["redrive", "--json"], capsys)
    # Then it is runnable (a redrive would start it), and it is still there
    assert (code, err) == (1, "")
    (row,) = json.loads(out)["waiting"]
    assert (row["verdict"], row["key"], row["bucket"]) == ("runnable", "raw/ops/late.csv", bucket)
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])[
        "Attributes"
    ]
    assert (
        int(attributes["ApproximateNumberOfMessages"])
        + int(attributes["ApproximateNumberOfMessagesNotVisible"])
        == 1
    )
    code, _, err = s3sm(["redrive", "--move"], capsys)
    assert code == 2
    assert "moto does not implement StartMessageMoveTask" in err


BACKFILLED = ("raw/backfill/partner-a/Caravan.csv", "raw/backfill/partner-b/Caravan.csv")


def test_a_backfill_of_uploads_that_ran_live_starts_nothing_twice(
    runtime: Runtime, recorder: Recorder, state: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two uploads the trigger ran as they arrived
    data = generate(Path(runtime.scratch_dir or "/tmp") / "backfill", layout="named", rows=40, seed=7)
    bucket = runtime.stacks[0].ref("DataBucket")
    for key in BACKFILLED:
        boto3.client("s3").put_object(
            Bucket=bucket, Key=key, Body=(data.out_dir / "Caravan.csv").read_bytes()
        )
    ran = {finished(runtime, key)["PipelineExecutionArn"] for key in BACKFILLED}
    # When their folder is backfilled
    code, out, err = s3sm(["backfill", "raw/backfill/", "--local"], capsys)
    # Then the ledger (each execution's description) names both uploads: nothing is sent, nothing runs twice
    assert (code, err) == (0, "")
    assert (
        out.splitlines()[0]
        == "listed 2: enqueued 0 (0 SendMessageBatch), already ran 2, skipped 0, no route 0"
    )
    assert runtime.wait_idle(timeout=30)
    assert {
        finished(runtime, key)["PipelineExecutionArn"] for key in BACKFILLED
    } == ran  # one execution per key
