"""template.yaml: least privilege, the trigger's wiring, the data bucket's protection, the custom resource.

The template is read with cfn-lint's decoder (it understands !Ref, !Sub, !GetAtt). Intrinsic values are
compared in a canonical text form: ``!Ref X`` -> ``${X}``, ``!GetAtt X.Arn`` -> ``${X.Arn}``, ``!Sub``
-> its string (with its variables substituted), ``!FindInMap [M, K, A]`` -> ``${M[K].A}``, ``!If [C, A, B]``
-> ``${If(C,A,B)}``, ``!Split [",", X]`` -> ``${Split(X)}``. A statement under ``!If [C, S, NoValue]`` counts
with its actions marked ``(if C)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from deploy.properties import PipelineProperties
from trigger import backoff

from local.stack import Resolver, Template
from pipeline.pipeline import image_uris_by_region, render_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SQS_MAX_RETENTION = 14 * 86400  # SQS's longest MessageRetentionPeriod

PIPELINE_ARN = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:pipeline/${PipelineName}"
# The data bucket: the stack's own, or the existing one named by ExistingBucketName.
BUCKET = "${If(CreateBucket,${DataBucket},${ExistingBucketName})}"
BUCKET_ARN = f"arn:${{AWS::Partition}}:s3:::{BUCKET}"
# What the Routes custom resource derives from routes.yaml (deploy/routing.py).
ROUTED_PIPELINES = "${Split(${Routes.PipelineArns})}"
ROUTED_OBJECTS = "${Split(${Routes.UploadObjectArns})}"
DATA_KEY = "${DataKmsKeyArn}"
EXISTING_BUCKET_ARN = "arn:${AWS::Partition}:s3:::${ExistingBucketName}"
PROCESSING_LOGS = (
    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/ProcessingJobs"
)
SKLEARN_REPOSITORY = (
    "arn:${AWS::Partition}:ecr:${AWS::Region}:${SklearnImageRegistry[${AWS::Region}].Account}"
    ":repository/sagemaker-scikit-learn"
)
# The jobs SageMaker Pipelines starts for a step are named pipelines-<execution id>-<step>-<suffix>.
PIPELINE_PROCESSING_JOBS = (
    "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:processing-job/pipelines-*"
)
# The execution role lives under a path named after the stack: its own ARN, without a dependency cycle.
EXECUTION_ROLE_PATH_ARNS = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}/*"
# Actions IAM only accepts with Resource "*" (no resource-level permissions).
NO_RESOURCE_LEVEL = {"ecr:GetAuthorizationToken"}

# Every permission each role has (its inline policies and the AWS::IAM::Policy resources attached to
# it), as (action, resource): the whole of it, nothing more.
EXPECTED_PERMISSIONS: dict[str, set[tuple[str, str]]] = {
    "TriggerFunctionRole": {
        ("sagemaker:StartPipelineExecution", ROUTED_PIPELINES),
        *{
            (f"sqs:{action}", "${UploadQueue.Arn}")
            for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes", "ChangeMessageVisibility")
        },
        ("s3:GetObject", ROUTED_OBJECTS),
        ("s3:GetObjectVersion", ROUTED_OBJECTS),
        ("s3:ListBucket", BUCKET_ARN),
        ("s3:ListBucketVersions", BUCKET_ARN),
        ("s3:PutObject", f"{BUCKET_ARN}/${{SnapshotPrefix}}*"),
        ("s3:GetObject", f"{BUCKET_ARN}/${{SnapshotPrefix}}*"),
        ("s3:AbortMultipartUpload", f"{BUCKET_ARN}/${{SnapshotPrefix}}*"),
        ("kms:Decrypt (if UseDataKmsKey)", DATA_KEY),
        ("kms:GenerateDataKey (if UseDataKmsKey)", DATA_KEY),
        ("logs:CreateLogStream", "${TriggerLogGroup.Arn}"),
        ("logs:PutLogEvents", "${TriggerLogGroup.Arn}"),
    },
    "DeployFunctionRole": {
        *{
            (f"sagemaker:{action}", PIPELINE_ARN)
            for action in (
                "CreatePipeline",
                "UpdatePipeline",
                "DeletePipeline",
                "DescribePipeline",  # a taken name: whose pipeline is it (its owner tag)
                "ListPipelineExecutions",  # a Delete: which executions still run
                "AddTags",
                "DeleteTags",
                "ListTags",
            )
        },
        # a Delete stops them first: DeletePipeline refuses a pipeline with running executions
        ("sagemaker:StopPipelineExecution", f"{PIPELINE_ARN}/execution/*"),
        ("sagemaker:DescribePipeline", ROUTED_PIPELINES),
        ("s3:PutObject", f"{BUCKET_ARN}/code/*"),
        ("kms:GenerateDataKey (if UseDataKmsKey)", DATA_KEY),
        ("s3:GetBucketNotification (if UseExistingBucket)", EXISTING_BUCKET_ARN),
        ("s3:PutBucketNotification (if UseExistingBucket)", EXISTING_BUCKET_ARN),
        ("iam:PassRole", "${SageMakerExecutionRole.Arn}"),
        ("logs:CreateLogStream", "${DeployLogGroup.Arn}"),
        ("logs:PutLogEvents", "${DeployLogGroup.Arn}"),
    },
    "SageMakerExecutionRole": {
        ("s3:ListBucket", BUCKET_ARN),
        ("s3:GetBucketLocation", BUCKET_ARN),
        ("s3:GetObject", f"{BUCKET_ARN}/${{SnapshotPrefix}}*"),
        ("s3:GetObject", f"{BUCKET_ARN}/code/*"),
        ("s3:PutObject", f"{BUCKET_ARN}/${{CleanPrefix}}*"),
        ("s3:AbortMultipartUpload", f"{BUCKET_ARN}/${{CleanPrefix}}*"),
        ("kms:Decrypt (if UseDataKmsKey)", DATA_KEY),
        ("kms:GenerateDataKey (if UseDataKmsKey)", DATA_KEY),
        *{
            (f"logs:{action}", resource)
            for action in ("CreateLogGroup", "CreateLogStream", "PutLogEvents", "DescribeLogStreams")
            for resource in (PROCESSING_LOGS, f"{PROCESSING_LOGS}:*")
        },
        ("ecr:BatchCheckLayerAvailability", SKLEARN_REPOSITORY),
        ("ecr:BatchGetImage", SKLEARN_REPOSITORY),
        ("ecr:GetDownloadUrlForLayer", SKLEARN_REPOSITORY),
        ("ecr:GetAuthorizationToken", "*"),
        *{
            (f"sagemaker:{action}", PIPELINE_PROCESSING_JOBS)
            for action in ("CreateProcessingJob", "DescribeProcessingJob", "StopProcessingJob", "AddTags")
        },
        ("iam:PassRole", EXECUTION_ROLE_PATH_ARNS),
    },
}
TRUSTED_SERVICE = {
    "TriggerFunctionRole": "lambda.amazonaws.com",
    "DeployFunctionRole": "lambda.amazonaws.com",
    "SageMakerExecutionRole": "sagemaker.amazonaws.com",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    doc: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    return doc


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template["Resources"]
    return found


def _shape(node: Any) -> str:
    """The canonical text of a value that may hold intrinsic functions (see the module docstring)."""
    if isinstance(node, str):
        return str(node)
    if isinstance(node, dict) and len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref":
            return f"${{{arg}}}"
        if key == "Fn::GetAtt":
            name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return f"${{{name}.{attribute}}}"
        if key == "Fn::Sub":
            if isinstance(arg, str):
                return str(arg)
            text, variables = str(arg[0]), dict(arg[1])
            for name, value in variables.items():
                text = text.replace(f"${{{name}}}", _shape(value))
            return text
        if key == "Fn::FindInMap":
            mapping, top, second = arg
            return f"${{{mapping}[{_shape(top)}].{second}}}"
        if key == "Fn::If":
            condition, if_true, if_false = arg
            return f"${{If({condition},{_shape(if_true)},{_shape(if_false)})}}"
        if key == "Fn::Split":
            separator, value = arg
            assert separator == ","
            return f"${{Split({_shape(value)})}}"
    raise AssertionError(f"unexpected value in a policy: {node!r}")


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _unconditional(statements: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each statement with the condition it is under ("" for none): ``!If [C, S, !Ref AWS::NoValue]``."""
    for statement in statements:
        if set(statement) == {"Fn::If"}:
            condition, if_true, if_false = statement["Fn::If"]
            assert if_false == {"Ref": "AWS::NoValue"}, statement
            yield condition, if_true
        else:
            yield "", statement


