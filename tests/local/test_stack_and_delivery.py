"""Local deploy from template.yaml, and Lambda's asynchronous retry-then-dead-letter behaviour."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.cfn_response import ResponseServer
from local.emulator import Emulator
from local.runtime import Runtime, StackRequest
from local.stack import StackDeployer, StackError
from local.template import Template

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deployer(aws: Emulator) -> Iterator[StackDeployer]:
    with ResponseServer() as responses:
        yield StackDeployer(Template(ROOT / "template.yaml"), aws_env=aws.environ(), responses=responses)


def test_the_stack_takes_its_names_and_settings_from_the_template(deployer: StackDeployer) -> None:
    # When the stack is deployed with a different raw prefix and pipeline name
    stack = deployer.deploy("named", {"RawPrefix": "landing/coil/", "PipelineName": "named-etl"})

    # Then the pipeline exists under that name, created by the deploy function with the template's tags
    sagemaker = boto3.client("sagemaker")
    described = sagemaker.describe_pipeline(PipelineName="named-etl")
    definition = json.loads(described["PipelineDefinition"])
    assert definition["Steps"][0]["Name"] == "CleanData"
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=described["PipelineArn"])["Tags"]}
    assert tags["stack"] == "named"
    # and the bucket notifies the trigger's queue for ObjectCreated under that prefix only
    bucket = stack.ref("DataBucket")
    config = boto3.client("s3").get_bucket_notification_configuration(Bucket=bucket)
    [queue] = config["QueueConfigurations"]
    assert queue["Events"] == ["s3:ObjectCreated:*"]
    [rule] = queue["Filter"]["Key"]["FilterRules"]
    assert (rule["Name"].lower(), rule["Value"]) == ("prefix", "landing/coil/")
    # and the trigger gets the template's environment and async settings
    trigger = stack.functions["TriggerFunction"]
    assert trigger.environment["PIPELINE_NAME"] == "named-etl"
    assert trigger.environment["RAW_PREFIX"] == "landing/coil/"
    assert trigger.max_retry_attempts == 2
    assert trigger.on_failure_arn == stack.attribute("TriggerDeadLetterQueue", "Arn")
    assert stack.outputs["PipelineName"] == "named-etl"
    assert boto3.client("s3").get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_a_custom_resource_that_fails_stops_the_deploy_with_cloudformations_reason(
    deployer: StackDeployer,
) -> None:
    with pytest.raises(
        StackError, match=r"Pipeline \(Custom::SageMakerPipeline, Create\) failed: .*ProcessingInstanceType"
    ):
        deployer.deploy("broken", {"ProcessingInstanceType": "m5.large"})


def test_an_unknown_parameter_is_refused(deployer: StackDeployer) -> None:
    with pytest.raises(StackError, match="unknown template parameter"):
        deployer.deploy("typo", {"TriggerMood": "object"})


def test_failed_invocations_are_retried_then_recorded_in_the_dead_letter_queue(
    aws: Emulator, tmp_path: Path
) -> None:
    # Given a runtime whose pipeline has disappeared, so every StartPipelineExecution fails
    events: list[tuple[str, dict[str, Any]]] = []
    with Runtime(
        stacks=[StackRequest("dlq")],
        emulator=aws,
        retry_delays=(0.05, 0.1),
        scratch_dir=tmp_path,
        notify=lambda kind, details: events.append((kind, details)),
    ) as runtime:
        stack = runtime.stacks[0]
        boto3.client("sagemaker").delete_pipeline(
            PipelineName=stack.parameters["PipelineName"], ClientRequestToken="x" * 32
        )

        # When a file is uploaded
        boto3.client("s3").put_object(Bucket=stack.ref("DataBucket"), Key="raw/lost.csv", Body=b"1,2\n")

        # Then after 1 + MaximumRetryAttempts (2) attempts an on-failure record reaches the dead-letter queue
        sqs = boto3.client("sqs")
        dlq = stack.ref("TriggerDeadLetterQueue")
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not messages and time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])

    assert len(messages) == 1
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(":$LATEST")
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "raw%2Flost.csv"
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "StartFailed"
    assert "raw/lost.csv" in record["responsePayload"]["errorMessage"]
    attempts = [d["attempt"] for kind, d in events if kind == "invoke-error"]
    assert attempts == [1, 2, 3]
    # and all three attempts carried the same request ID, as Lambda's retries do
    assert len({d["request_id"] for kind, d in events if kind == "invoke-error"}) == 1
