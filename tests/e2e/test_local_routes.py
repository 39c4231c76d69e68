"""Routes through the local runtime: an upload a route sends to another team's pipeline (a stand-in made by
``python -m local up --pipeline NAME``) starts it with a parameter from its key, on its own snapshot, and
runs no step there; an upload no dataset route matches still runs the stack's own pipeline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from trigger.routing import digest

from contract import ledger
from local.runtime import Runtime
from tests.support.runtime import Recorder, finished, running

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CLAIMS = "claims-training"
ROUTES = {
    "routes": [
        {
            "prefix": "raw/claims/",
            "pattern": r"date=(?P<date>\d{4}-\d{2}-\d{2})/[^/]+\.csv",
            "pipeline": CLAIMS,
            "parameters": {"InputDataUrl": "{snapshot_url}", "RunDate": "{date}"},
        },
        {"prefix": "raw/"},
    ]
}


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def runtime(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text(json.dumps(ROUTES), encoding="utf-8")
    scratch = tmp_path_factory.mktemp("scratch")
    with running("routes-e2e", recorder, scratch, routes=routes, stand_ins=[CLAIMS]) as rt:
        yield rt


def recorded(recorder: Recorder, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := recorder.of("execution-recorded"):
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no execution of {CLAIMS} recorded within {timeout} s")


def test_a_routed_upload_starts_the_other_pipeline_with_its_keys_date(
    runtime: Runtime, recorder: Recorder
) -> None:
    # Given the stack deployed with a dataset route to another team's pipeline
    bucket = runtime.stacks[0].ref("DataBucket")
    key = "raw/claims/date=2026-11-30/claims.csv"
    # When a file lands under it
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"a,b\n1,2\n")
    # Then that pipeline's execution is started with the date from the key and the upload's own snapshot
    found = recorded(recorder)
    assert found["pipeline"] == CLAIMS
    parameters = found["parameters"]
    assert isinstance(parameters, dict)
    assert parameters["RunDate"] == "2026-11-30"
    assert str(parameters["InputDataUrl"]).startswith(f"s3://{bucket}/snapshot/{digest(key)}/")
    # And SageMaker records which upload it runs, and the stand-in runs no step (it stays started)
    sagemaker = boto3.client("sagemaker")
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=found["arn"])
    upload = ledger.read(described.get("PipelineExecutionDescription"))
    assert upload is not None
    assert (upload.bucket, upload.key) == (bucket, key)
    assert described["PipelineExecutionStatus"] == "Executing"
    # And the runtime still counts itself idle: nothing of its own is left to run
    assert runtime.wait_idle(timeout=30)


def test_an_upload_no_dataset_route_matches_runs_the_stacks_own_pipeline(runtime: Runtime) -> None:
    # Given a file under raw/claims/ that the claims pattern does not match (no date folder)
    bucket = runtime.stacks[0].ref("DataBucket")
    key = "raw/claims/readme.csv"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"a,b\n1,2\n")
    # Then the catch-all route runs it on the stack's own pipeline, to the end
    summary = finished(runtime, key)
    assert summary["PipelineExecutionStatus"] in ("Succeeded", "Failed")  # the ETL judges the data itself
