"""Local "deploy": the template's resources created in the emulator, the pipeline upserted by the real
deploy function on a CloudFormation-shaped event.

What is created, and how it differs from ``sam deploy``:

- every ``AWS::S3::Bucket`` (versioning as configured) and ``AWS::SQS::Queue`` of the template, with
  the names CloudFormation would use (the template's names, else ``<stack>-<LogicalId>-<suffix>``);
- every ``AWS::IAM::Role`` (so the role ARNs are real in the emulator); functions get names and ARNs
  but no Lambda resource: moto cannot run one without Docker;
- for each S3 event source of a function, a notification *queue* (moto delivers S3 notifications to
  SQS with prefix filters, but cannot invoke Lambda); :mod:`local.delivery` takes it from there;
- each custom resource (``Custom::*``) by running its ``ServiceToken`` function's real handler on a
  Create event whose ``ResponseURL`` is answered by :class:`local.cfn_response.ResponseServer`; a
  response other than SUCCESS stops the deploy with CloudFormation's Reason.

Bucket policies, log groups, permissions and the like change nothing locally and are skipped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from local import artifacts
from local.cfn_response import ResponseServer
from local.functions import FunctionProcess, LogSink
from local.template import (
    FunctionSpec,
    Resolver,
    Resource,
    Template,
    TemplateError,
    generated_name,
    points_at,
)

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
RESPONSE_GRACE = 5.0  # seconds to wait for the response PUT after the handler returned


class StackError(Exception):
    """The local deploy failed: a resource could not be created, or a custom resource said FAILED."""


@dataclass
class DeployedStack:
    """A stack deployed into the emulator, with what the runtime needs to run it."""

    name: str
    parameters: dict[str, str]
    resolver: Resolver
    functions: dict[str, FunctionSpec]  # logical id -> spec (env resolved after custom resources)
    notification_queues: dict[str, str]  # function logical id -> queue URL receiving its S3 events
    custom_resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> response
    outputs: dict[str, str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> str:
        return self.resolver.created[logical_id].ref

    def attribute(self, logical_id: str, name: str) -> str:
        return self.resolver.created[logical_id].attributes[name]


def _stringify(value: Any) -> Any:
    """CloudFormation passes every scalar of ResourceProperties as a string."""
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else str(value)


class StackDeployer:
    """Deploys a template's stacks into the emulator the standard ``AWS_*`` settings point at."""

    def __init__(
        self,
        template: Template,
        *,
        aws_env: Mapping[str, str],
        responses: ResponseServer,
        on_log: LogSink | None = None,
        prefer_build: bool = False,
    ) -> None:
        self.template = template
        self.aws_env = dict(aws_env)
        self.responses = responses
        self.on_log = on_log
        self.prefer_build = prefer_build
        self.region = self.aws_env.get("AWS_REGION") or self.aws_env.get("AWS_DEFAULT_REGION", "us-east-1")
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        self.iam = boto3.client("iam")

    def deploy(
        self, stack_name: str, parameters: Mapping[str, str] | None = None, *, custom_resources: bool = True
    ) -> DeployedStack:
        """Create the stack's resources; ``custom_resources=False`` leaves out the ``Custom::`` ones."""
        template = self.template
        try:
            values = template.parameter_values(parameters)
        except TemplateError as exc:
            raise StackError(f"stack {stack_name}: {exc}") from exc
        resolver = Resolver(template, stack_name, values, region=self.region)
        by_type: dict[str, list[str]] = {}
        for logical_id, resource in template.resources.items():
            if "Condition" in resource and not resolver.condition(str(resource["Condition"]), logical_id):
                continue
            by_type.setdefault(str(resource.get("Type", "")), []).append(logical_id)

        for logical_id in by_type.get("AWS::S3::Bucket", []):
            self._bucket(resolver, logical_id)
        for logical_id in by_type.get("AWS::SQS::Queue", []):
            self._queue(resolver, logical_id)
        for logical_id in by_type.get("AWS::IAM::Role", []):
            self._role(resolver, logical_id)
        function_ids = [i for t in FUNCTION_TYPES for i in by_type.get(t, [])]
        for logical_id in function_ids:
            self._function_name(resolver, logical_id)
        for kind, ids in by_type.items():  # whatever else: a name, so that !Ref resolves
            if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
                continue
            for logical_id in ids:
                resolver.created.setdefault(logical_id, Resource(ref=generated_name(stack_name, logical_id)))

        stack = DeployedStack(stack_name, values, resolver, {}, {})
        for kind, ids in by_type.items():
            if not custom_resources:
                break
            if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
                for logical_id in ids:
                    stack.custom_resources[logical_id] = self._custom_resource(
                        resolver, logical_id, function_ids
                    )

        for logical_id in function_ids:
            try:
                stack.functions[logical_id] = resolver.function(logical_id)
            except TemplateError as exc:
                raise StackError(f"stack {stack_name}: {exc}") from exc
        by_bucket: dict[str, list[dict[str, Any]]] = {}  # one notification configuration per bucket
        for logical_id, spec in stack.functions.items():
            if spec.s3_events:
                stack.notification_queues[logical_id] = self._notifications(resolver, spec, by_bucket)
        for bucket, configs in by_bucket.items():
            self.s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configs}
            )
        stack.outputs = self._outputs(resolver)
        return stack

    # -- resources --------------------------------------------------------------------------------

    def _bucket(self, resolver: Resolver, logical_id: str) -> None:
        props = self.template.properties(logical_id)
        where = f"Resources.{logical_id}.Properties"
        name = (
            resolver.resolve_str(props["BucketName"], f"{where}.BucketName")
            if "BucketName" in props
            else generated_name(resolver.stack_name, logical_id, lower=True, limit=63)
        )
        self.s3.create_bucket(Bucket=name)
        status = (props.get("VersioningConfiguration") or {}).get("Status")
        if status:
            self.s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": resolver.resolve_str(status, where)}
            )
        resolver.created[logical_id] = Resource(
            ref=name,
            attributes={
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
            },
        )

    def _queue(self, resolver: Resolver, logical_id: str) -> None:
        props = self.template.properties(logical_id)
        where = f"Resources.{logical_id}.Properties"
        name = (
            resolver.resolve_str(props["QueueName"], f"{where}.QueueName")
            if "QueueName" in props
            else generated_name(resolver.stack_name, logical_id, limit=80)
        )
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{self.region}:{resolver.account_id}:{name}"
        resolver.created[logical_id] = Resource(
            ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url}
        )

    def _role(self, resolver: Resolver, logical_id: str) -> None:
        props = self.template.properties(logical_id)
        where = f"Resources.{logical_id}.Properties"
        name = (
            resolver.resolve_str(props["RoleName"], f"{where}.RoleName")
            if "RoleName" in props
            else generated_name(resolver.stack_name, logical_id)
        )
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        resolver.created[logical_id] = Resource(
            ref=name, attributes={"Arn": role["Arn"], "RoleId": role["RoleId"]}
        )

    def _function_name(self, resolver: Resolver, logical_id: str) -> None:
        props = self.template.function_properties(logical_id)
        where = f"Resources.{logical_id}.Properties.FunctionName"
        name = (
            resolver.resolve_str(props["FunctionName"], where)
            if "FunctionName" in props
            else generated_name(resolver.stack_name, logical_id)
        )
        arn = f"arn:aws:lambda:{self.region}:{resolver.account_id}:function:{name}"
        resolver.created[logical_id] = Resource(
            ref=name, attributes={"Arn": arn, "Version": f"{arn}:1", "Alias": f"{arn}:live"}
        )

    def _custom_resource(
        self, resolver: Resolver, logical_id: str, function_ids: list[str]
    ) -> dict[str, Any]:
        """Create a custom resource by running its provider function on a CloudFormation Create event."""
        resource = self.template.resource(logical_id)
        props = dict(resource.get("Properties") or {})
        token = props.get("ServiceToken")
        provider = next((f for f in function_ids if points_at(token, f)), None)
        if provider is None:
            raise StackError(f"{logical_id}: its ServiceToken is not a function of this template")
        try:
            properties = _stringify(resolver.resolve(props, f"Resources.{logical_id}.Properties"))
            spec = resolver.function(provider)
        except TemplateError as exc:
            raise StackError(f"stack {resolver.stack_name}: {exc}") from exc
        event = {
            "RequestType": "Create",
            "ServiceToken": properties["ServiceToken"],
            "ResponseURL": self.responses.url(),
            "StackId": resolver.stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "ResourceType": str(resource.get("Type")),
            "ResourceProperties": properties,
        }
        response = self.run_custom_resource(spec, event)
        data = {str(k): str(v) for k, v in (response.get("Data") or {}).items()}
        resolver.created[logical_id] = Resource(
            ref=str(response.get("PhysicalResourceId", "")), attributes=data
        )
        return response

    def run_custom_resource(self, spec: FunctionSpec, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the provider with ``event`` and return the SUCCESS response it sent to ResponseURL."""
        code_dir = artifacts.code_dir(spec, prefer_build=self.prefer_build)
        with FunctionProcess(spec, aws_env=self.aws_env, code_dir=code_dir, on_log=self.on_log) as function:
            invocation = function.invoke(event)
        what = f"{event['LogicalResourceId']} ({event['ResourceType']}, {event['RequestType']})"
        response = self.responses.wait(event["ResponseURL"], timeout=RESPONSE_GRACE)
        if response is None:
            cause = (
                f"{invocation.error_type}: {invocation.error_message}" if invocation.error else "no response"
            )
            raise StackError(f"{what}: {spec.logical_id} sent no response to CloudFormation ({cause})")
        if response.get("Status") != "SUCCESS":
            raise StackError(f"{what} failed: {response.get('Reason') or 'no Reason given'}")
        return response

    def _notifications(
        self, resolver: Resolver, spec: FunctionSpec, by_bucket: dict[str, list[dict[str, Any]]]
    ) -> str:
        """A queue for the S3 events meant for ``spec``; its configurations are added to ``by_bucket``."""
        name = f"{resolver.stack_name}-{spec.logical_id}-s3-events"[:80]
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{self.region}:{resolver.account_id}:{name}"
        for index, source in enumerate(spec.s3_events):
            config: dict[str, Any] = {
                "Id": f"{spec.logical_id}-{index}",
                "QueueArn": arn,
                "Events": list(source.events),
            }
            if source.filter_rules:
                rules = [{"Name": n, "Value": v} for n, v in source.filter_rules]
                config["Filter"] = {"Key": {"FilterRules": rules}}
            by_bucket.setdefault(resolver.created[source.bucket_logical_id].ref, []).append(config)
        return str(url)

    def _outputs(self, resolver: Resolver) -> dict[str, str]:
        outputs: dict[str, str] = {}
        for name, output in (self.template.doc.get("Outputs") or {}).items():
            try:
                outputs[str(name)] = resolver.resolve_str(output.get("Value"), f"Outputs.{name}")
            except TemplateError:
                continue  # an output naming something not emulated (a log group ARN, say): not needed
        return outputs


__all__ = ["DeployedStack", "StackDeployer", "StackError"]
