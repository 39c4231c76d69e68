"""Local "deploy": ``template.yaml``'s resources created in the emulator, as ``sam deploy`` would.

The template is parsed with cfn-lint's decoder; :class:`Resolver` evaluates the intrinsic functions the
template uses and names any other where it met it. What each resource type becomes, and why, is in
docs/local-runtime.md ("Local deploy").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import WaiterError
from cfnlint.decode import cfn_yaml

from local.emulator import ACCOUNT_ID, DEFAULT_REGION
from local.lambdas import FunctionProcess, FunctionSpec, LogSink

FUNCTION = "AWS::Serverless::Function"
RESPONSE_GRACE = 5.0  # seconds to wait for the response after the handler returned
QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "RedrivePolicy")
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")  # ${Name} or ${Resource.Attribute} in a !Sub
_NO_VALUE = object()  # AWS::NoValue: the key it sits under disappears
CodeFor = Callable[[FunctionSpec], tuple[Path, dict[str, str]]]  # a function's code folder and extra env


class TemplateError(Exception):
    """The template lacks something the local runtime needs, or uses what it cannot evaluate."""


class _NotYet(TemplateError):
    """A value names a resource not made yet (the deploy makes it first)."""


class StackError(Exception):
    """The local deploy failed: a resource could not be created, or a custom resource said FAILED."""


class Template:
    """A parsed ``template.yaml``."""

    def __init__(self, path: Path) -> None:
        self.path, self.root = path.resolve(), path.resolve().parent
        try:
            self.doc: dict[str, Any] = cfn_yaml.load(str(self.path))
        except (OSError, cfn_yaml.CfnParseError) as exc:
            raise TemplateError(f"cannot read {path}: {exc}") from exc
        if not isinstance(self.doc, dict) or "Resources" not in self.doc:
            raise TemplateError(f"{path} has no Resources section")
        self.resources: dict[str, dict[str, Any]] = dict(self.doc["Resources"])
        self.parameters: dict[str, dict[str, Any]] = dict(self.doc.get("Parameters") or {})
        self.globals: dict[str, Any] = dict((self.doc.get("Globals") or {}).get("Function") or {})

    def resource_type(self, logical_id: str) -> str:
        return str(self.resources.get(logical_id, {}).get("Type", ""))

    def properties(self, logical_id: str) -> dict[str, Any]:
        """The resource's properties; a SAM function's with ``Globals.Function`` merged under them."""
        props = dict(self.resources[logical_id].get("Properties") or {})
        if self.resource_type(logical_id) != FUNCTION:
            return props
        variables = [(d.get("Environment") or {}).get("Variables") or {} for d in (self.globals, props)]
        merged = {**self.globals, **props}
        if any(variables):
            merged["Environment"] = {"Variables": {**variables[0], **variables[1]}}
        return merged

    def functions(self) -> list[str]:
        return [i for i in self.resources if self.resource_type(i) == FUNCTION]

    def parameter_values(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """Each parameter's value: the override, else its default; checked against AllowedValues."""
        overrides = dict(overrides or {})
        if unknown := sorted(set(overrides) - set(self.parameters)):
            raise TemplateError(f"unknown template parameter(s): {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name, spec in self.parameters.items():
            if name not in overrides and "Default" not in spec:
                raise TemplateError(f"template parameter {name} has no default: pass a value for it")
            values[name] = value = str(overrides.get(name, spec.get("Default")))
            allowed = [str(a) for a in spec.get("AllowedValues") or []]
            if allowed and value not in allowed:
                raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        return values


def generated_name(stack_name: str, logical_id: str, *, lower: bool = False, limit: int = 64) -> str:
    """A CloudFormation-style physical name, ``<stack>-<LogicalId>-<suffix>``, stable for a stack."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    name = f"{f'{stack_name}-{logical_id}'[: limit - len(suffix) - 1]}-{suffix}"
    return name.lower() if lower else name


def points_at(target: Any, logical_id: str) -> bool:
    """Whether a template value is ``!GetAtt <logical_id>.X`` or ``!Ref <logical_id>[.X]``."""
    if not isinstance(target, dict) or len(target) != 1:
        return False
    ((key, arg),) = target.items()
    name = arg if isinstance(arg, str) else arg[0] if key == "Fn::GetAtt" else ""
    return key in ("Ref", "Fn::GetAtt") and str(name).split(".")[0] == logical_id


@dataclass
class Resource:
    """A created resource: what ``Ref`` returns and what ``GetAtt`` can read."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


class Resolver:
    """Evaluates intrinsic functions for one local stack."""

    def __init__(
        self,
        template: Template,
        stack_name: str,
        parameters: Mapping[str, str],
        *,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.template, self.parameters = template, dict(parameters)
        self.region = region
        digest = hashlib.sha256(stack_name.encode()).hexdigest()[:8]
        self.stack_id = f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/{digest}-local"
        self.pseudo = {"AWS::StackName": stack_name, "AWS::StackId": self.stack_id, "AWS::Region": region}
        self.pseudo |= {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.created: dict[str, Resource] = {}

    def _resource(self, logical_id: str, what: str, where: str) -> Resource:
        if logical_id in self.created:
            return self.created[logical_id]
        error = _NotYet if logical_id in self.template.resources else TemplateError
        raise error(f"{where}: {what}: {logical_id} is not created locally")

    def ref(self, name: str, where: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo or name in self.parameters:
            return self.pseudo.get(name) or self.parameters[name]
        base, _, sam_attribute = name.partition(".")  # SAM's `!Ref Function.Version` / `.Alias`
        resource = self._resource(base, f"!Ref {name}", where)
        return resource.attributes.get(sam_attribute, "") if sam_attribute else resource.ref

    def get_att(self, logical_id: str, attribute: str, where: str) -> str:
        resource = self._resource(logical_id, f"!GetAtt {logical_id}.{attribute}", where)
        try:
            return resource.attributes[attribute]  # a left-out custom resource's: "" (a defaultdict)
        except KeyError:
            known = ", ".join(sorted(resource.attributes)) or "none"
            raise TemplateError(
                f"{where}: !GetAtt {logical_id}.{attribute}: unknown (known: {known})"
            ) from None

    def resolve(self, node: Any, where: str = "template") -> Any:
        """The value of ``node`` with every intrinsic function evaluated."""
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, arg),) = node.items()
                if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                    return self._intrinsic(key, arg, where)
            out = {str(k): self.resolve(v, f"{where}.{k}") for k, v in node.items()}
            return {k: v for k, v in out.items() if v is not _NO_VALUE}
        if isinstance(node, list):
            values = (self.resolve(v, f"{where}[{i}]") for i, v in enumerate(node))
            return [v for v in values if v is not _NO_VALUE]
        return str(node) if isinstance(node, str) else node  # cfn-lint's str_node -> plain str

    def resolve_str(self, node: Any, where: str) -> str:
        value = self.resolve(node, where)
        if isinstance(value, bool | int | float | str):
            return str(value).lower() if isinstance(value, bool) else str(value)
        raise TemplateError(f"{where}: expected a string, got {type(value).__name__}")

    def condition(self, name: str, where: str) -> bool:
        conditions = self.template.doc.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"{where}: unknown condition {name}")
        return bool(self.resolve(conditions[name], f"Conditions.{name}"))

    def rule_failures(self) -> list[str]:
        """The AssertDescription of each template rule assertion these parameters fail, as CloudFormation
        checks them before it creates or updates a stack (a rule whose RuleCondition is false is skipped)."""
        failures: list[str] = []
        for name, rule in (self.template.doc.get("Rules") or {}).items():
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"], f"Rules.{name}"):
                continue
            for assertion in rule.get("Assertions") or []:
                if not self.resolve(assertion["Assert"], f"Rules.{name}"):
                    failures.append(str(assertion.get("AssertDescription") or f"Rules.{name} failed"))
        return failures

    def _intrinsic(self, key: str, arg: Any, where: str) -> Any:
        here = f"{where}.{key}"
        match key:
            case "Ref":
                return self.ref(str(arg), where)
            case "Fn::GetAtt":
                logical_id, attribute = str(arg).split(".", 1) if isinstance(arg, str) else map(str, arg)
                return self.get_att(logical_id, attribute, where)
            case "Fn::Sub":
                return self._sub(arg, here)
            case "Fn::Split":
                return self.resolve_str(arg[1], here).split(str(arg[0]))
            case "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(str(name), here) else if_false, here)
            case "Fn::Equals":
                return str(self.resolve(arg[0], here)) == str(self.resolve(arg[1], here))
            case "Fn::Not":
                return not self.resolve(arg[0], here)
            case "Condition":
                return self.condition(str(arg), here)
        raise TemplateError(f"{where}: {key} is not evaluated by the local runtime")

    def _sub(self, arg: Any, where: str) -> str:
        text, variables = (str(arg[0]), dict(arg[1])) if isinstance(arg, list) else (str(arg), {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return self.resolve_str(variables[name], where)
            if "." in name and name.split(".", 1)[0] in self.template.resources:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute, where)
            value = self.ref(name, where)
            return "" if value is _NO_VALUE else str(value)

        return SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def function(self, logical_id: str) -> FunctionSpec:
        """A function's settings as Lambda would run them (Globals merged, intrinsics evaluated)."""
        props = self.template.properties(logical_id)
        where = f"Resources.{logical_id}.Properties"
        if not props.get("Handler") or not isinstance(props.get("CodeUri", "."), str):
            raise TemplateError(f"{where}: a Handler and a local CodeUri folder are needed locally")
        variables = self.resolve(
            (props.get("Environment") or {}).get("Variables") or {}, f"{where}.Environment"
        )
        name = self.ref(logical_id, where)
        return FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}",
            handler=str(props["Handler"]),
            code_uri=(self.template.root / props.get("CodeUri", ".")).resolve(),
            runtime=str(props.get("Runtime", "")),
            timeout=int(self.resolve(props.get("Timeout", 3), f"{where}.Timeout")),  # Lambda's defaults
            memory_size=int(self.resolve(props.get("MemorySize", 128), f"{where}.MemorySize")),
            environment={str(k): self.resolve_str(v, where) for k, v in variables.items()},
            log_group=self.resolve_str((props.get("LoggingConfig") or {}).get("LogGroup", ""), where),
        )

    def event_source(self, logical_id: str, event_id: str, event: dict[str, Any]) -> EventSource:
        """A SAM ``Type: SQS`` event's mapping; any other type is refused (moto cannot invoke Lambda)."""
        where = f"Resources.{logical_id}.Properties.Events.{event_id}"
        if event.get("Type") != "SQS":
            raise TemplateError(f"{where}: Type {event.get('Type')} is not emulated locally (only SQS is)")
        queue = (event.get("Properties") or {}).get("Queue")
        queue_id = next((q for q in self.template.resources if points_at(queue, q)), None)
        if queue_id is None:
            raise TemplateError(f"{where}.Properties.Queue: expected !GetAtt <a queue of this template>.Arn")
        props = self.resolve(event.get("Properties") or {}, f"{where}.Properties")
        return EventSource(
            function_id=logical_id,
            queue_url=self.get_att(queue_id, "QueueUrl", where),
            queue_arn=self.get_att(queue_id, "Arn", where),
            batch_size=int(props.get("BatchSize", 10)),  # Lambda's default
            batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            # Without ScalingConfig Lambda scales up to 1,000 invocations; locally a few are enough.
            maximum_concurrency=int((props.get("ScalingConfig") or {}).get("MaximumConcurrency", 5)),
            report_batch_item_failures="ReportBatchItemFailures"
            in (props.get("FunctionResponseTypes") or []),
        )


