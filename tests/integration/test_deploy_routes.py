"""The route resources and the bucket switch through the real deploy handler, against the emulator.

CloudFormation's side is the recording server of conftest.py: each test reads the one answer the
function PUT to it, as CloudFormation would (Status, Reason, Data for GetAtt).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

OWN = "s3-sagemaker-trigger"
CLAIMS_ROUTES = {
    "routes": [
        {
            "prefix": "raw/claims/",
            "pattern": r"date=(?P<date>\d{4}-\d{2}-\d{2})/[^/]+\.csv",
            "pipeline": "claims-training",
            "parameters": {"InputDataUrl": "{snapshot_url}", "RunDate": "{date}"},
        },
        {"prefix": "raw/"},
    ]
}
THEIR_QUEUE = "their-uploads"


def resource_event(
    deploy: Any, resource_type: str, logical_id: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """A Create request for another custom resource of the stack (the sample Pipeline request, re-aimed)."""
    event: dict[str, Any] = deploy.event("cfn-create.json")
    event.update(ResourceType=resource_type, LogicalResourceId=logical_id)
    event["ResourceProperties"] = {"ServiceToken": event["ServiceToken"], **properties}
    return event


def check_claims_routes(deploy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The stack's own pipeline created, then RoutesCheck on the claims routes (in ROUTES_FILE)."""
    assert deploy.invoke(deploy.event("cfn-create.json"))["Status"] == "SUCCESS"
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps(CLAIMS_ROUTES), encoding="utf-8")
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    event = resource_event(deploy, "Custom::RoutesCheck", "RoutesCheck", {"PipelineName": OWN})
    answer: dict[str, Any] = deploy.invoke(event)
    return answer


def test_routes_answer_the_stacks_permissions_and_pattern_as_attributes(deploy: Any) -> None:
    # Given the sample Routes request and the shipped routes.yaml (in the artifact as routes.json)
    answer = deploy.invoke(deploy.event("cfn-routes-create.json"))

    # Then CloudFormation gets, as attributes, exactly the stack's own pipeline and raw/ of its bucket
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    data = answer["Data"]
    assert data["PipelineArns"] == f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{OWN}"
    assert data["UploadObjectArns"] == "arn:aws:s3:::example-data-bucket/raw/*"
    assert json.loads(data["EventPattern"])["detail"] == {
        "bucket": {"name": ["example-data-bucket"]},
        "object": {"key": [{"prefix": "raw/"}]},
    }


def test_a_routed_prefix_overlapping_the_output_fails_the_deploy_in_one_line(deploy: Any) -> None:
    answer = deploy.invoke(deploy.event("cfn-routes-create.json", Properties={"CleanPrefix": "raw/out/"}))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("the routed prefix 'raw/' and CleanPrefix 'raw/out/' overlap")
    assert "\n" not in answer["Reason"]


def test_the_check_answers_the_parameter_types_of_the_stacks_own_pipeline(
    deploy: Any, data_bucket: str, sagemaker: Any
) -> None:
    # Given the stack's own pipeline, created by the Pipeline resource
    assert deploy.invoke(deploy.event("cfn-create.json"))["Status"] == "SUCCESS"

    # When the RoutesCheck resource is created
    answer = deploy.invoke(
        resource_event(deploy, "Custom::RoutesCheck", "RoutesCheck", {"PipelineName": OWN})
    )

    # Then it answers the types the trigger checks values against
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert json.loads(answer["Data"]["ParameterTypes"]) == {
        OWN: {"InputDataUrl": "String", "OutputDataUrl": "String", "ProcessingVolumeSizeInGB": "Integer"}
    }


def test_a_route_setting_a_parameter_its_pipeline_lacks_fails_naming_route_parameter_and_pipeline(
    deploy: Any, data_bucket: str, sagemaker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an existing claims pipeline that declares InputDataUrl only, and a route that sets RunDate
    definition = {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "InputDataUrl", "Type": "String"}],
        "Steps": [],
    }
    sagemaker.create_pipeline(
        PipelineName="claims-training",
        PipelineDefinition=json.dumps(definition),
        RoleArn="arn:aws:iam::123456789012:role/claims",
    )

    # When the deploy checks the claims routes
    answer = check_claims_routes(deploy, tmp_path, monkeypatch)

    # Then it fails, in one line naming the route, the parameter and the pipeline
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(
        "route 1 (prefix 'raw/claims/'): parameter 'RunDate' is not declared by pipeline 'claims-training'"
    )
    assert "\n" not in answer["Reason"]


def test_a_route_to_a_pipeline_that_does_not_exist_fails_the_deploy(
    deploy: Any, data_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = check_claims_routes(deploy, tmp_path, monkeypatch)

    assert answer["Status"] == "FAILED"
    assert "route 1 (prefix 'raw/claims/'): pipeline 'claims-training' does not exist" in answer["Reason"]


def test_an_existing_buckets_notifications_survive_eventbridge_on_and_off(
    deploy: Any, s3: Any, aws: Any
) -> None:
    # Given the user's bucket, which already notifies the user's own queue of their uploads
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=THEIR_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="their-data")
    theirs = {
        "QueueConfigurations": [
            {
                "Id": "their-own",
                "QueueArn": arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
            }
        ]
    }
    s3.put_bucket_notification_configuration(Bucket="their-data", NotificationConfiguration=theirs)

    def configuration() -> dict[str, Any]:
        found = s3.get_bucket_notification_configuration(Bucket="their-data")
        return {k: v for k, v in found.items() if k != "ResponseMetadata"}

    before = configuration()

    # When the stack turns the bucket's EventBridge setting on
    event = resource_event(
        deploy, "Custom::BucketEventBridge", "BucketEventBridge", {"BucketName": "their-data"}
    )
    answer = deploy.invoke(event)

    # Then EventBridge is on and the user's notification is exactly as it was
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    after = configuration()
    assert "EventBridgeConfiguration" in after
    assert {k: v for k, v in after.items() if k != "EventBridgeConfiguration"} == before

    # And deleting the stack turns off only what it turned on
    delete = {**event, "RequestType": "Delete", "PhysicalResourceId": answer["PhysicalResourceId"]}
    delete["ResponseURL"] = deploy.cloudformation.response_url("delete-1")
    assert deploy.invoke(delete)["Status"] == "SUCCESS"
    assert configuration() == before


def test_an_unknown_resource_type_is_answered_failed(deploy: Any) -> None:
    answer = deploy.invoke(resource_event(deploy, "Custom::Elsewhere", "Other", {}))

    assert answer["Status"] == "FAILED"
    assert "unknown ResourceType 'Custom::Elsewhere'" in answer["Reason"]


def test_deleting_the_routes_needs_no_artifact(deploy: Any, tmp_path: Path) -> None:
    # Given a function whose artifact has no routes.json (a broken build)
    deploy.use_artifact(tmp_path)
    event = deploy.event("cfn-routes-create.json")
    delete = {**event, "RequestType": "Delete", "PhysicalResourceId": "routes:x"}

    # Then the stack can still be deleted
    assert deploy.invoke(delete)["Status"] == "SUCCESS"
