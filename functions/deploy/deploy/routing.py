"""``Custom::Routes`` and ``Custom::RoutesCheck``: what the routes (``routes.json``) make of the stack.

``Custom::Routes`` makes no AWS call. From the routes and the stack's own pipeline and bucket it derives,
with :mod:`contract.routes` (the one derivation), what the template grants and listens to, as the
resource's Data, which the template reads with ``Fn::GetAtt`` (CloudFormation makes a custom resource's
Data name-value pairs its attributes; the whole response is at most 4,096 bytes):

- ``PipelineArns``: the pipelines the trigger may start, exactly the routed ones (comma-joined, for
  ``Fn::Split`` into a policy's Resource);
- ``UploadObjectArns`` / ``UploadPrefixes``: the routed prefixes as object ARNs and as ``s3:prefix``
  values (``raw/*``), for the trigger's read and list permissions;
- ``EventPattern``: the EventBridge pattern (a JSON string) of the upload rule;
- ``PipelineNames`` and ``UploadUrls``: the same, readable, for the stack's outputs.

It also refuses routed prefixes that overlap the stack's other folders (the clean and snapshot
prefixes and ``code/``): a write there would start a pipeline again.

``Custom::RoutesCheck`` describes every routed pipeline (``DescribePipeline``) and fails the deploy when
one is missing or does not declare a parameter its route sets, naming the route, the parameter and the
pipeline. Its Data ``ParameterTypes`` is ``{pipeline as routed: {parameter: String|Integer|Float|Boolean}}``
for the parameters the routes set: the trigger's ``ROUTE_PARAMETER_TYPES``, so that a value the pipeline
would refuse is a logged skip at run time.

Hand-written: no AWS resource type derives permissions or a rule from a file like this.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from contract import routes as contract_routes
from contract.folders import CODE_PREFIX, overlaps, prefix_problem
from contract.names import BUCKET_NAME, PIPELINE_NAME
from contract.routes import Routes, RoutesError, event_pattern, placeholders, start_arns, value_problem
from deploy.errors import DeployError
from deploy.resource import NOT_CREATED, Outcome, Request

ROUTES_TYPE = "Custom::Routes"
CHECK_TYPE = "Custom::RoutesCheck"
# CloudFormation refuses a response body over 4,096 bytes; the rest of the body (IDs, status) takes
# well under 600 of them.
MAX_DATA_BYTES = 3500
# A just-attached IAM policy can take a few seconds to apply: DescribePipeline is retried this long
# (seconds between attempts) when it answers AccessDenied.
PROPAGATION_WAITS = (2.0, 4.0, 8.0, 16.0)
_PASSIVE = frozenset({"ServiceToken", "ArtifactVersion"})

logger = Logger(child=True)


def load(directory: Path, override: str = "") -> Routes:
    """The routes the build compiled next to the ``deploy`` package, or those of the file ``override``."""
    path = Path(override) if override else directory / contract_routes.FILE
    try:
        return contract_routes.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeployError(
            f"the routes are missing from the function's build artifact ({exc.strerror}: {exc.filename}); "
            "build it with `sam build`"
        ) from exc
    except RoutesError as exc:
        raise DeployError(f"{path.name} is invalid: {exc}") from exc


@dataclass(frozen=True, slots=True)
class StackArn:
    """Partition, region and account, from the request's StackId (an ARN)."""

    partition: str
    region: str
    account: str

    @classmethod
    def parse(cls, stack_id: str) -> StackArn:
        parts = stack_id.split(":", 5)
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != "cloudformation":
            raise DeployError(f"StackId {stack_id!r} is not a CloudFormation stack ARN")
        return cls(parts[1], parts[3], parts[4])


def _text(properties: Mapping[str, Any], name: str) -> str:
    value = properties.get(name)
    return "" if value is None else str(value).strip()


def _check_properties(properties: Mapping[str, Any], known: frozenset[str], what: str) -> None:
    problems = []
    unknown = sorted(set(properties) - known - _PASSIVE)
    if unknown:
        problems.append(f"unknown properties: {', '.join(unknown)}")
    missing = sorted(k for k in known if not _text(properties, k))
    if missing:
        problems.append(f"missing properties: {', '.join(missing)}")
    name = _text(properties, "PipelineName")
    if name and not PIPELINE_NAME.fullmatch(name):
        problems.append(f"PipelineName {name!r} is not a valid pipeline name")
    if problems:
        raise DeployError(f"invalid {what} properties: " + "; ".join(problems))


def _fits(data: dict[str, str], what: str) -> dict[str, str]:
    size = len(json.dumps(data).encode("utf-8"))
    if size > MAX_DATA_BYTES:
        raise DeployError(
            f"{what} would answer CloudFormation with {size} bytes of data, more than fits in a custom "
            f"resource's 4,096-byte response: use fewer routes, shorter prefixes or pipeline names"
        )
    return data