@dataclass(frozen=True)
class EventSource:
    """An SQS event source mapping (SAM ``Type: SQS`` event): the function it invokes, its queue, settings."""

    function_id: str
    queue_url: str
    queue_arn: str
    batch_size: int
    batching_window: float  # MaximumBatchingWindowInSeconds
    maximum_concurrency: int  # ScalingConfig.MaximumConcurrency: concurrent invocations
    report_batch_item_failures: bool  # FunctionResponseTypes: [ReportBatchItemFailures]


@dataclass
class DeployedStack:
    """A stack deployed into the emulator, with what the runtime needs to run it."""

    name: str
    parameters: dict[str, str]
    resolver: Resolver
    functions: dict[str, FunctionSpec] = field(default_factory=dict)  # logical id -> spec
    event_sources: list[EventSource] = field(default_factory=list)
    custom_resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> response
    outputs: dict[str, str] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)  # topic logical id -> its stand-in queue URL

    def ref(self, logical_id: str) -> str:
        return self.resolver.created[logical_id].ref

    def attribute(self, logical_id: str, name: str) -> str:
        return self.resolver.created[logical_id].attributes[name]

    def pipeline_names(self) -> list[str]:
        """The pipelines the stack's routes start (names or ARNs as routed)."""
        routed = (self.custom_resources.get("Routes") or {}).get("Data") or {}
        return [name for name in str(routed.get("PipelineNames", "")).split(",") if name]


