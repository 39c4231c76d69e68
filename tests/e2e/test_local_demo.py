"""``make demo``'s scenario, checked: what the demo shows is what happened.

The demo (``local/demo.py``) runs once for the module, in its own runtime; the tests look at its
progress lines, its outputs in S3 and its executions in SageMaker while the runtime still runs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from trigger.routing import digest

from coilgen.dictionary import N_COLUMNS
from local.cli import Progress
from local.demo import (
    BAD_KEY,
    BURST,
    BURST_FOLDER,
    BURST_ROWS,
    MARKER,
    OBJECT_KEY,
    ROUTED,
    ROUTED_KEY,
    Demo,
    runs,
)

pytestmark = pytest.mark.e2e


@dataclass
class Ran:
    demo: Demo
    passed: bool
    lines: str

    def pipeline(self, stack: int) -> str:
        return self.demo.runtime.stacks[stack].parameters["PipelineName"]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    out = io.StringIO()
    demo = Demo.create(tmp_path_factory.mktemp("demo"), Progress(out), rows=2000)
    with demo.runtime:
        demo.runtime.warm_up()
        passed = demo.run()
        yield Ran(demo, passed, out.getvalue())


def read(url: str, name: str) -> bytes | None:
    bucket, _, prefix = url[5:].partition("/")
    s3 = boto3.client("s3")
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return body


def test_the_demo_passes(ran: Ran) -> None:
    assert ran.passed, ran.lines


@pytest.mark.parametrize(("stack", "key", "data"), [(0, OBJECT_KEY, "object"), (1, MARKER, "marker")])
def test_an_upload_runs_once_and_writes_the_clean_rows_the_generator_made(
    ran: Ran, stack: int, key: str, data: str
) -> None:
    # Given the object upload (object mode) and the folder with its marker (marker mode)
    [run] = runs(ran.pipeline(stack), key)
    # Then it ran once and succeeded, its three outputs exist, and they agree with the generator's faults
    assert run["PipelineExecutionStatus"] == "Succeeded"
    url = run["Parameters"]["OutputDataUrl"]
    full, rejects, report = (read(url, n) for n in ("full_data.csv", "rejects.csv", "report.json"))
    assert full is not None
    assert rejects is not None
    assert report is not None
    totals = json.loads(report)["totals"]
    rows = list(csv.reader(io.StringIO(full.decode("utf-8"))))
    assert {len(row) for row in rows} == {N_COLUMNS}
    generated = ran.demo.data[data]
    assert len(rows) - 1 == totals["rows_written"] == generated.rows - generated.faulty_rows
    assert totals["rows_rejected"] == generated.faulty_rows > 0
    assert totals["rows_read"] - totals["rows_rejected"] == totals["rows_written"]
    # and the demo told it
    assert f"clean/{url.partition('/clean/')[2]}: full_data.csv ({totals['rows_written']} rows)" in ran.lines


def test_a_duplicate_delivery_is_answered_with_the_same_execution(ran: Ran) -> None:
    [run] = runs(ran.pipeline(0), OBJECT_KEY)
    arn_id = run["PipelineExecutionArn"].rsplit("/", 1)[1]
    assert f"duplicate delivery: same execution {arn_id}" in ran.lines
    assert f"1 execution of {OBJECT_KEY} in all" in ran.lines


def test_a_refused_file_fails_its_run_with_the_etls_reason_and_a_notification(ran: Ran) -> None:
    [run] = runs(ran.pipeline(0), BAD_KEY)
    assert run["PipelineExecutionStatus"] == "Failed"
    arn = run["PipelineExecutionArn"]
    reason = boto3.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)["FailureReason"]
    assert "etl: error: garbage.csv" in reason
    assert (
        f"{arn.rsplit('/', 1)[1]}: Step CleanData failed: AlgorithmError: etl: error: garbage.csv"
        in ran.lines
    )
    assert f"execution {arn} is Failed" in ran.lines  # the notification rule's sentence
    assert read(run["Parameters"]["OutputDataUrl"], "full_data.csv") is None


def test_a_routed_upload_starts_the_other_pipeline_with_the_date_from_its_key(ran: Ran) -> None:
    [run] = runs(ROUTED)
    bucket = ran.demo.runtime.stacks[0].ref("DataBucket")
    assert run["Parameters"]["RunDate"] == "2026-11-30"
    assert run["Parameters"]["InputDataUrl"].startswith(f"s3://{bucket}/snapshot/{digest(ROUTED_KEY)}/")
    assert "RunDate=2026-11-30" in ran.lines


def test_the_burst_drains_by_itself_each_file_once_on_its_own_rows(ran: Ran) -> None:
    burst: list[dict[str, Any]] = runs(ran.pipeline(0), BURST_FOLDER)
    keys = {f"{BURST_FOLDER}file-{n:02d}.csv" for n in range(BURST)}
    for key in keys:
        [run] = runs(ran.pipeline(0), key)
        assert run["PipelineExecutionStatus"] == "Succeeded"
        full = read(run["Parameters"]["OutputDataUrl"], "full_data.csv")
        assert full is not None
        assert full.count(b"\n") == BURST_ROWS + 1
    assert len(burst) == BURST
    dlq = ran.demo.runtime.stacks[0].ref("TriggerDeadLetterQueue")
    dead = boto3.client("sqs").get_queue_attributes(
        QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dead["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert f"{BURST} of {BURST} Succeeded" in ran.lines
    assert "start(s) waited in the queue" in ran.lines
    # and its files are summed up, not told line by line
    assert f"{BURST_FOLDER}file-" not in ran.lines
