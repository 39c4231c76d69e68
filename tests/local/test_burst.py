"""A burst of 200 uploads through the local runtime: 200 executions, none lost, none twice, all clean."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from coilgen import generate
from local.runtime import Runtime, StackRequest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

UPLOADS = 200


@pytest.mark.timeout(1200)
def test_a_burst_of_uploads_runs_each_exactly_once_with_its_clean_output(tmp_path: Path) -> None:
    data = generate(tmp_path / "data", layout="named", rows=20, seed=5)
    with Runtime(stacks=[StackRequest("burst")], scratch_dir=tmp_path) as runtime:
        runtime.warm_up()
        bucket = runtime.stacks[0].ref("DataBucket")
        pipeline = runtime.stacks[0].parameters["PipelineName"]
        s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
        keys = [f"raw/burst/file-{n:03d}.csv" for n in range(UPLOADS)]

        # When 200 files are uploaded at once
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: s3.upload_file(str(data.out_dir / "Caravan.csv"), bucket, key), keys))

        # Then, once everything has drained,
        deadline = time.monotonic() + 1000
        while time.monotonic() < deadline and not runtime.idle():
            time.sleep(1)
        summaries = sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
        inputs = []
        for summary in summaries:
            params = sagemaker.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=summary["PipelineExecutionArn"]
            )
            inputs.append({p["Name"]: p["Value"] for p in params["PipelineParameters"]}["InputDataUrl"])

        # there is one execution per upload: none lost, none duplicated, every one Succeeded
        assert sorted(inputs) == [f"s3://{bucket}/{key}" for key in keys]
        assert {s["PipelineExecutionStatus"] for s in summaries} == {"Succeeded"}
        # and each has its own clean output, with the file's 20 rows
        for key in keys:
            body = s3.get_object(Bucket=bucket, Key=f"clean/{key[len('raw/') :]}/full_data.csv")[
                "Body"
            ].read()
            assert body.count(b"\n") == 21, key