def _stringify(value: Any) -> Any:
    """CloudFormation passes every scalar of ResourceProperties as a string."""
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    return str(value).lower() if isinstance(value, bool) else str(value)


def _from_source(spec: FunctionSpec) -> tuple[Path, dict[str, str]]:
    return spec.code_uri, {}


class StackDeployer:
    """Deploys a template's stacks into the emulator the standard ``AWS_*`` settings point at."""

    def __init__(
        self,
        template: Template,
        *,
        aws_env: Mapping[str, str],
        on_log: LogSink | None = None,
        code: CodeFor = _from_source,
        function_env: Mapping[str, str] | None = None,
    ) -> None:
        self.template, self.aws_env, self.on_log, self.code = template, dict(aws_env), on_log, code
        self.function_env = dict(function_env or {})  # for every function the deploy runs (ROUTES_FILE)
        self.region = self.aws_env.get("AWS_REGION") or self.aws_env.get("AWS_DEFAULT_REGION", DEFAULT_REGION)
        self.s3, self.sqs, self.events = boto3.client("s3"), boto3.client("sqs"), boto3.client("events")
        self.iam, self.logs = boto3.client("iam"), boto3.client("logs")

    def deploy(
        self, stack_name: str, parameters: Mapping[str, str] | None = None, *, custom_resources: bool = True
    ) -> DeployedStack:
        """Create the stack's resources, each once all it names exists; ``custom_resources=False`` leaves
        out the ``Custom::`` ones (each then answers every attribute with "")."""
        try:
            values = self.template.parameter_values(parameters)
            resolver = Resolver(self.template, stack_name, values, region=self.region)
            if refused := resolver.rule_failures():  # as CloudFormation does, before it creates anything
                raise StackError(f"the template's rules refuse these parameters: {' '.join(refused)}")
            resources = self.template.resources
            pending = [
                i
                for i, r in resources.items()
                if "Condition" not in r or resolver.condition(str(r["Condition"]), i)
            ]
            stack = DeployedStack(stack_name, values, resolver)
            while pending:
                waiting: list[tuple[str, _NotYet]] = []
                for logical_id in pending:
                    depends = resources[logical_id].get("DependsOn") or []
                    try:
                        if set([depends] if isinstance(depends, str) else depends) & set(pending):
                            raise _NotYet(f"{logical_id}: DependsOn {depends}")
                        self.create(stack, logical_id, custom_resources=custom_resources)
                    except _NotYet as exc:
                        waiting.append((logical_id, exc))
                if len(waiting) == len(pending):
                    raise StackError(f"cannot create {', '.join(i for i, _ in waiting)}: {waiting[0][1]}")
                pending = [i for i, _ in waiting]
            for logical_id in self.template.functions():
                stack.functions[logical_id] = resolver.function(logical_id)
                events = (self.template.properties(logical_id).get("Events") or {}).items()
                stack.event_sources += [resolver.event_source(logical_id, str(i), e) for i, e in events]
        except TemplateError as exc:
            raise StackError(f"stack {stack_name}: {exc}") from exc
        for name, output in (self.template.doc.get("Outputs") or {}).items():
            with contextlib.suppress(TemplateError):  # an output naming what is not emulated: not needed
                stack.outputs[str(name)] = resolver.resolve_str(output.get("Value"), f"Outputs.{name}")
        return stack

    def create(self, stack: DeployedStack, logical_id: str, *, custom_resources: bool = True) -> None:
        """Create one resource (raises _NotYet, creating nothing, while a resource it names is missing)."""
        resolver, kind = stack.resolver, self.template.resource_type(logical_id)
        where = f"Resources.{logical_id}.Properties"
        props = self.template.properties(logical_id)
        name = generated_name(stack.name, logical_id)
        arn = f"arn:aws:{{}}:{self.region}:{ACCOUNT_ID}:{{}}"
        if kind.startswith("Custom::") and custom_resources:
            response = self._custom_resource(stack, logical_id, kind, resolver.resolve(props, where))
            stack.custom_resources[logical_id] = response
            data = {str(k): str(v) for k, v in (response.get("Data") or {}).items()}
            resource = Resource(str(response.get("PhysicalResourceId", "")), data)
        elif kind.startswith("Custom::"):
            resource = Resource("", defaultdict(str))
        elif kind == "AWS::S3::Bucket":
            resource = self._bucket(stack, logical_id, resolver.resolve(props, where), where)
        elif kind in ("AWS::SQS::Queue", "AWS::SNS::Topic"):  # a topic: its ARN, a stand-in queue behind it
            settings = resolver.resolve({k: props[k] for k in QUEUE_ATTRIBUTES if k in props}, where)
            if "RedrivePolicy" in settings:
                settings["RedrivePolicy"] = json.dumps(
                    {k: str(v) for k, v in settings["RedrivePolicy"].items()}
                )
            queue = resolver.resolve_str(props.get("QueueName", name[:80]), where)
            url = self.sqs.create_queue(QueueName=queue, Attributes={k: str(v) for k, v in settings.items()})
            queue_url = url["QueueUrl"]
            resource = Resource(
                queue_url, {"Arn": arn.format("sqs", queue), "QueueName": queue, "QueueUrl": queue_url}
            )
            if kind == "AWS::SNS::Topic":
                stack.topics[logical_id], topic_arn = queue_url, arn.format("sns", name)
                resource = Resource(
                    topic_arn, {**resource.attributes, "TopicArn": topic_arn, "TopicName": name}
                )
        elif kind == "AWS::IAM::Role":
            trust = resolver.resolve(props.get("AssumeRolePolicyDocument", {}), where)
            role = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
            resource = Resource(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})
        elif kind == "AWS::Logs::LogGroup":
            group = resolver.resolve_str(props.get("LogGroupName", name), where)
            self.logs.create_log_group(logGroupName=group)
            resource = Resource(group, {"Arn": arn.format("logs", f"log-group:{group}:*")})
        elif kind == FUNCTION:
            function = resolver.resolve_str(props.get("FunctionName", name), where)
            function_arn = arn.format("lambda", f"function:{function}")
            attributes = {
                "Arn": function_arn,
                "Version": f"{function_arn}:1",
                "Alias": f"{function_arn}:live",
            }
            resource = Resource(function, attributes)
        elif kind == "AWS::Events::Rule" and custom_resources:  # its pattern may be one's attribute
            resource = self._rule(stack, logical_id, props, where)
        else:
            resource = Resource(name)  # changes nothing locally: a name, so that !Ref resolves
        resolver.created[logical_id] = resource

    def _bucket(self, stack: DeployedStack, logical_id: str, props: dict[str, Any], where: str) -> Resource:
        name = props.get("BucketName") or generated_name(stack.name, logical_id, lower=True, limit=63)
        self.s3.create_bucket(Bucket=name)
        if (props.get("VersioningConfiguration") or {}).get("Status"):
            self.s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration=props["VersioningConfiguration"]
            )
        if "EventBridgeConfiguration" in (props.get("NotificationConfiguration") or {}):
            self.s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        return Resource(name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"})

    def _rule(self, stack: DeployedStack, logical_id: str, props: dict[str, Any], where: str) -> Resource:
        """The rule on the default bus; a target that is a topic of this stack goes to its stand-in queue."""
        resolver, targets = stack.resolver, []
        for target in props.get("Targets") or []:
            topic = next((t for t in stack.topics if points_at(target.get("Arn"), t)), None)
            arn = (
                resolver.get_att(topic, "Arn", where) if topic else resolver.resolve_str(target["Arn"], where)
            )
            local = {"Id": resolver.resolve_str(target["Id"], where), "Arn": arn}
            if "InputTransformer" in target:
                local["InputTransformer"] = resolver.resolve(target["InputTransformer"], where)
            targets.append(local)
        pattern = resolver.resolve(props["EventPattern"], f"{where}.EventPattern")
        name = generated_name(stack.name, logical_id)
        text = pattern if isinstance(pattern, str) else json.dumps(pattern)  # a JSON string or an object
        rule_arn = self.events.put_rule(Name=name, EventPattern=text, State="ENABLED")["RuleArn"]
        self.events.put_targets(Rule=name, Targets=targets)
        return Resource(name, {"Arn": rule_arn})

    def _custom_resource(
        self, stack: DeployedStack, logical_id: str, kind: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        """Run the provider function on CloudFormation's Create event; the SUCCESS response it sent."""
        token = self.template.resources[logical_id].get("Properties", {}).get("ServiceToken")
        provider = next((f for f in self.template.functions() if points_at(token, f)), None)
        if provider is None:
            raise StackError(f"{logical_id}: its ServiceToken is not a function of this template")
        spec, responses = stack.resolver.function(provider), ResponseUrls(self.s3, self.region)
        event = {
            "RequestType": "Create",
            "ServiceToken": properties["ServiceToken"],
            "ResponseURL": responses.url(),
            "StackId": stack.resolver.stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "ResourceType": kind,
            "ResourceProperties": _stringify(properties),
        }
        code_dir, env = self.code(spec)
        overrides = {**self.function_env, **env}
        with FunctionProcess(
            spec, aws_env=self.aws_env, code_dir=code_dir, env_overrides=overrides, on_log=self.on_log
        ) as function:
            invocation = function.invoke(event)
        what = f"{logical_id} ({kind}, Create)"
        if (response := responses.wait(event["ResponseURL"])) is None:
            error = invocation.payload if invocation.error else {}
            cause = f"{error['errorType']}: {error['errorMessage']}" if error else "no response"
            raise StackError(f"{what}: {spec.logical_id} sent no response to CloudFormation ({cause})")
        if response.get("Status") != "SUCCESS":
            raise StackError(f"{what} failed: {response.get('Reason') or 'no Reason given'}")
        return response


class ResponseUrls:
    """CloudFormation's ``ResponseURL``s: pre-signed PUT URLs into the bucket CloudFormation itself uses
    (``cloudformation-custom-resource-response-<region>``), here on the emulator's S3."""

    def __init__(self, s3: Any, region: str) -> None:
        self.s3, self.bucket = s3, f"cloudformation-custom-resource-response-{region.replace('-', '')}"
        with contextlib.suppress(self.s3.exceptions.BucketAlreadyOwnedByYou):
            self.s3.create_bucket(Bucket=self.bucket)

    def url(self) -> str:
        params = {"Bucket": self.bucket, "Key": str(uuid.uuid4())}
        return str(self.s3.generate_presigned_url("put_object", Params=params))

    def wait(self, url: str, timeout: float = RESPONSE_GRACE) -> dict[str, Any] | None:
        """The response PUT to ``url``, or None when none came within ``timeout`` seconds."""
        key = url.split("?", 1)[0].rsplit("/", 1)[1]
        waiter = {"Delay": 0.05, "MaxAttempts": max(1, int(timeout / 0.05))}
        try:
            self.s3.get_waiter("object_exists").wait(Bucket=self.bucket, Key=key, WaiterConfig=waiter)
        except WaiterError:
            return None
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        try:
            return dict(json.loads(body))
        except (ValueError, TypeError):
            return {"Status": "INVALID", "Reason": f"response body is not a JSON object: {body[:200]!r}"}
