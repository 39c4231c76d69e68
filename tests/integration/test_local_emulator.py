"""The emulator's SageMaker and EventBridge fixes behave as the services document (local/emulator.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.emulator import Emulator

PIPELINE = "emulated"


@pytest.fixture
def sagemaker(aws: Emulator) -> Iterator[Any]:
    client = boto3.client("sagemaker")
    client.create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition='{"Version": "2020-12-01", "Steps": []}',
        RoleArn="arn:aws:iam::123456789012:role/pipeline",
    )
    try:
        yield client
    finally:
        aws.set_stop_seconds(0.0)


def _status(sagemaker: Any, arn: str) -> str:
    return str(sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"])


def test_a_pipeline_with_a_running_execution_cannot_be_deleted_until_it_has_stopped(
    aws: Emulator, sagemaker: Any
) -> None:
    # Given a running execution, whose stop takes a moment
    arn = sagemaker.start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
    aws.set_stop_seconds(0.3)

    # Then DeletePipeline refuses, as SageMaker does
    with pytest.raises(ClientError, match="ConflictException") as refused:
        sagemaker.delete_pipeline(PipelineName=PIPELINE, ClientRequestToken="t" * 32)
    assert arn in str(refused.value)

    # When it is stopped, it is Stopping, then Stopped; stopping it again while Stopping is accepted
    sagemaker.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="s" * 32)
    assert _status(sagemaker, arn) == "Stopping"
    sagemaker.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="s" * 32)
    with pytest.raises(ClientError, match="ConflictException"):
        sagemaker.delete_pipeline(PipelineName=PIPELINE, ClientRequestToken="t" * 32)
    time.sleep(0.35)
    (summary,) = sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionStatus"] == "Stopped"

    # Then the pipeline can be deleted, and a stopped execution cannot be stopped again
    with pytest.raises(ClientError, match="only an Executing one can be stopped"):
        sagemaker.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="u" * 32)
    sagemaker.delete_pipeline(PipelineName=PIPELINE, ClientRequestToken="t" * 32)
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_a_plain_text_input_template_reaches_a_queue_as_that_text(aws: Emulator) -> None:
    # Given a rule whose input template is plain text (EventBridge's "<instance> is in state <status>")
    events, sqs = boto3.client("events"), boto3.client("sqs")
    url = sqs.create_queue(QueueName="plain-text")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="plain", EventPattern=json.dumps({"source": ["test.app"]}))
    transformer = {
        "InputPathsMap": {"instance": "$.detail.instance", "status": "$.detail.status"},
        "InputTemplate": "<instance> is in state <status>",
    }
    events.put_targets(Rule="plain", Targets=[{"Id": "q", "Arn": queue_arn, "InputTransformer": transformer}])

    # When an event matches
    detail = {"instance": "i-0123", "status": "RUNNING"}
    events.put_events(Entries=[{"Source": "test.app", "DetailType": "t", "Detail": json.dumps(detail)}])

    # Then the queue receives the filled text itself, not a JSON string of it
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert message["Body"] == "i-0123 is in state RUNNING"