def _statements(resources: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every permission statement: roles' inline policies, policy resources, bucket and queue policies."""
    for logical_id, resource in resources.items():
        props = resource.get("Properties") or {}
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for _, statement in _unconditional(policy["PolicyDocument"]["Statement"]):
                    yield logical_id, statement
        elif kind in (
            "AWS::IAM::Policy",
            "AWS::IAM::ManagedPolicy",
            "AWS::S3::BucketPolicy",
            "AWS::SQS::QueuePolicy",
        ):
            for _, statement in _unconditional(props["PolicyDocument"]["Statement"]):
                yield logical_id, statement
        elif kind == "AWS::Serverless::Function":
            assert "Policies" not in props, f"{logical_id}: use its explicit role, not SAM policy templates"


def _documents(resources: dict[str, dict[str, Any]], role_id: str) -> list[dict[str, Any]]:
    """The role's inline policy documents and those of the AWS::IAM::Policy resources attached to it."""
    role = resources[role_id]
    documents = [policy["PolicyDocument"] for policy in role["Properties"]["Policies"]]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            documents.append(resource["Properties"]["PolicyDocument"])
    return documents


def _permissions(resources: dict[str, dict[str, Any]], role_id: str) -> set[tuple[str, str]]:
    granted: set[tuple[str, str]] = set()
    for document in _documents(resources, role_id):
        for condition, statement in _unconditional(document["Statement"]):
            assert statement["Effect"] == "Allow"
            marker = f" (if {condition})" if condition else ""
            for action in _listed(statement["Action"]):
                for resource in _listed(statement["Resource"]):
                    granted.add((action + marker, _shape(resource)))
    return granted


def _statement(resources: dict[str, dict[str, Any]], role_id: str, action: str) -> dict[str, Any]:
    matching: list[dict[str, Any]] = [
        s
        for document in _documents(resources, role_id)
        for _, s in _unconditional(document["Statement"])
        if action in _listed(s["Action"])
    ]
    (found,) = matching
    return found


# -- least privilege --------------------------------------------------------------------------------


def test_no_allow_statement_uses_a_wildcard_action_or_a_negation(
    resources: dict[str, dict[str, Any]],
) -> None:
    statements = list(_statements(resources))
    assert statements
    for logical_id, statement in statements:
        assert "NotAction" not in statement, logical_id
        assert "NotResource" not in statement, logical_id
        if statement["Effect"] != "Allow":
            continue  # a Deny may be broad: the TLS-only bucket policy denies s3:* on purpose
        for action in _listed(statement["Action"]):
            assert "*" not in action, f"{logical_id}: wildcard action {action}"


def test_no_role_has_managed_policies(resources: dict[str, dict[str, Any]]) -> None:
    for logical_id, resource in resources.items():
        props = resource.get("Properties") or {}
        assert "ManagedPolicyArns" not in props, logical_id
        assert resource["Type"] != "AWS::IAM::ManagedPolicy", logical_id


@pytest.mark.parametrize("role_id", sorted(EXPECTED_PERMISSIONS))
def test_each_role_has_exactly_its_permissions(resources: dict[str, dict[str, Any]], role_id: str) -> None:
    assert _permissions(resources, role_id) == EXPECTED_PERMISSIONS[role_id]


def test_the_only_roles_are_the_three_known_ones(resources: dict[str, dict[str, Any]]) -> None:
    roles = {k for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"}
    assert roles == set(EXPECTED_PERMISSIONS)
    for name, function in resources.items():
        if function["Type"] == "AWS::Serverless::Function":
            assert _shape(function["Properties"]["Role"]) in {f"${{{r}.Arn}}" for r in roles}, name


def test_a_wildcard_resource_only_for_actions_without_resource_level_permissions(
    resources: dict[str, dict[str, Any]],
) -> None:
    for logical_id, statement in _statements(resources):
        if statement["Effect"] != "Allow":
            continue
        if "*" in [_shape(r) for r in _listed(statement["Resource"])]:
            assert set(_listed(statement["Action"])) <= NO_RESOURCE_LEVEL, logical_id


@pytest.mark.parametrize("role_id", sorted(TRUSTED_SERVICE))
def test_each_role_trusts_only_its_service(resources: dict[str, dict[str, Any]], role_id: str) -> None:
    (statement,) = resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Principal": {"Service": TRUSTED_SERVICE[role_id]},
        "Action": "sts:AssumeRole",
    }


def test_the_deploy_function_may_pass_the_execution_role_to_sagemaker_only(
    resources: dict[str, dict[str, Any]],
) -> None:
    statement = _statement(resources, "DeployFunctionRole", "iam:PassRole")
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_the_pipeline_role_may_run_the_pipelines_processing_step(
    resources: dict[str, dict[str, Any]],
) -> None:
    # Given the role the Pipeline resource hands to SageMaker as the pipeline's RoleArn
    pipeline_role = _shape(resources["Pipeline"]["Properties"]["RoleArn"])
    assert pipeline_role == "${SageMakerExecutionRole.Arn}"
    role = resources["SageMakerExecutionRole"]
    granted = _permissions(resources, "SageMakerExecutionRole")
    # Then SageMaker Pipelines may create, tag, watch and stop the step's processing job under it
    for action in ("CreateProcessingJob", "DescribeProcessingJob", "StopProcessingJob", "AddTags"):
        assert (f"sagemaker:{action}", PIPELINE_PROCESSING_JOBS) in granted, action
    # And may pass the role (to itself as the job's role) to SageMaker only; its ARN is under that path
    assert ("iam:PassRole", EXECUTION_ROLE_PATH_ARNS) in granted
    statement = _statement(resources, "SageMakerExecutionRole", "iam:PassRole")
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert _shape(role["Properties"]["Path"]) == "/${AWS::StackName}/"
    assert EXECUTION_ROLE_PATH_ARNS.endswith(f"role{_shape(role['Properties']['Path'])}*")
    # And the step's job runs as that same role: the deploy function fills the definition's ${RoleArn}
    # with the RoleArn it gives the pipeline, so the pipeline passes its own role to the job
    definition = json.loads(render_template(ROOT / "etl"))
    (step,) = definition["Steps"]
    assert (step["Type"], step["Arguments"]["RoleArn"]) == ("Processing", "${RoleArn}")


def test_the_execution_role_lists_only_snapshots_and_code(resources: dict[str, dict[str, Any]]) -> None:
    statement = _statement(resources, "SageMakerExecutionRole", "s3:ListBucket")
    prefixes = [_shape(p) for p in statement["Condition"]["StringLike"]["s3:prefix"]]
    assert prefixes == ["${SnapshotPrefix}*", "code/*"]


def test_the_trigger_lists_only_the_routed_prefixes(resources: dict[str, dict[str, Any]]) -> None:
    # Marker mode lists the marker's folder; the listing is confined to the routed prefixes
    statement = _statement(resources, "TriggerFunctionRole", "s3:ListBucketVersions")
    assert set(_listed(statement["Action"])) == {"s3:ListBucket", "s3:ListBucketVersions"}
    assert {k: _shape(v) for k, v in statement["Condition"]["StringLike"].items()} == {
        "s3:prefix": "${Split(${Routes.UploadPrefixes})}"
    }


def test_the_routes_permissions_are_in_place_before_the_trigger_polls(
    resources: dict[str, dict[str, Any]],
) -> None:
    # Given the policies derived from the routes (attached to the roles after the roles exist)
    policy = resources["TriggerRoutedPipelinesPolicy"]
    assert policy["Properties"]["Roles"] == [{"Ref": "TriggerFunctionRole"}]
    assert resources["DeployRoutedPipelinesPolicy"]["Properties"]["Roles"] == [{"Ref": "DeployFunctionRole"}]
    # Then the trigger (whose event source mapping polls as soon as it exists) waits for its policy
    assert resources["TriggerFunction"]["DependsOn"] == "TriggerRoutedPipelinesPolicy"
    # And the routes check describes the pipelines only once it may, after the stack's own pipeline
    check = resources["RoutesCheck"]
    assert check["DependsOn"] == "DeployRoutedPipelinesPolicy"
    assert _shape(check["Properties"]["PipelineName"]) == "${Pipeline.PipelineName}"


def test_only_this_stacks_upload_rule_may_send_to_the_upload_queue(
    resources: dict[str, dict[str, Any]],
) -> None:
    policy = resources["UploadQueuePolicy"]["Properties"]
    assert [_shape(q) for q in policy["Queues"]] == ["${UploadQueue}"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert _shape(statement["Resource"]) == "${UploadQueue.Arn}"
    assert {k: _shape(v) for k, v in statement["Condition"]["ArnEquals"].items()} == {
        "aws:SourceArn": "${UploadRule.Arn}"
    }
    # And what the rule could not deliver waits in the dead-letter queue, sent by that rule only
    (target,) = resources["UploadRule"]["Properties"]["Targets"]
    assert _shape(target["DeadLetterConfig"]["Arn"]) == "${TriggerDeadLetterQueue.Arn}"
    (dead,) = resources["TriggerDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert dead["Principal"] == {"Service": "events.amazonaws.com"}
    assert _shape(dead["Resource"]) == "${TriggerDeadLetterQueue.Arn}"
    assert _shape(dead["Condition"]["ArnEquals"]["aws:SourceArn"]) == "${UploadRule.Arn}"


def test_pipeline_names_are_lowercase_as_in_pipeline_arns(template: dict[str, Any]) -> None:
    # SageMaker writes pipeline ARNs in lowercase; the policies name the ARN from the parameter
    pattern = re.compile(template["Parameters"]["PipelineName"]["AllowedPattern"])
    assert pattern.fullmatch("s3-sagemaker-trigger")
    assert not pattern.fullmatch("S3-SageMaker-Trigger")
    assert not pattern.fullmatch("under_score")


# -- data bucket ------------------------------------------------------------------------------------


def test_the_bucket_is_encrypted_versioned_private_and_tls_only(resources: dict[str, dict[str, Any]]) -> None:
    assert resources["DataBucket"]["Condition"] == "CreateBucket"
    bucket = resources["DataBucket"]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    # (SSE-KMS with the data key when DataKmsKeyArn is set, else SSE-S3)
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": {"Fn::If": ["UseDataKmsKey", "aws:kms", "AES256"]},
        "KMSMasterKeyID": {"Fn::If": ["UseDataKmsKey", {"Ref": "DataKmsKeyArn"}, {"Ref": "AWS::NoValue"}]},
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    # And the bucket policy is the created bucket's only: an existing bucket's policy is never changed
    assert resources["DataBucketPolicy"]["Condition"] == "CreateBucket"
    policy = resources["DataBucketPolicy"]["Properties"]
    assert _shape(policy["Bucket"]) == "${DataBucket}"
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and {_shape(r) for r in s["Resource"]} == {"${DataBucket.Arn}", "${DataBucket.Arn}/*"}
        and s["Action"] == "s3:*"
        for s in deny
    )


def test_uploads_reach_the_upload_queue_through_eventbridge_for_either_bucket(
    resources: dict[str, dict[str, Any]],
) -> None:
    # Given the created bucket's notifications: S3's events go to EventBridge, nothing else
    notifications = resources["DataBucket"]["Properties"]["NotificationConfiguration"]
    assert notifications == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    # And an existing bucket gets the same setting from the deploy function (nothing else of it changes)
    switch = resources["BucketEventBridge"]
    assert (switch["Type"], switch["Condition"]) == ("Custom::BucketEventBridge", "UseExistingBucket")
    assert _shape(switch["Properties"]["BucketName"]) == "${ExistingBucketName}"
    assert _shape(switch["Properties"]["ServiceToken"]) == "${DeployFunction.Arn}"
    # Then one rule, the routes' pattern (created objects under the routed prefixes of that bucket:
    # contract.routes.event_pattern, through the Routes resource), delivers them to the upload queue
    rule = resources["UploadRule"]["Properties"]
    assert _shape(rule["EventPattern"]) == "${Routes.EventPattern}"
    assert rule["State"] == "ENABLED"
    assert "EventBusName" not in rule  # the default bus, where S3 sends its events
    (target,) = rule["Targets"]
    assert _shape(target["Arn"]) == "${UploadQueue.Arn}"
    assert "InputTransformer" not in target  # the event as S3 sent it
    assert "Input" not in target
    assert _shape(resources["Routes"]["Properties"]["DataBucket"]) == BUCKET
    # And no function is notified by S3 directly
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            events = (resource["Properties"].get("Events") or {}).values()
            assert all(e["Type"] != "S3" for e in events), name


def test_the_prefixes_cannot_be_the_same_folder(template: dict[str, Any]) -> None:
    # (the routed prefixes against these: the Routes resource, tests/integration/test_deploy_routes.py)
    assertions = template["Rules"]["SeparateFolders"]["Assertions"]
    asserted = [a["Assert"] for a in assertions]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "CleanPrefix"}, "code/"]}]} in asserted
    for other in ({"Ref": "CleanPrefix"}, "code/"):
        assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "SnapshotPrefix"}, other]}]} in asserted, other