class RoutesResource:
    """``Custom::Routes``: the routes' permissions and event pattern for this stack (no AWS call)."""

    KNOWN = frozenset({"PipelineName", "DataBucket", "CleanPrefix", "SnapshotPrefix"})

    def __init__(self, routes: Callable[[], Routes]) -> None:
        self._routes = routes  # read on first need: a Delete needs no routes

    def create(self, request: Request) -> Outcome:
        return Outcome(f"routes:{request.request_id}", self.derive(request))

    def update(self, request: Request) -> Outcome:
        return Outcome(request.physical_resource_id, self.derive(request))

    def delete(self, request: Request) -> Outcome:
        return Outcome(request.physical_resource_id, {})  # nothing was made

    def derive(self, request: Request) -> dict[str, str]:
        props = request.properties
        _check_properties(props, self.KNOWN, "Routes")
        bucket, own = _text(props, "DataBucket"), _text(props, "PipelineName")
        if not BUCKET_NAME.fullmatch(bucket):
            raise DeployError(f"invalid Routes properties: DataBucket {bucket!r} is not a bucket name")
        arn = StackArn.parse(request.stack_id)
        routes = self._routes()
        self._check_folders(routes, _text(props, "CleanPrefix"), _text(props, "SnapshotPrefix"))
        prefixes = routes.prefixes()
        data = {
            "PipelineArns": ",".join(start_arns(routes, own, arn.partition, arn.region, arn.account)),
            "PipelineNames": ",".join(routes.pipelines(own)),
            "UploadObjectArns": ",".join(f"arn:{arn.partition}:s3:::{bucket}/{p}*" for p in prefixes),
            "UploadPrefixes": ",".join(f"{p}*" for p in prefixes),
            "UploadUrls": ",".join(f"s3://{bucket}/{p}" for p in prefixes),
            "EventPattern": json.dumps(event_pattern(routes, bucket), separators=(",", ":")),
        }
        logger.info("routes derived", extra={"prefixes": prefixes, "pipelines": data["PipelineNames"]})
        return _fits(data, "Routes")

    @staticmethod
    def _check_folders(routes: Routes, clean: str, snapshot: str) -> None:
        others = [("CleanPrefix", clean), ("SnapshotPrefix", snapshot), ("the code folder", CODE_PREFIX)]
        problems = [f"{name} {folder!r} {p}" for name, folder in others[:2] if (p := prefix_problem(folder))]
        problems += overlaps(others, nested=[("the routed prefix", p) for p in routes.prefixes()])
        if problems:
            raise DeployError("; ".join(problems))


class RoutesCheckResource:
    """``Custom::RoutesCheck``: every routed pipeline exists and declares what its route sets."""

    KNOWN = frozenset({"PipelineName"})

    def __init__(
        self, routes: Callable[[], Routes], sagemaker: Any, waits: tuple[float, ...] = PROPAGATION_WAITS
    ) -> None:
        self._routes = routes  # read on first need: a Delete needs no routes
        self.sagemaker = sagemaker
        self.waits = waits

    def create(self, request: Request) -> Outcome:
        return Outcome(f"routes-check:{request.request_id}", self.check(request))

    def update(self, request: Request) -> Outcome:
        return Outcome(request.physical_resource_id, self.check(request))

    def delete(self, request: Request) -> Outcome:
        return Outcome(request.physical_resource_id or f"{NOT_CREATED}{request.request_id}", {})

    def check(self, request: Request) -> dict[str, str]:
        _check_properties(request.properties, self.KNOWN, "RoutesCheck")
        own = _text(request.properties, "PipelineName")
        declared: dict[str, dict[str, str]] = {}
        types: dict[str, dict[str, str]] = {}
        problems: list[str] = []
        for route in self._routes().routes:
            pipeline = route.pipeline or own
            if pipeline not in declared:
                declared[pipeline] = self._parameters(pipeline, route.name)
            have = declared[pipeline]
            for name, template in route.parameters.items():
                kind = have.get(name)
                if kind is None:
                    problems.append(
                        f"{route.name}: parameter {name!r} is not declared by pipeline {pipeline!r} "
                        f"(it declares: {', '.join(sorted(have)) or 'none'})"
                    )
                    continue
                types.setdefault(pipeline, {})[name] = kind
                problem = None if placeholders(template) else value_problem(kind, template)
                if problem:
                    problems.append(
                        f"{route.name}: parameter {name!r} of pipeline {pipeline!r} is a {kind}: {problem}"
                    )
        if problems:
            raise DeployError("; ".join(problems))
        logger.info("routed pipelines checked", extra={"pipelines": sorted(declared)})
        text = json.dumps(types, separators=(",", ":"), sort_keys=True)
        return _fits({"ParameterTypes": text}, "RoutesCheck")

    def _parameters(self, pipeline: str, route: str) -> dict[str, str]:
        """The pipeline's declared parameters and their types; a DeployError naming the route if missing."""
        for wait in (*self.waits, None):
            try:
                described = self.sagemaker.describe_pipeline(PipelineName=pipeline)
                break
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code == "ResourceNotFound":
                    raise DeployError(
                        f"{route}: pipeline {pipeline!r} does not exist (create it, or correct routes.yaml)"
                    ) from exc
                if code not in ("AccessDeniedException", "AccessDenied") or wait is None:
                    raise DeployError(f"{route}: DescribePipeline {pipeline} failed: {exc}") from exc
                logger.info("DescribePipeline denied: waiting for the policy to apply", extra={"wait": wait})
                time.sleep(wait)
            except BotoCoreError as exc:
                raise DeployError(f"{route}: DescribePipeline {pipeline} failed: {exc}") from exc
        try:
            definition = json.loads(described.get("PipelineDefinition") or "{}")
            declared = definition.get("Parameters") or []
            return {str(p["Name"]): str(p.get("Type", "String")) for p in declared}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DeployError(f"{route}: pipeline {pipeline!r}'s definition is unreadable: {exc}") from exc


__all__ = ["CHECK_TYPE", "ROUTES_TYPE", "RoutesCheckResource", "RoutesResource", "StackArn", "load"]
