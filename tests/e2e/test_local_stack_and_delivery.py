"""Local deploy from template.yaml, and the SQS event source mapping with SQS's own redrive."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest

from local.emulator import Emulator
from local.runtime import Runtime, RuntimeStartError, StackRequest, function_code, routes_environment
from local.stack import StackDeployer, StackError, Template

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deployer(aws: Emulator) -> StackDeployer:
    return StackDeployer(Template(ROOT / "template.yaml"), aws_env=aws.environ(), code=function_code)


def test_the_stack_takes_its_names_and_settings_from_the_template(aws: Emulator, tmp_path: Path) -> None:
    # Given routes that send uploads under landing/coil/ to the stack's own pipeline
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - prefix: landing/coil/\n", encoding="utf-8")
    deployer = StackDeployer(
        Template(ROOT / "template.yaml"),
        aws_env=aws.environ(),
        code=function_code,
        function_env=routes_environment(routes),
    )
    # When the stack is deployed with a different pipeline name
    stack = deployer.deploy("named", {"PipelineName": "named-etl"})

    # Then the pipeline exists under that name, created by the deploy function with the template's tags
    sagemaker = boto3.client("sagemaker")
    described = sagemaker.describe_pipeline(PipelineName="named-etl")
    definition = json.loads(described["PipelineDefinition"])
    assert definition["Steps"][0]["Name"] == "CleanData"
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=described["PipelineArn"])["Tags"]}
    assert tags["stack"] == "named"
    # and the bucket sends its events to EventBridge, where the upload rule takes the routed prefix only
    bucket = stack.ref("DataBucket")
    config = boto3.client("s3").get_bucket_notification_configuration(Bucket=bucket)
    assert "EventBridgeConfiguration" in config
    assert "QueueConfigurations" not in config
    rule = boto3.client("events").describe_rule(Name=stack.ref("UploadRule"))
    assert json.loads(rule["EventPattern"])["detail"] == {
        "bucket": {"name": [bucket]},
        "object": {"key": [{"prefix": "landing/coil/"}]},
    }
    # and the trigger gets the template's environment (the routes' parameter types included) and its
    # queue, the rule's target, through an event source mapping
    trigger = stack.functions["TriggerFunction"]
    assert trigger.environment["PIPELINE_NAME"] == "named-etl"
    assert json.loads(trigger.environment["ROUTE_PARAMETER_TYPES"]) == {
        "named-etl": {
            "InputDataUrl": "String",
            "OutputDataUrl": "String",
            "ProcessingVolumeSizeInGB": "Integer",
        }
    }
    [mapping] = stack.event_sources
    assert mapping.function_id == "TriggerFunction"
    [target] = boto3.client("events").list_targets_by_rule(Rule=stack.ref("UploadRule"))["Targets"]
    assert mapping.queue_arn == target["Arn"]
    assert mapping.report_batch_item_failures
    # and the queue's redrive policy sends what keeps failing to the dead-letter queue
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=mapping.queue_url, AttributeNames=["All"])
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == stack.attribute("TriggerDeadLetterQueue", "Arn")
    assert stack.outputs["PipelineName"] == "named-etl"
    assert stack.outputs["UploadUrls"] == f"s3://{bucket}/landing/coil/"
    assert boto3.client("s3").get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    # When objects are uploaded under the routed prefix and elsewhere
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="landing/coil/part 1.csv", Body=b"a,b\n")
    s3.put_object(Bucket=bucket, Key="clean/out.csv", Body=b"a,b\n")
    # Then only the routed upload waits in the queue, as S3's EventBridge event (its key not encoded)
    received = boto3.client("sqs").receive_message(
        QueueUrl=mapping.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    [message] = received["Messages"]
    event = json.loads(message["Body"])
    assert (event["source"], event["detail-type"]) == ("aws.s3", "Object Created")
    assert event["detail"]["object"]["key"] == "landing/coil/part 1.csv"
    assert event["detail"]["object"]["etag"]
    assert event["detail"]["object"]["version-id"]


def test_a_custom_resource_that_fails_stops_the_deploy_with_cloudformations_reason(
    deployer: StackDeployer,
) -> None:
    with pytest.raises(
        StackError, match=r"Pipeline \(Custom::SageMakerPipeline, Create\) failed: .*ProcessingInstanceType"
    ):
        deployer.deploy("broken", {"ProcessingInstanceType": "m5.large"})


def test_parameters_the_templates_rules_refuse_are_refused_before_anything_is_created(
    deployer: StackDeployer,
) -> None:
    with pytest.raises(StackError, match="must equal TriggerMaximumConcurrency"):
        deployer.deploy("throttled", {"TriggerReservedConcurrency": "3", "TriggerMaximumConcurrency": "5"})
    assert not [b for b in boto3.client("s3").list_buckets()["Buckets"] if "throttled" in b["Name"]]


def test_an_unknown_parameter_is_refused(deployer: StackDeployer) -> None:
    with pytest.raises(StackError, match="unknown template parameter"):
        deployer.deploy("typo", {"TriggerMood": "object"})


# A stack of one queue (with a dead-letter queue after 2 receives) consumed by one function, whose
# handler reports as failed every record whose body says "fail" and fails as a whole on "crash".
MAPPING_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dead.Arn
        maxReceiveCount: 2
  Dead:
    Type: AWS::SQS::Queue
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: consumer/
      Handler: consumer.handler
      Runtime: python3.13
      Timeout: 5
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 4
            ScalingConfig:
              MaximumConcurrency: 2
            FunctionResponseTypes: [ReportBatchItemFailures]
"""
CONSUMER = """
import json, sys

def handler(event, context):
    records = event["Records"]
    keep = ("body", "eventSource", "eventSourceARN", "attributes")
    print("RECORDS", json.dumps([{k: r[k] for k in keep} for r in records]))
    if any(r["body"] == "crash" for r in records):
        raise RuntimeError("crash")
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records if r["body"] == "fail"]}
"""


