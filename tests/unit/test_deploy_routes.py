"""The deploy function's route resources and the bucket switch, with stubbed clients (botocore Stubber).

``Custom::Routes`` turns routes.yaml into what the stack grants and listens to; ``Custom::RoutesCheck``
refuses a route whose pipeline is missing or does not declare what the route sets;
``Custom::BucketEventBridge`` turns an existing bucket's EventBridge setting on and off again, and never
anything else of the bucket's notifications.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from deploy.bucket_events import BucketEventBridgeResource
from deploy.errors import DeployError
from deploy.resource import Request
from deploy.routing import MAX_DATA_BYTES, RoutesCheckResource, RoutesResource

from contract.routes import Routes, event_pattern, parse

STACK_ID = "arn:aws-cn:cloudformation:cn-north-1:111122223333:stack/prod/6b0c4a60-8f0e-11f0-9a51-0e7d6a8d3f1b"
CLAIMS = {
    "prefix": "raw/claims/",
    "pattern": r"date=(?P<date>\d{4}-\d{2}-\d{2})/[^/]+\.csv",
    "pipeline": "claims-training",
    "parameters": {"InputDataUrl": "{snapshot_url}", "RunDate": "{date}"},
}
OWN = {"prefix": "raw/"}
STACK_PROPERTIES = {
    "ServiceToken": "arn:aws-cn:lambda:cn-north-1:111122223333:function:prod-DeployFunction-X",
    "ArtifactVersion": "arn:aws-cn:lambda:cn-north-1:111122223333:function:prod-DeployFunction-X:3",
    "PipelineName": "prod-etl",
    "DataBucket": "prod-data",
    "CleanPrefix": "clean/",
    "SnapshotPrefix": "snapshot/",
}


def routes_of(*items: dict[str, Any]) -> Routes:
    return parse({"routes": list(items)})


def request(properties: dict[str, Any], physical_id: str = "") -> Request:
    return Request("req-1", STACK_ID, physical_id, properties, deadline=time.monotonic() + 300)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and an endpoint where nothing listens: an unstubbed call never leaves."""
    offline = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    for name, value in offline.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


def client(service: str) -> Any:
    return boto3.client(service)


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        yield sm, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    s3_client = client("s3")
    with Stubber(s3_client) as stub:
        yield s3_client, stub
        stub.assert_no_pending_responses()


def definition(**parameters: str) -> dict[str, Any]:
    """A DescribePipeline answer whose definition declares these parameters (name: type)."""
    document = {
        "Version": "2020-12-01",
        "Parameters": [{"Name": n, "Type": t} for n, t in parameters.items()],
    }
    return {
        "PipelineArn": "arn:aws:sagemaker:us-east-1:111122223333:pipeline/x",
        "PipelineDefinition": json.dumps(document),
    }


# -- Custom::Routes -----------------------------------------------------------------------------------


def test_the_default_route_grants_the_stacks_own_pipeline_and_prefix_only() -> None:
    # Given the shipped routes (raw/ to the stack's own pipeline) in a stack of the China partition
    resource = RoutesResource(lambda: routes_of(OWN))
    # When CloudFormation creates the Routes resource
    outcome = resource.create(request(STACK_PROPERTIES))
    # Then the trigger may start exactly that pipeline and read exactly raw/ of that bucket
    data = outcome.data
    assert data["PipelineArns"] == "arn:aws-cn:sagemaker:cn-north-1:111122223333:pipeline/prod-etl"
    assert data["PipelineNames"] == "prod-etl"
    assert data["UploadObjectArns"] == "arn:aws-cn:s3:::prod-data/raw/*"
    assert data["UploadPrefixes"] == "raw/*"
    assert data["UploadUrls"] == "s3://prod-data/raw/"
    # And the rule listens to created objects under raw/ of that bucket only
    assert json.loads(data["EventPattern"]) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["prod-data"]}, "object": {"key": [{"prefix": "raw/"}]}},
    }


