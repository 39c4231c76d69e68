"""The deploy function failing mid-upsert: CloudFormation gets a clear FAILED, and a retry converges."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ReadTimeoutError
from deploy import handler
from deploy.properties import OWNER_TAG
from deploy.resource import NOT_CREATED

BUCKET = "example-data-bucket"
PIPELINE = "s3-sagemaker-trigger"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class FailingCalls:
    """A before-send hook answering the named SageMaker operation with HTTP 500 while ``failing``."""

    def __init__(self) -> None:
        self.failing = True
        self.attempts = 0

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if not self.failing:
            return None
        self.attempts += 1
        body = json.dumps({"__type": "InternalFailure", "message": "injected: SageMaker is having a bad day"})
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "fault"}
        return AWSResponse(request.url, 500, headers, _Raw(body.encode()))


@pytest.fixture
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return BUCKET


def _inject(operation: str) -> FailingCalls:
    fault = FailingCalls()
    handler.pipeline_resource().sagemaker.meta.events.register(f"before-send.sagemaker.{operation}", fault)
    return fault


def test_a_create_that_fails_after_the_upload_answers_failed_and_its_retry_converges(
    deploy: Any, bucket: str, s3: Any, sagemaker: Any
) -> None:
    # Given SageMaker fails every CreatePipeline attempt, after the ETL script was uploaded
    operation = "CreatePipeline"
    fault = _inject(operation)
    event = deploy.event("cfn-create.json")

    # When CloudFormation sends the Create request
    answer = deploy.invoke(event)

    # Then it answers FAILED, naming the call and the error, after botocore's bounded retries
    assert answer["Status"] == "FAILED"
    assert operation in answer["Reason"], answer["Reason"]
    assert "InternalFailure" in answer["Reason"], answer["Reason"]
    assert fault.attempts == handler.CLIENT_CONFIG.retries["total_max_attempts"]

    # When SageMaker recovers and the same request is retried
    fault.failing = False
    retried = deploy.invoke(deploy.event("cfn-create.json"))

    # Then it converges: one pipeline, with its tags, and one copy of the script
    assert retried["Status"] == "SUCCESS", retried["Reason"]
    assert [p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]] == [PIPELINE]
    arn = sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineArn"]
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    assert tags == {
        **{t["Key"]: t["Value"] for t in event["ResourceProperties"]["Tags"]},
        OWNER_TAG: "s3-sagemaker-trigger",
    }
    versions = s3.list_object_versions(Bucket=bucket, Prefix="code/").get("Versions", [])
    assert len(versions) == 1


def test_an_update_that_fails_midway_leaves_the_pipeline_runnable_and_its_retry_converges(
    deploy: Any, bucket: str, sagemaker: Any
) -> None:
    # Given a deployed pipeline, and SageMaker failing every UpdatePipeline attempt
    assert deploy.invoke(deploy.event("cfn-create.json"))["Status"] == "SUCCESS"
    before = sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"]
    fault = _inject("UpdatePipeline")
    update = deploy.event("cfn-update.json", Properties={"ProcessingInstanceType": "ml.c5.2xlarge"})

    # When CloudFormation sends the Update
    answer = deploy.invoke(update)

    # Then it answers FAILED with the reason, and the pipeline keeps its previous definition
    assert answer["Status"] == "FAILED"
    assert "UpdatePipeline" in answer["Reason"], answer["Reason"]
    assert sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"] == before

    # When SageMaker recovers and CloudFormation retries the update
    fault.failing = False
    retried = deploy.invoke(
        deploy.event("cfn-update.json", Properties={"ProcessingInstanceType": "ml.c5.2xlarge"})
    )

    # Then the pipeline has the new definition
    assert retried["Status"] == "SUCCESS", retried["Reason"]
    definition = json.loads(sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"])
    instance_type = next(p for p in definition["Parameters"] if p["Name"] == "ProcessingInstanceType")
    assert instance_type["DefaultValue"] == "ml.c5.2xlarge"


def test_a_create_whose_answer_was_lost_after_it_succeeded_is_adopted_by_the_next_deploy(
    deploy: Any, bucket: str, sagemaker: Any
) -> None:
    # Given SageMaker creates the pipeline, but its answer never reaches the function (a read timeout)
    def lost(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com/")

    events = handler.pipeline_resource().sagemaker.meta.events
    events.register("after-call.sagemaker.CreatePipeline", lost)

    # When CloudFormation sends the Create request
    answer = deploy.invoke(deploy.event("cfn-create.json"))

    # Then the Create fails, and its rollback deletes nothing, although the pipeline exists
    assert answer["Status"] == "FAILED"
    assert "CreatePipeline s3-sagemaker-trigger failed" in answer["Reason"]
    rollback = deploy.invoke(deploy.event("cfn-delete.json", PhysicalResourceId=answer["PhysicalResourceId"]))
    assert answer["PhysicalResourceId"].startswith(NOT_CREATED)
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    arn = sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineArn"]

    # When the stack is deployed again (a new Create request; review finding 4: the name was refused)
    events.unregister("after-call.sagemaker.CreatePipeline", lost)
    retried = deploy.invoke(deploy.event("cfn-create.json", RequestId="2c3d4e5f-6071-4829-a3b4-c5d6e7f8091a"))

    # Then it adopts the pipeline its first attempt created: it carries this stack's owner tag
    assert retried["Status"] == "SUCCESS", retried["Reason"]
    assert retried["Data"]["PipelineArn"] == arn
    assert [p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]] == [PIPELINE]
