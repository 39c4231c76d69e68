"""Local "deploy": the template's resources created in the emulator, the pipeline upserted by the real
deploy function on a CloudFormation-shaped event.

What is created, and how it differs from ``sam deploy``:

- every ``AWS::S3::Bucket`` (versioning as configured) and ``AWS::SQS::Queue`` of the template, with
  the names CloudFormation would use (the template's names, else ``<stack>-<LogicalId>-<suffix>``);
  a queue gets its ``VisibilityTimeout``, ``MessageRetentionPeriod``, ``DelaySeconds``,
  ``ReceiveMessageWaitTimeSeconds`` and ``RedrivePolicy`` (moto moves a message to the dead-letter
  queue after ``maxReceiveCount`` receives, as SQS does);
- each bucket's ``NotificationConfiguration``: ``EventBridgeConfiguration`` (S3 sends its events to the
  default EventBridge bus) or ``QueueConfigurations`` (moto delivers to SQS with the key filters,
  natively); a ``LambdaConfigurations`` entry is refused (moto cannot invoke Lambda without Docker);
- each ``AWS::Events::Rule`` whose targets are queues of the template, once the custom resources are
  made (its pattern may be one's attribute): moto matches the pattern and delivers to SQS, so S3 ->
  EventBridge -> queue works as on AWS (rules that target a topic: :mod:`local.notifications`);
- every ``AWS::IAM::Role`` (so the role ARNs are real in the emulator); functions get names and ARNs
  but no Lambda resource: moto cannot run one without Docker. Their SQS event source mappings are
  listed in :attr:`DeployedStack.event_sources`, for :mod:`local.delivery` to poll;
- each custom resource (``Custom::*``), after those it refers to, by running its ``ServiceToken``
  function's real handler on a Create event whose ``ResponseURL`` is answered by
  :class:`local.cfn_response.ResponseServer`; a response other than SUCCESS stops the deploy with
  CloudFormation's Reason. Its Data become its GetAtt attributes, as CloudFormation makes them.

A resource whose ``Condition`` is false is not created. Bucket policies, IAM policies, log groups,
permissions and the like change nothing locally and are skipped.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from local import artifacts
from local.cfn_response import ResponseServer
from local.functions import FunctionProcess, LogSink
from local.template import (
    SUB_VARIABLE,
    FunctionSpec,
    Resolver,
    Resource,
    SqsEventSource,
    Template,
    TemplateError,
    generated_name,
    points_at,
)

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
RESPONSE_GRACE = 5.0  # seconds to wait for the response PUT after the handler returned
# Queue properties passed to CreateQueue as they are (RedrivePolicy is set once every queue exists).
QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize",
)


class StackError(Exception):
    """The local deploy failed: a resource could not be created, or a custom resource said FAILED."""


@dataclass(frozen=True)
class EventSource:
    """An SQS event source mapping: the function it invokes, its settings and its queue."""

    function_id: str
    source: SqsEventSource
    queue_url: str
    queue_arn: str


@dataclass
class DeployedStack:
    """A stack deployed into the emulator, with what the runtime needs to run it."""

    name: str
    parameters: dict[str, str]
    resolver: Resolver
    functions: dict[str, FunctionSpec]  # logical id -> spec (env resolved after custom resources)
    event_sources: list[EventSource]  # the functions' SQS event source mappings
    custom_resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> response
    outputs: dict[str, str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> str:
        return self.resolver.created[logical_id].ref

    def attribute(self, logical_id: str, name: str) -> str:
        return self.resolver.created[logical_id].attributes[name]

    def pipeline_names(self) -> list[str]:
        """The pipelines the stack's routes start (names or ARNs as routed), else those its resources made."""
        routed = (self.custom_resources.get("Routes") or {}).get("Data") or {}
        if routed.get("PipelineNames"):
            return str(routed["PipelineNames"]).split(",")
        found = ((r.get("Data") or {}).get("PipelineName") for r in self.custom_resources.values())
        return [str(name) for name in found if name]


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
        function_env: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        # Set for every function the deploy runs (the local routes file: local.artifacts.routes_environment).
        self.function_env = dict(function_env or {})
        self.aws_env = dict(aws_env)
        self.responses = responses
        self.on_log = on_log
        self.prefer_build = prefer_build
        self.region = self.aws_env.get("AWS_REGION") or self.aws_env.get("AWS_DEFAULT_REGION", "us-east-1")
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        self.iam = boto3.client("iam")
        self.events = boto3.client("events")

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
        refused = resolver.rule_failures()
        if refused:  # as CloudFormation does, before it creates anything
            raise StackError(
                f"stack {stack_name}: the template's rules refuse these parameters: {' '.join(refused)}"
            )
        by_type: dict[str, list[str]] = {}
        for logical_id, resource in template.resources.items():
            if "Condition" in resource and not resolver.condition(str(resource["Condition"]), logical_id):
                continue
            by_type.setdefault(str(resource.get("Type", "")), []).append(logical_id)

        for logical_id in by_type.get("AWS::S3::Bucket", []):
            self._bucket(resolver, logical_id)
        for logical_id in by_type.get("AWS::SQS::Queue", []):
            self._queue(resolver, logical_id)
        for logical_id in by_type.get("AWS::SQS::Queue", []):
            self._redrive_policy(resolver, logical_id)
        for logical_id in by_type.get("AWS::S3::Bucket", []):
            self._bucket_notifications(resolver, logical_id)
        for logical_id in by_type.get("AWS::IAM::Role", []):
            self._role(resolver, logical_id)
        function_ids = [i for t in FUNCTION_TYPES for i in by_type.get(t, [])]
        for logical_id in function_ids:
            self._function_name(resolver, logical_id)
        for kind, ids in by_type.items():  # whatever else: a name, so that !Ref resolves
            if _is_custom(kind):
                continue
            for logical_id in ids:
                resolver.created.setdefault(logical_id, Resource(ref=generated_name(stack_name, logical_id)))

        stack = DeployedStack(stack_name, values, resolver, {}, [])
        if custom_resources:
            customs = [i for kind, ids in by_type.items() if _is_custom(kind) for i in ids]
            for logical_id in _in_dependency_order(template, customs):
                stack.custom_resources[logical_id] = self._custom_resource(resolver, logical_id, function_ids)
            for logical_id in by_type.get("AWS::Events::Rule", []):
                self._rule(resolver, logical_id)
        else:  # left out: each answers every attribute with "" (a function's environment may name one)
            for logical_id in (i for kind, ids in by_type.items() if _is_custom(kind) for i in ids):
                resolver.created[logical_id] = Resource(ref="", attributes=defaultdict(str))

        for logical_id in function_ids:
            try:
                stack.functions[logical_id] = resolver.function(logical_id)
            except TemplateError as exc:
                raise StackError(f"stack {stack_name}: {exc}") from exc
        for logical_id, spec in stack.functions.items():
            for source in spec.sqs_events:
                queue = resolver.created[source.queue_logical_id]
                stack.event_sources.append(
                    EventSource(logical_id, source, queue.attributes["QueueUrl"], queue.attributes["Arn"])
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
        attributes = {
            key: resolver.resolve_str(props[key], f"{where}.{key}")
            for key in QUEUE_ATTRIBUTES
            if key in props
        }
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{self.region}:{resolver.account_id}:{name}"
        resolver.created[logical_id] = Resource(
            ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url}
        )

    def _redrive_policy(self, resolver: Resolver, logical_id: str) -> None:
        props = self.template.properties(logical_id)
        if "RedrivePolicy" not in props:
            return
        policy = resolver.resolve(props["RedrivePolicy"], f"Resources.{logical_id}.Properties.RedrivePolicy")
        if not isinstance(policy, dict):
            raise StackError(f"Resources.{logical_id}.Properties.RedrivePolicy: expected an object")
        self.sqs.set_queue_attributes(
            QueueUrl=resolver.created[logical_id].ref,
            Attributes={"RedrivePolicy": json.dumps({k: str(v) for k, v in policy.items()})},
        )

    def _bucket_notifications(self, resolver: Resolver, logical_id: str) -> None:
        """The bucket's queue notifications, as S3 applies them (moto delivers them to SQS itself)."""
        where = f"Resources.{logical_id}.Properties.NotificationConfiguration"
        config = resolver.resolve(
            self.template.properties(logical_id).get("NotificationConfiguration") or {}, where
        )
        if config.get("LambdaConfigurations"):
            raise StackError(f"{where}.LambdaConfigurations: not emulated (notify an SQS queue instead)")
        queues = []
        for index, item in enumerate(config.get("QueueConfigurations") or []):
            entry: dict[str, Any] = {
                "Id": f"{logical_id}-{index}",
                "QueueArn": item["Queue"],
                "Events": [item["Event"]],
            }
            rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
            if rules:
                entry["Filter"] = {
                    "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
                }
            queues.append(entry)
        notification: dict[str, Any] = {}
        if queues:
            notification["QueueConfigurations"] = queues
        if config.get("EventBridgeConfiguration"):
            notification["EventBridgeConfiguration"] = {}
        if notification:
            self.s3.put_bucket_notification_configuration(
                Bucket=resolver.created[logical_id].ref, NotificationConfiguration=notification
            )

    def _rule(self, resolver: Resolver, logical_id: str) -> None:
        """The rule on the default bus with its targets that are queues of this stack (others: skipped)."""
        props = self.template.properties(logical_id)
        where = f"Resources.{logical_id}.Properties"
        queues = [
            t
            for t in props.get("Targets") or []
            if any(points_at(t.get("Arn"), q) for q in self.template.resources if self._is_queue(resolver, q))
        ]
        if not queues:
            return  # a rule for a topic: local.notifications installs it
        try:
            pattern = resolver.resolve(props["EventPattern"], f"{where}.EventPattern")
            targets = [
                {
                    "Id": resolver.resolve_str(t["Id"], f"{where}.Targets"),
                    "Arn": resolver.resolve_str(t["Arn"], where),
                }
                for t in queues
            ]
        except (KeyError, TemplateError) as exc:
            raise StackError(f"{where}: the local runtime cannot create this rule: {exc}") from exc
        name = generated_name(resolver.stack_name, logical_id)
        text = pattern if isinstance(pattern, str) else json.dumps(pattern)  # a JSON string or object
        arn = self.events.put_rule(Name=name, EventPattern=text, State="ENABLED")["RuleArn"]
        self.events.put_targets(Rule=name, Targets=targets)
        resolver.created[logical_id] = Resource(ref=name, attributes={"Arn": arn})

    def _is_queue(self, resolver: Resolver, logical_id: str) -> bool:
        return self.template.resource_type(logical_id) == "AWS::SQS::Queue" and logical_id in resolver.created

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
        with FunctionProcess(
            spec, aws_env=self.aws_env, code_dir=code_dir, env_overrides=self.function_env, on_log=self.on_log
        ) as function:
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

    def _outputs(self, resolver: Resolver) -> dict[str, str]:
        outputs: dict[str, str] = {}
        for name, output in (self.template.doc.get("Outputs") or {}).items():
            try:
                outputs[str(name)] = resolver.resolve_str(output.get("Value"), f"Outputs.{name}")
            except TemplateError:
                continue  # an output naming something not emulated (a log group ARN, say): not needed
        return outputs