def _rule_failures(parameters: dict[str, str]) -> list[str]:
    """What the template's Rules refuse for these parameters, evaluated as CloudFormation does."""
    template = Template(TEMPLATE)
    return Resolver(template, "rules", template.parameter_values(parameters)).rule_failures()


@pytest.mark.parametrize(
    ("reserved", "maximum", "refused"),
    [
        ("0", "5", False),  # no reservation: nothing to check
        ("5", "5", False),
        ("2", "2", False),
        ("3", "5", True),  # below the mapping's concurrency: Lambda throttles batches
        ("1", "2", True),
        ("10", "5", True),  # above it: concurrency reserved that the trigger never uses
    ],
)
def test_a_reserved_concurrency_that_throttles_the_upload_queue_is_refused(
    reserved: str, maximum: str, refused: bool
) -> None:
    # Given the trigger's reserved concurrency and its event source mapping's maximum concurrency
    # (review finding 5: a reservation below the maximum was accepted)
    parameters = {"TriggerReservedConcurrency": reserved, "TriggerMaximumConcurrency": maximum}

    # When CloudFormation checks the template's rules
    failures = _rule_failures(parameters)

    # Then only a reservation equal to the maximum (or none) passes, and a refusal says why
    if refused:
        (failure,) = failures
        assert "TriggerReservedConcurrency, when set (not 0), must equal TriggerMaximumConcurrency" in failure
        assert "throttles" in failure
    else:
        assert failures == []