def test_a_dataset_route_adds_its_pipeline_and_no_second_prefix_inside_the_first() -> None:
    # Given a dataset route with a pipeline of its own before the catch-all
    routes = routes_of(CLAIMS, OWN)
    outcome = RoutesResource(lambda: routes).create(request(STACK_PROPERTIES))
    # Then both pipelines may be started, each named once, in route order
    assert outcome.data["PipelineArns"].split(",") == [
        "arn:aws-cn:sagemaker:cn-north-1:111122223333:pipeline/claims-training",
        "arn:aws-cn:sagemaker:cn-north-1:111122223333:pipeline/prod-etl",
    ]
    # And raw/claims/ lies inside raw/: one prefix to read and to listen to
    assert outcome.data["UploadPrefixes"] == "raw/*"
    assert json.loads(outcome.data["EventPattern"]) == event_pattern(routes, "prod-data")


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"CleanPrefix": "raw/clean/"}, "the routed prefix 'raw/' and CleanPrefix 'raw/clean/' overlap"),
        ({"SnapshotPrefix": "raw/"}, "the routed prefix 'raw/' and SnapshotPrefix 'raw/' overlap"),
        ({"SnapshotPrefix": "clean/snap/"}, "CleanPrefix 'clean/' and SnapshotPrefix 'clean/snap/' overlap"),
        ({"DataBucket": "Not_A_Bucket"}, "DataBucket 'Not_A_Bucket' is not a bucket name"),
        ({"RawPrefix": "raw/"}, "unknown properties: RawPrefix"),
    ],
)
def test_routes_that_overlap_the_stacks_folders_fail_the_deploy(
    properties: dict[str, str], message: str
) -> None:
    resource = RoutesResource(lambda: routes_of(OWN))
    with pytest.raises(DeployError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resource.create(request({**STACK_PROPERTIES, **properties}))


def test_routes_too_many_for_one_cloudformation_response_are_refused_by_name() -> None:
    many = [{"prefix": f"data/set-{i:03d}/", "pipeline": f"pipeline-number-{i:03d}"} for i in range(60)]
    with pytest.raises(DeployError, match="4,096-byte response"):
        RoutesResource(lambda: routes_of(*many)).create(request(STACK_PROPERTIES))
    assert MAX_DATA_BYTES < 4096


def test_deleting_the_routes_needs_no_routes() -> None:
    def unreadable() -> Routes:
        raise AssertionError("a Delete must not read the routes")

    outcome = RoutesResource(unreadable).delete(request({}, physical_id="routes:req-0"))
    assert outcome.physical_resource_id == "routes:req-0"


# -- Custom::RoutesCheck -----------------------------------------------------------------------------


def test_every_routed_pipeline_is_described_once_and_the_parameter_types_returned(
    sagemaker: tuple[Any, Stubber],
) -> None:
    # Given the claims pipeline and the stack's own, declaring what their routes set
    sm, stub = sagemaker
    stub.add_response(
        "describe_pipeline",
        definition(InputDataUrl="String", RunDate="String", Epochs="Integer"),
        {"PipelineName": "claims-training"},
    )
    stub.add_response(
        "describe_pipeline",
        definition(InputDataUrl="String", OutputDataUrl="String", ProcessingVolumeSizeInGB="Integer"),
        {"PipelineName": "prod-etl"},
    )
    check = RoutesCheckResource(lambda: routes_of(CLAIMS, OWN), sm, waits=())
    # When the check runs
    outcome = check.create(request({"PipelineName": "prod-etl", "ServiceToken": "x"}))
    # Then it answers the types of the parameters the routes set, per pipeline as routed
    assert json.loads(outcome.data["ParameterTypes"]) == {
        "claims-training": {"InputDataUrl": "String", "RunDate": "String"},
        "prod-etl": {
            "InputDataUrl": "String",
            "OutputDataUrl": "String",
            "ProcessingVolumeSizeInGB": "Integer",
        },
    }


def test_a_parameter_the_pipeline_does_not_declare_fails_naming_route_parameter_and_pipeline(
    sagemaker: tuple[Any, Stubber],
) -> None:
    sm, stub = sagemaker
    stub.add_response(
        "describe_pipeline", definition(InputDataUrl="String"), {"PipelineName": "claims-training"}
    )
    stub.add_response(
        "describe_pipeline",
        definition(InputDataUrl="String", OutputDataUrl="String", ProcessingVolumeSizeInGB="Integer"),
        {"PipelineName": "prod-etl"},
    )
    check = RoutesCheckResource(lambda: routes_of(CLAIMS, OWN), sm, waits=())
    with pytest.raises(DeployError) as failed:
        check.create(request({"PipelineName": "prod-etl"}))
    assert str(failed.value) == (
        "route 1 (prefix 'raw/claims/'): parameter 'RunDate' is not declared by pipeline 'claims-training' "
        "(it declares: InputDataUrl)"
    )


def test_a_missing_pipeline_fails_naming_the_route_and_the_pipeline(sagemaker: tuple[Any, Stubber]) -> None:
    sm, stub = sagemaker
    stub.add_client_error(
        "describe_pipeline",
        service_error_code="ResourceNotFound",
        service_message="Pipeline 'claims-training' does not exist.",
        expected_params={"PipelineName": "claims-training"},
    )
    check = RoutesCheckResource(lambda: routes_of(CLAIMS, OWN), sm, waits=())
    with pytest.raises(
        DeployError, match=r"route 1 \(prefix 'raw/claims/'\): pipeline 'claims-training' does not exist"
    ):
        check.create(request({"PipelineName": "prod-etl"}))


def test_a_fixed_value_the_pipeline_would_refuse_fails_the_deploy(sagemaker: tuple[Any, Stubber]) -> None:
    sm, stub = sagemaker
    stub.add_response("describe_pipeline", definition(Epochs="Integer"), {"PipelineName": "train"})
    routes = routes_of({"prefix": "in/", "pipeline": "train", "parameters": {"Epochs": "ten"}})
    with pytest.raises(
        DeployError, match="parameter 'Epochs' of pipeline 'train' is a Integer: 'ten' is not an integer"
    ):
        RoutesCheckResource(lambda: routes, sm, waits=()).create(request({"PipelineName": "prod-etl"}))


def test_a_policy_not_yet_applied_is_waited_for(sagemaker: tuple[Any, Stubber]) -> None:
    # Given DescribePipeline denied once (the just-attached policy not applied yet), then allowed
    sm, stub = sagemaker
    stub.add_client_error(
        "describe_pipeline", service_error_code="AccessDeniedException", http_status_code=400
    )
    stub.add_response(
        "describe_pipeline",
        definition(InputDataUrl="String", OutputDataUrl="String", ProcessingVolumeSizeInGB="Integer"),
        {"PipelineName": "prod-etl"},
    )
    # Then the check waits and succeeds
    outcome = RoutesCheckResource(lambda: routes_of(OWN), sm, waits=(0.0,)).create(
        request({"PipelineName": "prod-etl"})
    )
    assert json.loads(outcome.data["ParameterTypes"]) == {
        "prod-etl": {
            "InputDataUrl": "String",
            "OutputDataUrl": "String",
            "ProcessingVolumeSizeInGB": "Integer",
        }
    }


# -- Custom::BucketEventBridge -----------------------------------------------------------------------

USERS_QUEUE = {
    "Id": "their-own",
    "QueueArn": "arn:aws:sqs:us-east-1:111122223333:their-queue",
    "Events": ["s3:ObjectCreated:*"],
    "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "incoming/"}]}},
}


def test_turning_eventbridge_on_writes_back_the_buckets_other_notifications_unchanged(
    s3: tuple[Any, Stubber],
) -> None:
    # Given an existing bucket that notifies its owner's queue
    s3_client, stub = s3
    stub.add_response(
        "get_bucket_notification_configuration",
        {"QueueConfigurations": [USERS_QUEUE]},
        {"Bucket": "their-data"},
    )
    # When the stack turns its EventBridge setting on
    stub.add_response(
        "put_bucket_notification_configuration",
        {},
        {
            "Bucket": "their-data",
            "NotificationConfiguration": {
                "QueueConfigurations": [USERS_QUEUE],
                "EventBridgeConfiguration": {},
            },
            "SkipDestinationValidation": True,
        },
    )
    outcome = BucketEventBridgeResource(s3_client).create(request({"BucketName": "their-data"}))
    # Then it remembers that it added the setting (and so may remove it)
    assert outcome.physical_resource_id == "their-data|added"


def test_a_setting_that_was_on_already_is_left_and_never_removed(s3: tuple[Any, Stubber]) -> None:
    s3_client, stub = s3
    stub.add_response(
        "get_bucket_notification_configuration",
        {"EventBridgeConfiguration": {}, "QueueConfigurations": [USERS_QUEUE]},
        {"Bucket": "their-data"},
    )
    resource = BucketEventBridgeResource(s3_client)
    outcome = resource.create(request({"BucketName": "their-data"}))
    assert outcome.physical_resource_id == "their-data|kept"
    # And the stack's delete changes nothing (no further call is stubbed)
    resource.delete(request({"BucketName": "their-data"}, physical_id="their-data|kept"))


def test_delete_removes_only_the_setting_it_added(s3: tuple[Any, Stubber]) -> None:
    s3_client, stub = s3
    stub.add_response(
        "get_bucket_notification_configuration",
        {"EventBridgeConfiguration": {}, "QueueConfigurations": [USERS_QUEUE]},
        {"Bucket": "their-data"},
    )
    stub.add_response(
        "put_bucket_notification_configuration",
        {},
        {
            "Bucket": "their-data",
            "NotificationConfiguration": {"QueueConfigurations": [USERS_QUEUE]},
            "SkipDestinationValidation": True,
        },
    )
    BucketEventBridgeResource(s3_client).delete(
        request({"BucketName": "their-data"}, physical_id="their-data|added")
    )


def test_delete_of_a_bucket_deleted_meanwhile_succeeds(s3: tuple[Any, Stubber]) -> None:
    s3_client, stub = s3
    stub.add_client_error(
        "get_bucket_notification_configuration", service_error_code="NoSuchBucket", http_status_code=404
    )
    BucketEventBridgeResource(s3_client).delete(request({"BucketName": "gone"}, physical_id="gone|added"))


def test_a_bucket_that_cannot_be_read_fails_the_deploy_with_the_cause(s3: tuple[Any, Stubber]) -> None:
    s3_client, stub = s3
    stub.add_client_error(
        "get_bucket_notification_configuration", service_error_code="AccessDenied", http_status_code=403
    )
    with pytest.raises(
        DeployError, match=r"GetBucketNotificationConfiguration their-data failed: .*AccessDenied"
    ):
        BucketEventBridgeResource(s3_client).create(request({"BucketName": "their-data"}))
