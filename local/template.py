"""Read names and settings from ``template.yaml``: the local runtime keeps no second copy of them.

The template is parsed with cfn-lint's YAML decoder (it understands ``!Ref``/``!Sub``/``!GetAtt``).
:class:`Resolver` evaluates the few intrinsic functions the local stack needs, against parameter
values and the physical names of the resources created so far; anything else raises
:class:`TemplateError` naming where it met it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

from local.emulator import ACCOUNT_ID, DEFAULT_REGION

# Lambda's defaults when the template says nothing (timeout, memory, SQS event source mapping).
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY = 128
DEFAULT_SQS_BATCH_SIZE = 10
# Without ScalingConfig Lambda scales an SQS mapping up to 1,000 invocations; locally a few are enough.
DEFAULT_SQS_CONCURRENCY = 5

SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")  # ${Name} or ${Resource.Attribute} in a !Sub
_NO_VALUE = object()  # AWS::NoValue: the key it sits under disappears


class TemplateError(Exception):
    """The template lacks something the local runtime needs, or uses what it cannot evaluate."""


@dataclass
class Resource:
    """A created resource: what ``Ref`` returns and what ``GetAtt`` can read."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SqsEventSource:
    """An SQS event source mapping of a function (SAM ``Type: SQS`` event)."""

    event_id: str
    queue_logical_id: str
    batch_size: int
    batching_window: float  # MaximumBatchingWindowInSeconds
    maximum_concurrency: int  # ScalingConfig.MaximumConcurrency: concurrent invocations
    report_batch_item_failures: bool  # FunctionResponseTypes: [ReportBatchItemFailures]
    enabled: bool


