"""End to end through the local runtime: a run over the reject threshold fails, and the user still finds
why in its output folder (rejects.csv and report.json, uploaded continuously), never full_data.csv."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from coilgen import generate
from local.runtime import Runtime, StackRequest

pytestmark = pytest.mark.e2e

KEY = "raw/e2e/rejects/Caravan.csv"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with Runtime(stacks=[StackRequest("e2e")], scratch_dir=tmp_path_factory.mktemp("scratch")) as rt:
        rt.warm_up()
        yield rt


def finished_run(pipeline: str, timeout: float = 90) -> tuple[dict[str, Any], str]:
    """The pipeline's one execution, once it has finished, and its OutputDataUrl."""
    sagemaker, deadline = boto3.client("sagemaker"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
        if runs and runs[0]["PipelineExecutionStatus"] != "Executing":
            arn = runs[0]["PipelineExecutionArn"]
            params = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
            return runs[0], {p["Name"]: p["Value"] for p in params["PipelineParameters"]}["OutputDataUrl"]
        time.sleep(0.2)
    raise AssertionError(f"no finished execution of {pipeline} within {timeout} s")


def test_a_run_over_the_reject_threshold_leaves_its_rejects_and_report_but_no_clean_data(
    runtime: Runtime, tmp_path: Path
) -> None:
    # Given a COIL file where about 5% of the rows have bad values (the default maximum is 1%)
    data = generate(tmp_path, layout="named", rows=2000, seed=5, faults=["bad-values"], fault_rate=0.05)
    bucket, s3 = runtime.stacks[0].ref("DataBucket"), boto3.client("s3")

    # When it is uploaded
    s3.upload_file(str(data.out_dir / "Caravan.csv"), bucket, KEY)

    # Then the run failed, saying the rejected share is over MaxRejectFraction
    summary, url = finished_run(runtime.stacks[0].parameters["PipelineName"])
    assert summary["PipelineExecutionStatus"] == "Failed"
    assert "above --max-reject-fraction 0.01" in summary["PipelineExecutionFailureReason"]
    # and its output folder holds rejects.csv (every bad row) and report.json, and no full_data.csv
    prefix = url.removeprefix(f"s3://{bucket}/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    assert sorted(o["Key"].removeprefix(prefix) for o in listed) == ["rejects.csv", "report.json"]
    body = s3.get_object(Bucket=bucket, Key=prefix + "rejects.csv")["Body"].read().decode()
    assert len(list(csv.DictReader(io.StringIO(body)))) == data.faulty_rows > 20
    report = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "report.json")["Body"].read())
    assert (report["status"], report["totals"]["rows_rejected"]) == ("failed", data.faulty_rows)
