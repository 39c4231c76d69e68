"""template.yaml's Operations section: the encrypted notification topic and who may publish to it, the
pipeline status rule and its message, the alarms, the dashboard (docs/operations.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tests.support.project import DOCUMENTED_STATUS_EVENT

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_EVENT = "SageMaker Model Building Pipeline Execution Status Change"

ALARMS = {"DeadLetterAlarm", "UploadBacklogAlarm", "TriggerErrorsAlarm"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    doc: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
    return doc


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template["Resources"]
    return found


def _props(resources: dict[str, dict[str, Any]], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = resources[logical_id]["Properties"]
    return props


def _documented_status_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(DOCUMENTED_STATUS_EVENT.read_text(encoding="utf-8"))
    return event


def _at(event: dict[str, Any], path: str) -> Any:
    """The value at an input path in dot notation (``$.detail.x``), as EventBridge reads it."""
    value: Any = event
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return value


def _sub_text(node: Any) -> str:
    """The text of a !Sub (either form), variables left as ${...}."""
    arg = node["Fn::Sub"]
    return str(arg if isinstance(arg, str) else arg[0])


# -- the topic ---------------------------------------------------------------------------------------


def test_the_topic_is_encrypted_with_its_own_rotated_key_not_the_aws_managed_one(
    resources: dict[str, dict[str, Any]],
) -> None:
    topic = _props(resources, "NotificationTopic")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["NotificationKey", "Arn"]}
    assert "alias/aws/sns" not in json.dumps(topic)
    key = _props(resources, "NotificationKey")
    assert key["EnableKeyRotation"] is True


def test_the_key_lets_eventbridge_and_cloudwatch_encrypt_and_nothing_more(
    resources: dict[str, dict[str, Any]],
) -> None:
    statements = _props(resources, "NotificationKey")["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s["Principal"]]
    assert len(services) == 1
    (service,) = services
    assert sorted(service["Principal"]["Service"]) == ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    # exactly the actions the SNS guide names for AWS services publishing to an encrypted topic
    # (review finding 9: kms:GenerateDataKey alone is not what it documents)
    assert sorted(service["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    # the only other statement keeps the key administrable by the account (IAM decides who)
    (admin,) = [s for s in statements if s is not service]
    assert admin["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}


def test_only_this_stacks_rule_and_alarms_may_publish(resources: dict[str, dict[str, Any]]) -> None:
    policy = _props(resources, "NotificationTopicPolicy")
    assert policy["Topics"] == [{"Ref": "NotificationTopic"}]
    statements = policy["PolicyDocument"]["Statement"]
    allows = {s["Principal"]["Service"]: s for s in statements if s["Effect"] == "Allow"}
    assert set(allows) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    for statement in allows.values():
        assert statement["Action"] == "sns:Publish"
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    rule = allows["events.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert rule == {"Fn::GetAtt": ["PipelineStatusRule", "Arn"]}
    alarms = _sub_text(allows["cloudwatch.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"])
    assert alarms.endswith(":alarm:${AWS::StackName}-*")
    # and nobody else: IAM principals of the account are denied publishing
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Action"] == "sns:Publish"
    assert deny["Condition"] == {"Bool": {"aws:PrincipalIsAWSService": "false"}}


def test_every_alarm_is_named_so_the_topic_policy_admits_it(resources: dict[str, dict[str, Any]]) -> None:
    alarms = {k for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms == ALARMS
    for logical_id in alarms:
        props = _props(resources, logical_id)
        assert _sub_text(props["AlarmName"]).startswith("${AWS::StackName}-"), logical_id
        assert props["AlarmActions"] == [{"Ref": "NotificationTopic"}], logical_id


def test_an_email_is_subscribed_only_when_given(template: dict[str, Any]) -> None:
    subscription = template["Resources"]["NotificationEmailSubscription"]
    assert subscription["Condition"] == "SubscribeEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "NotificationEmail"}
    assert template["Conditions"]["SubscribeEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
    }
    pattern = template["Parameters"]["NotificationEmail"]["AllowedPattern"]
    assert template["Parameters"]["NotificationEmail"]["Default"] == ""
    assert re.fullmatch(pattern, "ops@example.com")
    assert not re.fullmatch(pattern, "not an address")


# -- the rule ----------------------------------------------------------------------------------------


def test_the_rule_matches_this_pipelines_failed_and_stopped_runs_and_succeeded_on_request(
    template: dict[str, Any],
) -> None:
    pattern = template["Resources"]["PipelineStatusRule"]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == [PIPELINE_EVENT]
    assert pattern["detail"]["pipelineArn"] == [{"Fn::GetAtt": ["Pipeline", "PipelineArn"]}]
    condition, with_success, without = pattern["detail"]["currentPipelineExecutionStatus"]["Fn::If"]
    assert condition == "NotifySucceeded"
    assert sorted(with_success) == ["Failed", "Stopped", "Succeeded"]
    assert sorted(without) == ["Failed", "Stopped"]
    assert template["Conditions"]["NotifySucceeded"] == {"Fn::Equals": [{"Ref": "NotifyOnSuccess"}, "true"]}
    assert template["Parameters"]["NotifyOnSuccess"]["Default"] == "false"
    # and it filters on fields the event SageMaker documents has, with its source and detail type
    documented = _documented_status_event()
    assert documented["source"] in pattern["source"]
    assert documented["detail-type"] in pattern["detail-type"]
    assert set(pattern["detail"]) <= set(documented["detail"])
    assert documented["detail"]["currentPipelineExecutionStatus"] in with_success


def test_the_message_is_a_sentence_naming_the_execution_its_status_and_how_to_see_why(
    template: dict[str, Any],
) -> None:
    (target,) = template["Resources"]["PipelineStatusRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "NotificationTopic"}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        "execution": "$.detail.pipelineExecutionArn",
        "status": "$.detail.currentPipelineExecutionStatus",
        "upload": "$.detail.pipelineExecutionDescription",  # the ledger: the upload that ran
    }
    text = _sub_text(transformer["InputTemplate"])
    # Plain text, not JSON (review finding 7): EventBridge sends such a template's result as it is,
    # where a quoted JSON string would reach the mail in quotes
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert text.startswith("Pipeline ${PipelineName}: execution <execution> is <status>. It ran: <upload>.")
    assert ".venv/bin/s3sm status --stack ${AWS::StackName} --execution <execution>" in text
    assert "https://${AWS::Region}.console.aws.amazon.com/sagemaker/" in text
    # Filled from the event SageMaker documents, each input path finds its value: the sentence names the
    # execution and its status, with no quote around it
    event = _documented_status_event()
    message = text
    for name, path in transformer["InputPathsMap"].items():
        message = message.replace(f"<{name}>", _at(event, path))
    execution = event["detail"]["pipelineExecutionArn"]
    assert message.startswith(
        f"Pipeline ${{PipelineName}}: execution {execution} is Succeeded. It ran: SomeDescription. See why: "
    )
    assert "<" not in message
    assert '"' not in message


def test_the_alarms_watch_dead_letters_the_upload_backlog_and_trigger_errors(
    resources: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    def watched(logical_id: str) -> tuple[str, str, Any, str, Any]:
        p = _props(resources, logical_id)
        (dimension,) = p["Dimensions"]
        return p["Namespace"], p["MetricName"], dimension["Value"], p["ComparisonOperator"], p["Threshold"]

    assert watched("DeadLetterAlarm") == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"Fn::GetAtt": ["TriggerDeadLetterQueue", "QueueName"]},
        "GreaterThanThreshold",
        0,
    )
    assert template["Parameters"]["UploadAgeAlarmSeconds"]["Default"] == 3600
    assert watched("TriggerErrorsAlarm") == (
        "AWS/Lambda",
        "Errors",
        {"Ref": "TriggerFunction"},
        "GreaterThanThreshold",
        0,
    )
    for logical_id in ALARMS:  # no data (an idle stack) is not an alarm
        assert _props(resources, logical_id)["TreatMissingData"] == "notBreaching"


def test_the_backlog_alarm_counts_every_upload_in_the_queue_for_the_whole_window(
    resources: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    # Given the upload-backlog alarm (review finding 2: on ApproximateAgeOfOldestMessage, it was blind to
    # every upload received three times or more, which is every upload waiting out a quota)
    alarm = _props(resources, "UploadBacklogAlarm")
    assert "MetricName" not in alarm
    assert "ApproximateAgeOfOldestMessage" not in json.dumps(alarm)
    metrics = {m["Id"]: m for m in alarm["Metrics"]}

    # Then it returns one expression: the upload queue's visible plus not-visible messages, each minute
    (returned,) = [m for m in metrics.values() if m.get("ReturnData", True)]
    terms = re.findall(r"[a-z][A-Za-z0-9_]*", returned["Expression"])
    assert returned["Expression"].replace(" ", "") == "+".join(terms)
    counted = {metrics[term]["MetricStat"]["Metric"]["MetricName"] for term in terms}
    assert counted == {"ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible"}
    for term in terms:
        stat = metrics[term]["MetricStat"]
        assert stat["Metric"]["Namespace"] == "AWS/SQS"
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["UploadQueue", "QueueName"]}}
        ]
        assert (stat["Period"], stat["Stat"]) == (60, "Maximum")
    # And it alarms when every minute of UploadAgeAlarmSeconds held an upload, and tells when it clears
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert "DatapointsToAlarm" not in alarm  # all of the evaluated minutes
    assert alarm["EvaluationPeriods"] == {
        "Fn::FindInMap": ["UploadAgeAlarmWindow", {"Ref": "UploadAgeAlarmSeconds"}, "Minutes"]
    }
    assert alarm["OKActions"] == [{"Ref": "NotificationTopic"}]
    # And every value UploadAgeAlarmSeconds allows is that many minutes, within CloudWatch's one day
    parameter = template["Parameters"]["UploadAgeAlarmSeconds"]
    window = template["Mappings"]["UploadAgeAlarmWindow"]
    assert {str(s) for s in parameter["AllowedValues"]} == set(window)
    assert parameter["Default"] in parameter["AllowedValues"]
    for seconds, entry in window.items():
        assert entry["Minutes"] * 60 == int(seconds) <= 86400, seconds


def test_undelivered_notifications_are_kept_and_only_the_rule_may_send_them(
    resources: dict[str, dict[str, Any]],
) -> None:
    assert _props(resources, "NotificationDeadLetterQueue")["SqsManagedSseEnabled"] is True
    (statement,) = _props(resources, "NotificationDeadLetterQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["PipelineStatusRule", "Arn"]}}
    }


# -- the dashboard -----------------------------------------------------------------------------------


def _dashboard(resources: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    body, variables = _props(resources, "OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    values = {name: f"<{name}>" for name in variables}
    text = re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m.group(1), f"<{m.group(1)}>"), str(body))
    parsed: dict[str, Any] = json.loads(text)
    return parsed, dict(variables)


def test_the_dashboard_body_is_valid_json_with_every_metric_asked_for(
    resources: dict[str, dict[str, Any]],
) -> None:
    body, _ = _dashboard(resources)
    metrics = {
        (m[0], m[1], m[3])
        for widget in body["widgets"]
        for m in widget["properties"]["metrics"]
        if isinstance(m[0], str)  # not a metric math expression
    }
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "<UploadQueueName>"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "<UploadQueueName>"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "<DeadLetterQueueName>"),
        ("AWS/Lambda", "Invocations", "<TriggerFunction>"),
        ("AWS/Lambda", "Errors", "<TriggerFunction>"),
        ("AWS/Lambda", "Duration", "<TriggerFunction>"),
        *{
            ("AWS/Sagemaker/ModelBuildingPipeline", f"Execution{outcome}", "<PipelineName>")
            for outcome in ("Started", "Succeeded", "Failed", "Stopped")
        },
        *{
            ("<MetricsNamespace>", name, "<MetricsService>")
            for name in ("ExecutionsStarted", "RecordsSkipped", "StartFailures")
        },
    } <= metrics


# The statistics CloudWatch offers for the SageMaker Pipelines metrics: no percentiles.
PIPELINE_METRIC_STATISTICS = {"Average", "Sum", "Minimum", "Maximum", "SampleCount"}


def test_the_dashboard_asks_only_for_statistics_the_pipeline_metrics_have(
    resources: dict[str, dict[str, Any]],
) -> None:
    # Given every pipeline metric the dashboard draws (review finding 6: ExecutionDuration as p50)
    body, _ = _dashboard(resources)
    asked = [
        (
            metric[1],
            (metric[-1] if isinstance(metric[-1], dict) else {}).get(
                "stat", widget["properties"].get("stat")
            ),
        )
        for widget in body["widgets"]
        for metric in widget["properties"]["metrics"]
        if metric[0] == "AWS/Sagemaker/ModelBuildingPipeline"
    ]
    # Then each asks for a statistic the metric has, so no widget stays empty
    assert ("ExecutionDuration", "Average") in asked
    for name, stat in asked:
        assert stat in PIPELINE_METRIC_STATISTICS, (name, stat)


def test_the_dashboard_shows_what_the_backlog_alarm_counts(resources: dict[str, dict[str, Any]]) -> None:
    body, _ = _dashboard(resources)
    alarm = {m["Id"]: m for m in _props(resources, "UploadBacklogAlarm")["Metrics"]}
    (widget,) = [
        w for w in body["widgets"] if any(isinstance(m[0], dict) for m in w["properties"]["metrics"])
    ]
    rows = widget["properties"]["metrics"]
    (expression,) = [m[0] for m in rows if isinstance(m[0], dict)]
    assert expression["expression"] == alarm["uploads"]["Expression"]
    ids = {m[-1]["id"]: m[1] for m in rows if isinstance(m[0], str) and "id" in m[-1]}
    assert ids == {k: v["MetricStat"]["Metric"]["MetricName"] for k, v in alarm.items() if "MetricStat" in v}


def test_the_dashboard_reads_the_trigger_metrics_where_powertools_writes_them(
    resources: dict[str, dict[str, Any]],
) -> None:
    _, variables = _dashboard(resources)
    environment = _props(resources, "TriggerFunction")["Environment"]["Variables"]
    assert variables["MetricsNamespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert variables["MetricsService"] == environment["POWERTOOLS_SERVICE_NAME"]  # Powertools' dimension


def test_the_outputs_give_the_topic_and_the_dashboards_url(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["NotificationTopicArn"]["Value"] == {"Ref": "NotificationTopic"}
    url = _sub_text(outputs["DashboardUrl"]["Value"])
    assert url.startswith(
        "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}"
    )
    assert url.endswith("#dashboards:name=${OperationsDashboard}")
    # what s3sm redrive judges dead letters with, besides the prefixes' outputs
    assert outputs["TriggerMode"]["Value"] == {"Ref": "TriggerMode"}
    assert outputs["MarkerName"]["Value"] == {"Ref": "MarkerName"}


def test_the_new_parameters_are_grouped_for_the_console(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = {p for g in groups for p in g["Parameters"]}
    assert {"NotificationEmail", "NotifyOnSuccess", "UploadAgeAlarmSeconds"} <= grouped
    assert grouped == set(template["Parameters"])