def test_the_defaults_pass_every_template_rule() -> None:
    assert _rule_failures({}) == []


def test_snapshots_expire_after_outliving_every_retry(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # Given the lifecycle rule of the snapshot prefix
    rules = resources["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r.get("Prefix") == {"Ref": "SnapshotPrefix"}]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == {"Ref": "SnapshotRetentionDays"}
    # Then a snapshot outlives the start's retries in the queue (24 h, and up to 3 days more when
    # attempts crash), SageMaker's longest step retry (14,400 min) and S3's rounding of an expiry up
    # to the next midnight UTC (up to a day)
    least = template["Parameters"]["SnapshotRetentionDays"]["MinValue"]
    queue_phase = backoff.RETRY_WINDOW_SECONDS + 3 * 86400
    assert least * 86400 >= queue_phase + 14400 * 60 + 86400
    assert template["Parameters"]["SnapshotRetentionDays"]["Default"] >= least


# -- trigger ----------------------------------------------------------------------------------------


def test_the_trigger_reads_the_upload_queue_with_partial_batch_responses(
    resources: dict[str, dict[str, Any]],
) -> None:
    props = resources["TriggerFunction"]["Properties"]
    assert "EventInvokeConfig" not in props
    (source,) = props["Events"].values()
    assert source["Type"] == "SQS"
    mapping = source["Properties"]
    assert _shape(mapping["Queue"]) == "${UploadQueue.Arn}"
    assert 1 <= mapping["BatchSize"] <= 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "TriggerMaximumConcurrency"}}
    # And the queue hides a message in work longer than the function can run (Lambda's advice: 6x)
    queue = resources["UploadQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * props["Timeout"]


def test_both_queues_are_encrypted(resources: dict[str, dict[str, Any]]) -> None:
    for name in ("UploadQueue", "TriggerDeadLetterQueue"):
        queue = resources[name]["Properties"]
        assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue, name


def test_an_upload_reaches_the_dead_letter_queue_only_after_24_hours_of_retries(
    resources: dict[str, dict[str, Any]],
) -> None:
    # Given the upload queue's redrive policy and the trigger's default backoff
    queue = resources["UploadQueue"]["Properties"]
    policy = queue["RedrivePolicy"]
    assert _shape(policy["deadLetterTargetArn"]) == "${TriggerDeadLetterQueue.Arn}"
    receives = policy["maxReceiveCount"]
    base, cap = backoff.DEFAULT_BASE_SECONDS, backoff.DEFAULT_CAP_SECONDS
    # Then the shortest jittered waits of that many receives add up to 24 h, and one fewer would not
    assert receives == backoff.max_receive_count(base, cap, backoff.RETRY_WINDOW_SECONDS)
    assert backoff.minimum_total_wait(receives, base, cap) >= 24 * 60 * 60
    assert backoff.minimum_total_wait(receives - 1, base, cap) < 24 * 60 * 60
    # And a message that fails without being postponed (a crash, a timeout) waits longer, not shorter
    assert queue["VisibilityTimeout"] >= backoff.minimum(receives, base, cap)
    # And nothing expires on the way: the upload queue keeps a message past its last retry, and the
    # dead-letter queue (which keeps the first enqueue time) longer still
    assert queue["MessageRetentionPeriod"] > backoff.RETRY_WINDOW_SECONDS + cap
    dead = resources["TriggerDeadLetterQueue"]["Properties"]
    assert dead["MessageRetentionPeriod"] >= queue["MessageRetentionPeriod"] + 7 * 86400


def test_no_upload_expires_before_the_dead_letter_queue_even_when_no_wait_is_shortened(
    resources: dict[str, dict[str, Any]],
) -> None:
    # Given the upload queue: every receive the trigger does not postpone itself (a crash before the
    # batch, an import error, a timeout, throttling, a failed ChangeMessageVisibility) hides the message
    # for the queue's whole VisibilityTimeout
    queue = resources["UploadQueue"]["Properties"]
    longest_way = queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"]
    dead = resources["TriggerDeadLetterQueue"]["Properties"]

    # Then the queue keeps a message at least that long (within SQS's 14-day limit) ...
    assert longest_way <= queue["MessageRetentionPeriod"] <= SQS_MAX_RETENTION
    # ... and the dead-letter queue, which counts from the same first enqueue time, longer still
    assert dead["MessageRetentionPeriod"] == SQS_MAX_RETENTION > queue["MessageRetentionPeriod"]


def test_the_trigger_has_reserved_concurrency_and_a_log_group_with_retention(
    resources: dict[str, dict[str, Any]],
) -> None:
    props = resources["TriggerFunction"]["Properties"]
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "ReserveTriggerConcurrency",
            {"Ref": "TriggerReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    for function, log_group in (("TriggerFunction", "TriggerLogGroup"), ("DeployFunction", "DeployLogGroup")):
        assert _shape(resources[function]["Properties"]["LoggingConfig"]["LogGroup"]) == f"${{{log_group}}}"
        assert resources[log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_trigger_environment_follows_the_contract(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    props = resources["TriggerFunction"]["Properties"]
    assert props["Handler"] == "trigger.handler.lambda_handler"
    assert props["CodeUri"] == "functions/trigger/"
    assert template["Globals"]["Function"]["Runtime"] == "python3.13"
    variables = {k: _shape(v) for k, v in props["Environment"]["Variables"].items()}
    assert variables == {
        "PIPELINE_NAME": "${PipelineName}",
        "CLEAN_PREFIX": "${CleanPrefix}",
        "SNAPSHOT_PREFIX": "${SnapshotPrefix}",
        "TRIGGER_MODE": "${TriggerMode}",
        "MARKER_NAME": "${MarkerName}",
        "ROUTE_PARAMETER_TYPES": "${RoutesCheck.ParameterTypes}",
        "DATA_KMS_KEY_ARN": "${DataKmsKeyArn}",
        "POWERTOOLS_SERVICE_NAME": "s3-sagemaker-trigger",
        "POWERTOOLS_METRICS_NAMESPACE": "S3SageMakerTrigger",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


# -- the pipeline custom resource -------------------------------------------------------------------


def test_the_pipeline_resource_updates_exactly_when_the_artifact_changes(
    resources: dict[str, dict[str, Any]],
) -> None:
    pipeline = resources["Pipeline"]
    assert pipeline["Type"] == "Custom::SageMakerPipeline"
    # The service token never changes (CloudFormation refuses that); the published version does,
    # whenever `sam build` produced a different artifact (definition, ETL script or function code).
    assert _shape(pipeline["Properties"]["ServiceToken"]) == "${DeployFunction.Arn}"
    assert _shape(pipeline["Properties"]["ArtifactVersion"]) == "${DeployFunction.Version}"
    deploy = resources["DeployFunction"]
    assert deploy["Properties"]["AutoPublishAlias"]
    assert deploy["Properties"]["Handler"] == "deploy.handler.lambda_handler"
    assert deploy["Metadata"]["BuildMethod"] == "makefile"


def test_the_deploy_function_accepts_the_templates_properties(resources: dict[str, dict[str, Any]]) -> None:
    # Given the Pipeline resource's properties resolved with the parameters' defaults
    stand_ins = {
        BUCKET: "stack-databucket-1a2b3c4d5e6f",
        "${SageMakerExecutionRole.Arn}": "arn:aws:iam::123456789012:role/stack-SageMakerExecutionRole-1A2B",
        "${AWS::StackName}": "stack",
    }
    template = cfn_yaml.load(str(TEMPLATE))
    defaults = {f"${{{k}}}": str(v["Default"]) for k, v in template["Parameters"].items()}

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(n) for n in node]
        if isinstance(node, dict) and not (
            len(node) == 1 and ("Ref" in node or next(iter(node)).startswith("Fn::"))
        ):
            return {k: resolve(v) for k, v in node.items()}
        shape = _shape(node)
        return defaults.get(shape, stand_ins.get(shape, shape))

    properties = resolve(resources["Pipeline"]["Properties"])

    # When the deploy function validates them, Then they pass as they are
    parsed = PipelineProperties.parse(properties)
    assert parsed.pipeline_name == "s3-sagemaker-trigger"
    assert (parsed.clean_prefix, parsed.snapshot_prefix) == ("clean/", "snapshot/")
    assert parsed.retain_on_delete is False
    assert dict(parsed.tags) == {"project": "s3-sagemaker-trigger", "stack": "stack"}


def test_the_image_registry_mapping_matches_the_sdk(template: dict[str, Any]) -> None:
    # The execution role may pull from the scikit-learn repository of the account the SDK names
    mapping = {
        region: entry["Account"] for region, entry in template["Mappings"]["SklearnImageRegistry"].items()
    }
    assert mapping == {region: uri.split(".", 1)[0] for region, uri in image_uris_by_region().items()}


# -- parameters, outputs, suppressions --------------------------------------------------------------


def test_every_parameter_has_a_default_it_accepts(template: dict[str, Any]) -> None:
    for name, spec in template["Parameters"].items():
        assert "Default" in spec, name
        default = spec["Default"]
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], str(default)), name
        if "AllowedValues" in spec:
            assert default in spec["AllowedValues"], name
        if "MinValue" in spec:
            assert spec["MinValue"] <= default <= spec["MaxValue"], name
    defaults = {name: spec["Default"] for name, spec in template["Parameters"].items()}
    # The stack creates its bucket and uses SSE-S3 unless told otherwise
    assert (defaults["ExistingBucketName"], defaults["DataKmsKeyArn"]) == ("", "")
    assert defaults["CleanPrefix"] == "clean/"
    assert defaults["SnapshotPrefix"] == "snapshot/"
    assert defaults["TriggerMode"] == "object"
    assert defaults["MarkerName"] == "_SUCCESS"
    assert defaults["RetainPipelineOnDelete"] == "false"
    # Lambda refuses a reservation leaving < 10 unreserved; new accounts often have 10 in all
    assert defaults["TriggerReservedConcurrency"] == 0
    assert re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", defaults["ProcessingInstanceType"])


def test_the_outputs_name_the_bucket_the_pipeline_and_the_dead_letter_queue(template: dict[str, Any]) -> None:
    outputs = {name: _shape(spec["Value"]) for name, spec in template["Outputs"].items()}
    assert outputs["DataBucketName"] == BUCKET
    assert outputs["UploadUrls"] == "${Routes.UploadUrls}"
    assert outputs["RoutedPipelines"] == "${Routes.PipelineNames}"
    assert outputs["PipelineName"] == "${Pipeline.PipelineName}"
    assert outputs["PipelineArn"] == "${Pipeline.PipelineArn}"
    assert outputs["TriggerDeadLetterQueueUrl"] == "${TriggerDeadLetterQueue}"
    assert outputs["UploadQueueUrl"] == "${UploadQueue}"
    assert outputs["TriggerLogGroupName"] == "${TriggerLogGroup}"  # s3sm status reads its skips there


def test_the_contract_logical_ids_exist(resources: dict[str, dict[str, Any]]) -> None:
    assert {
        name: resources[name]["Type"]
        for name in resources
        if name
        in {
            "DataBucket",
            "TriggerFunction",
            "DeployFunction",
            "Pipeline",
            "TriggerDeadLetterQueue",
            "UploadQueue",
            "SageMakerExecutionRole",
            "Routes",
            "RoutesCheck",
            "UploadRule",
        }
    } == {
        "DataBucket": "AWS::S3::Bucket",
        "TriggerFunction": "AWS::Serverless::Function",
        "DeployFunction": "AWS::Serverless::Function",
        "Pipeline": "Custom::SageMakerPipeline",
        "TriggerDeadLetterQueue": "AWS::SQS::Queue",
        "UploadQueue": "AWS::SQS::Queue",
        "SageMakerExecutionRole": "AWS::IAM::Role",
        "Routes": "Custom::Routes",
        "RoutesCheck": "Custom::RoutesCheck",
        "UploadRule": "AWS::Events::Rule",
    }


def test_every_checkov_suppression_gives_its_reason(resources: dict[str, dict[str, Any]]) -> None:
    skips = [
        (name, skip)
        for name, resource in resources.items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), name
        assert len(skip.get("comment", "").split()) >= 8, f"{name} {skip['id']}: say why"