def test_the_mapping_deletes_what_succeeded_and_sqs_dead_letters_what_keeps_failing(
    aws: Emulator, tmp_path: Path
) -> None:
    # Given a queue consumed through an event source mapping with partial batch responses
    (tmp_path / "template.yaml").write_text(MAPPING_TEMPLATE, encoding="utf-8")
    (tmp_path / "consumer").mkdir()
    (tmp_path / "consumer" / "consumer.py").write_text(CONSUMER, encoding="utf-8")
    logs: list[str] = []
    with Runtime(
        template=tmp_path / "template.yaml",
        stacks=[StackRequest("mapping")],
        emulator=aws,
        scratch_dir=tmp_path,
        on_log=lambda function, line: logs.append(line),
    ) as runtime:
        [mapping] = runtime.stacks[0].event_sources
        assert (mapping.batch_size, mapping.maximum_concurrency) == (4, 2)
        assert len(runtime.functions) == 2  # one execution environment per concurrent invocation
        sqs = boto3.client("sqs")
        dead = runtime.stacks[0].ref("Dead")

        # When good, failing and crashing messages arrive
        for body in ("ok-1", "ok-2", "fail", "crash"):
            sqs.send_message(QueueUrl=mapping.queue_url, MessageBody=body)

        # Then the failing and the crashing ones reach the dead-letter queue after 2 receives each,
        # moved by SQS's own redrive policy
        moved: list[str] = []
        deadline = time.monotonic() + 30
        while len(moved) < 2 and time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            ):
                moved.append(message["Body"])
                sqs.delete_message(QueueUrl=dead, ReceiptHandle=message["ReceiptHandle"])
        assert sorted(moved) == ["crash", "fail"]
        assert runtime.wait_idle(10)

    # and the good ones were handled and deleted (a batch with the crash failed whole: they may run twice)
    seen = [r for line in logs if line.startswith("RECORDS ") for r in json.loads(line.split(" ", 1)[1])]
    assert {"ok-1", "ok-2"} <= {r["body"] for r in seen}
    # and each record was shaped as Lambda's SQS poller shapes it
    assert {r["eventSource"] for r in seen} == {"aws:sqs"}
    assert {r["eventSourceARN"] for r in seen} == {mapping.queue_arn}
    assert max(int(r["attributes"]["ApproximateReceiveCount"]) for r in seen if r["body"] == "fail") == 2


def test_an_event_source_moto_cannot_deliver_is_refused_naming_where_it_is(
    aws: Emulator, tmp_path: Path
) -> None:
    # Given a template whose function takes S3 events directly (moto cannot invoke Lambda)
    direct = MAPPING_TEMPLATE.replace(
        "          Type: SQS\n          Properties:\n            Queue: !GetAtt Work.Arn\n",
        "          Type: S3\n          Properties:\n            Bucket: !Ref Work\n",
    )
    (tmp_path / "template.yaml").write_text(direct, encoding="utf-8")
    (tmp_path / "consumer").mkdir()

    # Then the runtime does not start, and says which event it cannot emulate
    runtime = Runtime(template=tmp_path / "template.yaml", stacks=[StackRequest("direct")], emulator=aws)
    with pytest.raises(RuntimeStartError, match=r"Resources.Consumer.Properties.Events.Work: Type S3 is not"):
        runtime.start()