@dataclass(frozen=True)
class FunctionSpec:
    """Everything the local runtime needs to run one function as Lambda would."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_uri: Path
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    sqs_events: tuple[SqsEventSource, ...] = ()


class Template:
    """A parsed ``template.yaml``."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.root = self.path.parent
        try:
            self.doc: dict[str, Any] = cfn_yaml.load(str(self.path))
        except (OSError, cfn_yaml.CfnParseError) as exc:
            raise TemplateError(f"cannot read {path}: {exc}") from exc
        if not isinstance(self.doc, dict) or "Resources" not in self.doc:
            raise TemplateError(f"{path} has no Resources section")
        self.resources: dict[str, dict[str, Any]] = dict(self.doc["Resources"])
        self.parameters: dict[str, dict[str, Any]] = dict(self.doc.get("Parameters") or {})
        self.conditions: dict[str, Any] = dict(self.doc.get("Conditions") or {})
        self.rules: dict[str, Any] = dict(self.doc.get("Rules") or {})
        self.globals: dict[str, Any] = dict((self.doc.get("Globals") or {}).get("Function") or {})

    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(f"{self.path.name} has no resource {logical_id}") from None

    def resource_type(self, logical_id: str) -> str:
        return str(self.resource(logical_id).get("Type", ""))

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resource(logical_id).get("Properties") or {})

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with SAM ``Globals.Function`` merged under them."""
        props = self.properties(logical_id)
        if self.resource_type(logical_id) != "AWS::Serverless::Function":
            return props
        merged = {k: v for k, v in self.globals.items()}
        for key, value in props.items():
            if key == "Environment" and isinstance(value, dict) and "Environment" in merged:
                global_vars = dict((merged["Environment"] or {}).get("Variables") or {})
                global_vars.update(value.get("Variables") or {})
                merged["Environment"] = {"Variables": global_vars}
            else:
                merged[key] = value
        return merged

    def parameter_values(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """Each parameter's value: the override, else its default; checked against AllowedValues."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.parameters))
        if unknown:
            raise TemplateError(f"unknown template parameter(s): {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name, spec in self.parameters.items():
            if name in overrides:
                value = str(overrides[name])
            elif "Default" in spec:
                default = spec["Default"]
                value = ",".join(map(str, default)) if isinstance(default, list) else str(default)
            else:
                raise TemplateError(f"template parameter {name} has no default: pass a value for it")
            allowed = spec.get("AllowedValues")
            if allowed and value not in [str(a) for a in allowed]:
                raise TemplateError(f"parameter {name}={value!r} is not one of {list(allowed)}")
            values[name] = value
        return values


def generated_name(stack_name: str, logical_id: str, *, lower: bool = False, limit: int = 64) -> str:
    """A CloudFormation-style physical name, ``<stack>-<LogicalId>-<suffix>``, stable for a stack."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    head = f"{stack_name}-{logical_id}"[: limit - len(suffix) - 1]
    name = f"{head}-{suffix}"
    return name.lower() if lower else name


class Resolver:
    """Evaluates intrinsic functions for one local stack."""

    def __init__(
        self,
        template: Template,
        stack_name: str,
        parameters: Mapping[str, str],
        *,
        region: str = DEFAULT_REGION,
        account_id: str = ACCOUNT_ID,
    ) -> None:
        self.template = template
        self.stack_name = stack_name
        self.parameters = dict(parameters)
        self.region = region
        self.account_id = account_id
        self.stack_id = (
            f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/"
            f"{hashlib.sha256(stack_name.encode()).hexdigest()[:8]}-local"
        )
        self.created: dict[str, Resource] = {}

    # -- pseudo parameters and references -------------------------------------------------------

    def _pseudo(self, name: str) -> str | None:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def ref(self, name: str, where: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        if name in self.parameters:
            return self.parameters[name]
        base, _, sam_attr = name.partition(".")  # SAM's `!Ref Function.Version` / `.Alias`
        if base in self.created:
            resource = self.created[base]
            if sam_attr:
                return resource.attributes.get(sam_attr, f"{resource.attributes.get('Arn', base)}:1")
            return resource.ref
        raise TemplateError(f"{where}: !Ref {name}: not a parameter or a resource created locally")

    def get_att(self, logical_id: str, attribute: str, where: str) -> str:
        resource = self.created.get(logical_id)
        if resource is None:
            raise TemplateError(
                f"{where}: !GetAtt {logical_id}.{attribute}: {logical_id} is not created locally"
            )
        try:
            return resource.attributes[attribute]
        except KeyError:
            raise TemplateError(
                f"{where}: !GetAtt {logical_id}.{attribute}: attribute not known locally "
                f"(known: {', '.join(sorted(resource.attributes)) or 'none'})"
            ) from None

    # -- evaluation -----------------------------------------------------------------------------

    def resolve(self, node: Any, where: str = "template") -> Any:
        """The value of ``node`` with every intrinsic function evaluated."""
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, arg),) = node.items()
                if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                    return self._intrinsic(key, arg, where)
            out: dict[str, Any] = {}
            for key, value in node.items():
                resolved = self.resolve(value, f"{where}.{key}")
                if resolved is not _NO_VALUE:
                    out[str(key)] = resolved
            return out
        if isinstance(node, list):
            items = [self.resolve(v, f"{where}[{i}]") for i, v in enumerate(node)]
            return [v for v in items if v is not _NO_VALUE]
        if isinstance(node, str):
            return str(node)  # cfn-lint's str_node -> plain str
        return node

    def resolve_str(self, node: Any, where: str) -> str:
        value = self.resolve(node, where)
        if isinstance(value, bool | int | float | str):
            return str(value).lower() if isinstance(value, bool) else str(value)
        raise TemplateError(f"{where}: expected a string, got {type(value).__name__}")

    def condition(self, name: str, where: str) -> bool:
        if name not in self.template.conditions:
            raise TemplateError(f"{where}: unknown condition {name}")
        return bool(self.resolve(self.template.conditions[name], f"Conditions.{name}"))

    def rule_failures(self) -> list[str]:
        """The AssertDescription of each template rule assertion these parameters fail, as CloudFormation
        checks them before it creates or updates a stack (a rule whose RuleCondition is false is skipped)."""
        failures: list[str] = []
        for name, rule in self.template.rules.items():
            where = f"Rules.{name}"
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"], f"{where}.RuleCondition"):
                continue
            for index, assertion in enumerate(rule.get("Assertions") or []):
                if not self.resolve(assertion["Assert"], f"{where}.Assertions[{index}]"):
                    failures.append(str(assertion.get("AssertDescription") or f"{where} failed"))
        return failures

    def _intrinsic(self, key: str, arg: Any, where: str) -> Any:
        here = f"{where}.{key}"
        match key:
            case "Ref":
                return self.ref(str(arg), where)
            case "Fn::GetAtt":
                if isinstance(arg, str):
                    logical_id, _, attribute = arg.partition(".")
                else:
                    logical_id, attribute = (str(a) for a in arg)
                return self.get_att(logical_id, attribute, where)
            case "Fn::Sub":
                return self._sub(arg, here)
            case "Fn::Join":
                sep, values = arg
                return str(sep).join(self.resolve_str(v, here) for v in self.resolve(values, here))
            case "Fn::Select":
                index, values = arg
                return self.resolve(values, here)[int(self.resolve(index, here))]
            case "Fn::Split":
                sep, value = arg
                return self.resolve_str(value, here).split(str(sep))
            case "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(str(name), here) else if_false, here)
            case "Fn::Equals":
                left, right = (self.resolve(a, here) for a in arg)
                return str(left) == str(right)
            case "Fn::Not":
                return not self.resolve(arg[0], here)
            case "Fn::And":
                return all(self.resolve(a, here) for a in arg)
            case "Fn::Or":
                return any(self.resolve(a, here) for a in arg)
            case "Condition":
                return self.condition(str(arg), here)
        raise TemplateError(f"{where}: {key} is not evaluated by the local runtime")

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, list):
            text, variables = str(arg[0]), {str(k): v for k, v in dict(arg[1]).items()}
        else:
            text, variables = str(arg), {}

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

    # -- functions ------------------------------------------------------------------------------

    def function(self, logical_id: str) -> FunctionSpec:
        """A function's settings as Lambda would run them (Globals merged, intrinsics evaluated)."""
        template = self.template
        kind = template.resource_type(logical_id)
        if kind not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            raise TemplateError(f"{logical_id} is a {kind or 'resource without Type'}, not a function")
        props = template.function_properties(logical_id)
        where = f"Resources.{logical_id}.Properties"
        handler = props.get("Handler")
        if not handler:
            raise TemplateError(f"{where}: no Handler")
        code_uri = props.get("CodeUri", ".")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{where}.CodeUri: only a local folder is supported locally")
        environment = {
            str(k): self.resolve_str(v, f"{where}.Environment.Variables.{k}")
            for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()
            if self.resolve(v, f"{where}.Environment.Variables.{k}") is not _NO_VALUE
        }
        name = (
            self.resolve_str(props["FunctionName"], f"{where}.FunctionName")
            if "FunctionName" in props
            else (generated_name(self.stack_name, logical_id))
        )
        return FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}",
            handler=str(handler),
            code_uri=(template.root / code_uri).resolve(),
            runtime=str(props.get("Runtime", "")),
            timeout=int(self.resolve(props.get("Timeout", DEFAULT_TIMEOUT), f"{where}.Timeout")),
            memory_size=int(self.resolve(props.get("MemorySize", DEFAULT_MEMORY), f"{where}.MemorySize")),
            environment=environment,
            sqs_events=self._sqs_events(logical_id, props),
        )

    def _sqs_events(self, logical_id: str, props: dict[str, Any]) -> tuple[SqsEventSource, ...]:
        """The function's SAM ``Type: SQS`` events; a direct S3 or other event source is refused."""
        sources: list[SqsEventSource] = []
        for event_id, event in (props.get("Events") or {}).items():
            where = f"Resources.{logical_id}.Properties.Events.{event_id}"
            kind = event.get("Type") if isinstance(event, dict) else None
            if kind != "SQS":
                raise TemplateError(
                    f"{where}: Type {kind} is not emulated locally (only SQS event source mappings are)"
                )
            eprops = self.resolve(event.get("Properties") or {}, f"{where}.Properties")
            queue = (event.get("Properties") or {}).get("Queue")
            queue_id = None
            if isinstance(queue, dict) and "Fn::GetAtt" in queue:
                arg = queue["Fn::GetAtt"]
                queue_id = str(arg.split(".")[0] if isinstance(arg, str) else arg[0])
            if queue_id is None or queue_id not in self.template.resources:
                raise TemplateError(
                    f"{where}.Properties.Queue: expected !GetAtt <a queue of this template>.Arn"
                )
            scaling = eprops.get("ScalingConfig") or {}
            sources.append(
                SqsEventSource(
                    event_id=str(event_id),
                    queue_logical_id=queue_id,
                    batch_size=int(eprops.get("BatchSize", DEFAULT_SQS_BATCH_SIZE)),
                    batching_window=float(eprops.get("MaximumBatchingWindowInSeconds", 0)),
                    maximum_concurrency=int(scaling.get("MaximumConcurrency", DEFAULT_SQS_CONCURRENCY)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (eprops.get("FunctionResponseTypes") or []),
                    enabled=str(eprops.get("Enabled", True)).lower() != "false",
                )
            )
        return tuple(sources)


def points_at(target: Any, logical_id: str) -> bool:
    """Whether a template value is ``!GetAtt <logical_id>.Arn`` / ``!Ref <logical_id>`` (or an alias)."""
    if isinstance(target, dict):
        if "Ref" in target:
            return str(target["Ref"]).split(".")[0] == logical_id
        if "Fn::GetAtt" in target:
            arg = target["Fn::GetAtt"]
            first = arg.split(".")[0] if isinstance(arg, str) else arg[0]
            return str(first) == logical_id
    return False


__all__ = [
    "SUB_VARIABLE",
    "FunctionSpec",
    "Resolver",
    "Resource",
    "SqsEventSource",
    "Template",
    "TemplateError",
    "generated_name",
    "points_at",
]