def _is_custom(kind: str) -> bool:
    return kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"


def _references(node: Any) -> set[str]:
    """The logical IDs a template value names (Ref, GetAtt, ${X} and ${X.Attr} in Sub)."""
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return {str(node["Ref"]).split(".")[0]}
        if set(node) == {"Fn::GetAtt"}:
            arg = node["Fn::GetAtt"]
            return {str(arg.split(".")[0] if isinstance(arg, str) else arg[0])}
        if set(node) == {"Fn::Sub"}:
            text = node["Fn::Sub"][0] if isinstance(node["Fn::Sub"], list) else node["Fn::Sub"]
            found = {m.split(".")[0] for m in SUB_VARIABLE.findall(str(text))}
            return found | _references(node["Fn::Sub"][1:] if isinstance(node["Fn::Sub"], list) else [])
        return set().union(*(_references(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_references(v) for v in node)) if node else set()
    return set()


def _in_dependency_order(template: Template, logical_ids: list[str]) -> list[str]:
    """The custom resources, each after those it names (DependsOn, Ref, GetAtt), as CloudFormation does."""
    resources = {i: template.resource(i) for i in logical_ids}
    needs = {}
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn") or []
        named = _references(resource.get("Properties") or {}) | set(
            [depends] if isinstance(depends, str) else depends
        )
        needs[logical_id] = {n for n in named if n in resources and n != logical_id}
    ordered: list[str] = []
    while needs:
        ready = [i for i, n in needs.items() if n <= set(ordered)]
        if not ready:
            raise StackError(f"custom resources that need each other: {', '.join(sorted(needs))}")
        ordered.append(ready[0])
        del needs[ready[0]]
    return ordered


__all__ = ["DeployedStack", "EventSource", "StackDeployer", "StackError"]
