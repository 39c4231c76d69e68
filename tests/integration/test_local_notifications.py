"""The template's own PipelineStatusRule, created in moto by local/stack.py, against SageMaker's
status-change event exactly as SageMaker documents it (tests.support.project.DOCUMENTED_STATUS_EVENT):
which statuses reach the topic (NotifyOnSuccess), as plain text, and nothing of another pipeline; and the
emulator sending that event on each status change."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from local.emulator import DETAIL_TYPE, SOURCE, Emulator
from local.notifications import Notifications
from local.stack import DeployedStack, Resolver, Resource, StackDeployer, Template
from tests.support.project import DOCUMENTED_STATUS_EVENT, ROOT

PIPELINE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/s3-sagemaker-trigger"
OTHER_PIPELINE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/someone-elses"
DOCUMENTED = json.loads(DOCUMENTED_STATUS_EVENT.read_text(encoding="utf-8"))


def notifications(aws: Emulator, **parameters: str) -> tuple[Notifications, list[str]]:
    """The rule and topic as the local stack ``rule-test`` creates them, with these parameters; and what
    the topic sends."""
    template = Template(ROOT / "template.yaml")
    stack = DeployedStack(
        "rule-test", {}, Resolver(template, "rule-test", template.parameter_values(parameters))
    )
    stack.resolver.created["Pipeline"] = Resource(
        ref="s3-sagemaker-trigger", attributes={"PipelineArn": PIPELINE_ARN}
    )
    deployer = StackDeployer(template, aws_env=aws.environ())
    for logical_id in ("NotificationTopic", "PipelineStatusRule"):
        deployer.create(stack, logical_id)
    sent: list[str] = []
    found = Notifications(
        events=boto3.client("events"),
        sqs=boto3.client("sqs"),
        cloudwatch=None,
        region=aws.region,
        notify=lambda kind, d: sent.append(d["message"]),
    )
    found.watch_topics(stack)
    return found, sent


def documented_entry(
    pipeline_arn: str, status: str, previous: str, source: str | None = None
) -> dict[str, Any]:
    """SageMaker's documented event as a PutEvents entry, for an execution of ``pipeline_arn``."""
    execution = f"{pipeline_arn}/execution/x{status.lower()}1"
    detail = {
        **DOCUMENTED["detail"],
        "pipelineArn": pipeline_arn,
        "pipelineExecutionArn": execution,
        "currentPipelineExecutionStatus": status,
        "previousPipelineExecutionStatus": previous,
    }
    return {
        "Source": source or DOCUMENTED["source"],
        "DetailType": DOCUMENTED["detail-type"],
        "Detail": json.dumps(detail),
        "Resources": [pipeline_arn, execution],
    }


def send(pipeline_arn: str, status: str, previous: str = "Executing") -> str:
    entry = documented_entry(pipeline_arn, status, previous)
    assert boto3.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0
    return str(entry["Resources"][1])


def delivered(found: tuple[Notifications, list[str]]) -> list[Any]:
    notifications, sent = found
    notifications.drain()
    messages = list(sent)
    sent.clear()
    return messages


def test_failed_and_stopped_runs_are_published_and_succeeded_ones_are_not_by_default(aws: Emulator) -> None:
    found = notifications(aws)
    failed, stopped = send(PIPELINE_ARN, "Failed"), send(PIPELINE_ARN, "Stopped", previous="Stopping")
    send(PIPELINE_ARN, "Succeeded")
    send(PIPELINE_ARN, "Executing", previous="")
    messages = delivered(found)
    assert [m.split(" is ")[1].split(".")[0] for m in messages] == ["Failed", "Stopped"]
    # the topic receives the sentence itself, as plain text: no quotes around it (review finding 7)
    assert messages[0] == (
        f"Pipeline s3-sagemaker-trigger: execution {failed} is Failed. It ran: SomeDescription. "
        f"See why: .venv/bin/s3sm status --stack rule-test --execution {failed} "
        "(or the SageMaker console, Pipelines: "
        "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/pipelines)"
    )
    assert stopped in messages[1]


def test_notify_on_success_adds_succeeded_runs(aws: Emulator) -> None:
    found = notifications(aws, NotifyOnSuccess="true")
    succeeded = send(PIPELINE_ARN, "Succeeded")
    (message,) = delivered(found)
    assert message.startswith(f"Pipeline s3-sagemaker-trigger: execution {succeeded} is Succeeded.")


def test_another_pipelines_runs_are_not_this_stacks_business(aws: Emulator) -> None:
    found = notifications(aws)
    send(OTHER_PIPELINE_ARN, "Failed")
    assert delivered(found) == []


@pytest.mark.parametrize("source", ["aws.sagemaker.fake", "custom.app"])
def test_an_event_from_another_source_is_not_published(aws: Emulator, source: str) -> None:
    found = notifications(aws)
    entry = documented_entry(PIPELINE_ARN, "Failed", "Executing", source=source)
    boto3.client("events").put_events(Entries=[entry])
    assert delivered(found) == []


def test_each_status_change_sends_the_event_sagemaker_documents(aws: Emulator) -> None:
    # Given a rule of our own on SageMaker's status-change events, to a queue
    sqs, events, sagemaker = boto3.client("sqs"), boto3.client("events"), boto3.client("sagemaker")
    url = sqs.create_queue(QueueName="status-events")["QueueUrl"]
    pattern = {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}
    events.put_rule(Name="status-events", EventPattern=json.dumps(pattern))
    queue_arn = f"arn:aws:sqs:{aws.region}:123456789012:status-events"
    events.put_targets(Rule="status-events", Targets=[{"Id": "q", "Arn": queue_arn}])
    sagemaker.create_pipeline(PipelineName="p", PipelineDefinition="{}", RoleArn="r" * 20)
    # When an execution starts, and the local runner records it Failed
    arn = sagemaker.start_pipeline_execution(
        PipelineName="p", PipelineExecutionDescription="Cleans s3://b/snapshot/x.csv"
    )["PipelineExecutionArn"]
    aws.record_execution(arn, "Failed", "boom")
    # Then one event per transition, in SageMaker's documented shape: source, detail type, detail fields
    received = [
        json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    by_status = {e["detail"]["currentPipelineExecutionStatus"]: e for e in received}
    assert sorted(by_status) == ["Executing", "Failed"]
    failed = by_status["Failed"]
    assert (failed["source"], failed["detail-type"]) == (DOCUMENTED["source"], DOCUMENTED["detail-type"])
    assert list(failed["detail"]) == list(DOCUMENTED["detail"])
    assert failed["detail"]["previousPipelineExecutionStatus"] == "Executing"
    assert failed["detail"]["pipelineExecutionArn"] == arn
    assert "executionEndTime" not in by_status["Executing"]["detail"]
