"""s3sm backfill and status --key against the emulator (moto server over HTTP), through the CLI as a user
runs it on a local stack: what reaches the upload queue, in how many SendMessageBatch calls, what a second
run, --rerun and --dry-run do once the executions' ledger names the objects, and where each upload of a key
went."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from trigger import config as trigger_config
from trigger import handler

from contract.ledger import read
from local.emulator import Emulator
from ops.target import Target
from tests.support.lambda_context import LambdaContext
from tests.support.ops import s3sm
from tests.support.project import routes_file
from tests.support.trigger import ROLE_ARN, pipeline_definition

STACK = "backfill-local"
PIPELINE = "backfill-pipeline"
BUCKET = "backfill-data"


@dataclass
class Stack:
    """A local stack's bucket, upload queue and pipeline, and the SendMessageBatch calls s3sm made."""

    aws: Emulator
    queue: str
    batches: list[int] = field(default_factory=list)  # entries per SendMessageBatch call

    def put(self, *keys: str, body: bytes = b"a,b\n1,2\n") -> None:
        for key in keys:
            boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)

    def drain(self) -> list[dict[str, Any]]:
        """Every event waiting in the upload queue (received and deleted)."""
        sqs, events = boto3.client("sqs"), []
        while messages := sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return events

    def run_as_the_trigger(self, events: list[dict[str, Any]]) -> list[str]:
        """Hand each event to the real trigger handler (as the upload queue would); the started ARNs.
        Its log lines and metrics go to a buffer, not to the output the tests read."""
        arns: list[str] = []
        logs = io.StringIO()
        stream = handler.logger.registered_handler
        previous = stream.setStream(logs)  # type: ignore[attr-defined]
        try:
            with contextlib.redirect_stdout(logs):
                for event in events:
                    started = handler.lambda_handler(event, LambdaContext())["started"]
                    arns += [s["executionArn"] for s in started]
        finally:
            stream.setStream(previous)  # type: ignore[attr-defined]
        return arns

    def executions(self) -> int:
        found = boto3.client("sagemaker").list_pipeline_executions(PipelineName=PIPELINE)
        return len(found["PipelineExecutionSummaries"])


@pytest.fixture
def stack(aws: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Given a local stack (versioned bucket, upload queue, pipeline) that s3sm finds as a running runtime."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    queue = boto3.client("sqs").create_queue(QueueName=f"{STACK}-UploadQueue")["QueueUrl"]
    pipeline_arn = boto3.client("sagemaker").create_pipeline(
        PipelineName=PIPELINE, PipelineDefinition=pipeline_definition(), RoleArn=ROLE_ARN
    )["PipelineArn"]
    outputs = {
        "PipelineName": PIPELINE,
        "PipelineArn": pipeline_arn,
        "DataBucketName": BUCKET,
        "UploadQueueUrl": queue,
    }
    state = {
        "endpoint": aws.endpoint_url,
        "region": aws.region,
        "pid": os.getpid(),
        "stacks": [{"name": STACK, "outputs": outputs}],
    }
    (tmp_path / "runtime.json").write_text(json.dumps(state), encoding="utf-8")
    monkeypatch.setattr("ops.target.STATE_FILE", tmp_path / "runtime.json")
    # The trigger as the stack configures it, run in this process on what the queue delivers
    monkeypatch.setenv("PIPELINE_NAME", PIPELINE)
    monkeypatch.setenv("ROUTES_FILE", routes_file())
    caches = (trigger_config.settings, handler.sagemaker_client, handler.s3_client, handler.sqs_client)
    for cached in caches:
        cached.cache_clear()
    found = Stack(aws, queue)
    client = Target.client

    def counting(target: Target, service: str) -> Any:
        made = client(target, service)
        made.meta.events.register(
            "provide-client-params.sqs.SendMessageBatch",
            lambda params, **_: found.batches.append(len(params["Entries"])),
        )
        return made

    monkeypatch.setattr(Target, "client", counting)
    yield found
    for cached in caches:
        cached.cache_clear()


def test_a_backfill_enqueues_exactly_its_objects_and_a_second_run_starts_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three data files under raw/, a folder placeholder, and files outside the routes
    stack.put("raw/a.csv", "raw/b.csv", "raw/day1/c.csv", "raw/day1/", "clean/x.csv", "notes.txt")
    # When raw/ is backfilled
    code, out, err = s3sm(["backfill", "raw/", "--local"], capsys)
    # Then exactly the three data files reach the upload queue, each once, in one SendMessageBatch
    assert (code, err) == (0, "")
    events = stack.drain()
    assert sorted(e["detail"]["object"]["key"] for e in events) == [
        "raw/a.csv",
        "raw/b.csv",
        "raw/day1/c.csv",
    ]
    assert stack.batches == [3]
    assert out.splitlines()[:3] == [
        "listed 4: enqueued 3 (1 SendMessageBatch), already ran 0, skipped 1, no route 0",
        f"s3://{BUCKET}/raw/: 4 objects (ListObjectVersions, latest versions)",
        "  3 enqueued, 0 already ran, 1 skipped (the trigger would skip them), 0 match no route",
    ]
    # Given the trigger ran them (their executions are in the ledger)
    stack.run_as_the_trigger(events)
    assert stack.executions() == 3
    # When the same backfill runs again
    code, out, _ = s3sm(["backfill", "raw/", "--local"], capsys)
    # Then nothing is sent: every object version already ran
    assert code == 0
    assert stack.drain() == []
    assert stack.batches == [3]
    assert (
        out.splitlines()[2]
        == "  0 enqueued, 3 already ran, 1 skipped (the trigger would skip them), 0 match no route"
    )
    # When it runs with --rerun
    code, out, _ = s3sm(["backfill", "raw/", "--local", "--rerun"], capsys)
    # Then the three are sent again, each marked as a rerun, and the output says so
    assert code == 0
    again = stack.drain()
    assert sorted(e["detail"]["object"]["key"] for e in again) == ["raw/a.csv", "raw/b.csv", "raw/day1/c.csv"]
    assert len({e["detail"]["rerun"] for e in again}) == 1
    assert out.splitlines()[3].startswith(
        "--rerun: objects that already ran were sent again, with detail.rerun = "
    )
    # And the trigger runs each of them again, as a new run with its own output folder
    reruns = stack.run_as_the_trigger(again)
    assert len(reruns) == 3
    assert stack.executions() == 6


def test_a_dry_run_lists_and_changes_nothing(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.put("raw/a.csv", "raw/day1/", "raw/b.csv")
    stack.run_as_the_trigger([backfilled(stack, "raw/b.csv", capsys)])
    code, out, _ = s3sm(["backfill", "raw/", "--local", "--dry-run"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"would start  raw/a.csv  route 1 -> {PIPELINE}"
    assert lines[1].startswith("already ran  raw/b.csv  execution ")
    assert lines[2] == "skip         raw/day1/  folder placeholder (the key ends with '/')"
    assert lines[-2:] == [
        "dry run: nothing was sent",
        "objects that already ran start nothing again "
        "(--rerun runs them anew; .venv/bin/s3sm retry resumes a failed run)",
    ]
    assert (stack.drain(), stack.batches, stack.executions()) == ([], [], 1)


def test_25_objects_take_3_send_message_batch_calls(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.put(*(f"raw/many/part-{n:02d}.csv" for n in range(25)))
    code, _, _ = s3sm(["backfill", "raw/many/", "--local"], capsys)
    assert code == 0
    assert stack.batches == [10, 10, 5]
    assert len(stack.drain()) == 25


def test_status_key_lists_two_uploads_of_one_key_the_newest_marked(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a key uploaded and run twice (two versions), the second run with its report
    stack.put("raw/coil/Caravan.csv")
    (first,) = stack.run_as_the_trigger([backfilled(stack, "raw/coil/Caravan.csv", capsys)])
    time.sleep(1.1)  # S3 keeps last-modified times to the second: the second upload lands a second later
    stack.put("raw/coil/Caravan.csv", body=b"a,b\n3,4\n")
    (second,) = stack.run_as_the_trigger([backfilled(stack, "raw/coil/Caravan.csv", capsys)])
    for arn in (first, second):
        stack.aws.record_execution(arn, "Succeeded")
    output = ledger_output(second)
    report = {"totals": {"rows_read": 5825, "rows_written": 5822, "rows_rejected": 3}}
    stack.put(f"{output.removeprefix(f's3://{BUCKET}/')}report.json", body=json.dumps(report).encode())
    # When status --key shows the key
    code, out, _ = s3sm(["status", "--local", "--key", "raw/coil/Caravan.csv"], capsys)
    # Then both uploads are listed, the second first, marked newest, with its rows and output folder
    assert code == 0
    print(out)  # shown with -s: the view the docs show
    lines = out.splitlines()
    assert lines[3] == "2 uploads, newest first:"
    newest, newest_output, older = lines[7:10]
    assert newest.startswith("*  ")
    assert newest.split()[2:] == [second.rsplit("/", 1)[-1], PIPELINE, "Succeeded", "5822/3"]
    assert newest_output == f"  => {output.removeprefix(f's3://{BUCKET}/')}"
    assert older.split()[1:] == [first.rsplit("/", 1)[-1], PIPELINE, "Succeeded", "-"]


def backfilled(stack: Stack, key: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The event ``s3sm backfill KEY`` sends for the one object ``key`` (taken from the queue; its
    SendMessageBatch not counted)."""
    code, _, _ = s3sm(["backfill", key, "--local"], capsys)
    assert code == 0
    (event,) = stack.drain()
    stack.batches.clear()
    return event


def ledger_output(arn: str) -> str:
    described = boto3.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)
    upload = read(described["PipelineExecutionDescription"])
    assert upload is not None
    assert upload.output is not None
    return upload.output
