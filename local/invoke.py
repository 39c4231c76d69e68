"""``python -m local invoke EVENT [--function LogicalId]``: a Docker-free ``sam local invoke``.

Like ``sam local invoke``, it reads the function's Handler, Environment, Timeout and the template's
Globals, applies ``events/env.json`` (SAM's ``--env-vars`` format: ``{"LogicalId": {...},
"Parameters": {...}}``; only variables the template declares are overridden, as SAM does), and runs
the handler from its ``sam build`` artifact (``.aws-sam/build/<LogicalId>``; from source when not
built) in a fresh process, enforcing the timeout. The function's log goes to stderr, its return value
(or Lambda's error object) to stdout as JSON.

Unlike ``sam local invoke``, it needs no Docker and no AWS: it starts the emulator and deploys the
stack into it first (bucket, queues, the pipeline through the real deploy function), so that the
calls the handler makes succeed. Buckets named in the event are created too. A CloudFormation event's
``ResponseURL`` (a pre-signed S3 URL nobody can reach from here) is pointed at a local server, and the
response the handler sends is shown; a FAILED response makes the command fail.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

from local import artifacts
from local.cfn_response import ResponseServer
from local.emulator import Emulator, environment
from local.functions import FunctionProcess
from local.process import ROOT
from local.stack import FUNCTION_TYPES, DeployedStack, StackDeployer, StackError
from local.template import Template, TemplateError, points_at

INVOKE_STACK = "local-invoke"


class InvokeError(Exception):
    """The invocation could not be set up (unknown function, unreadable event, failed local deploy)."""


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvokeError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InvokeError(f"the {what} {path} is not valid JSON: {exc}") from exc


def is_cloudformation_event(event: Any) -> bool:
    return isinstance(event, dict) and "RequestType" in event and "ResponseURL" in event


def choose_function(template: Template, event: Any, requested: str | None) -> str:
    """The function to invoke: the one asked for, else the only one that can take this event."""
    functions = [i for i, r in template.resources.items() if r.get("Type") in FUNCTION_TYPES]
    if requested:
        if requested not in functions:
            raise InvokeError(
                f"no function {requested} in {template.path.name} (functions: {', '.join(functions)})"
            )
        return requested
    if len(functions) == 1:
        return functions[0]
    if is_cloudformation_event(event):
        kind = event.get("ResourceType")
        for resource in template.resources.values():
            if resource.get("Type") == kind:
                token = (resource.get("Properties") or {}).get("ServiceToken")
                providers = [f for f in functions if points_at(token, f)]
                if providers:
                    return providers[0]
    else:
        with_s3 = [f for f in functions if (template.properties(f).get("Events") or {})]
        if len(with_s3) == 1:
            return with_s3[0]
    raise InvokeError(
        f"cannot tell which function takes this event: pass --function ({', '.join(functions)})"
    )


def env_overrides(
    env_file: Path | None, logical_id: str, declared: dict[str, str], warn: TextIO
) -> dict[str, str]:
    """SAM's --env-vars semantics: global ``Parameters`` then the function's own section."""
    if env_file is None:
        return {}
    data = _load_json(env_file, "environment file")
    if not isinstance(data, dict):
        raise InvokeError(f"{env_file}: expected an object of {{LogicalId: {{VARIABLE: value}}}}")
    values: dict[str, str] = {}
    for section in ("Parameters", logical_id):
        for name, value in (data.get(section) or {}).items():
            if name not in declared:
                print(
                    f"{env_file}: {section}.{name} ignored: {logical_id} declares no such variable", file=warn
                )
                continue
            values[str(name)] = "" if value is None else str(value)
    return values


def _parameters_behind(template: Template, nodes: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
    """Template parameters behind the given values (``Name: !Ref Param``), so the local stack matches."""
    params: dict[str, str] = {}
    for name, value in values.items():
        node = nodes.get(name)
        ref = node.get("Ref") if isinstance(node, dict) and len(node) == 1 else None
        if ref in template.parameters and isinstance(value, str | int | float):
            params[str(ref)] = str(value)
    return params


def _stack_parameters(
    template: Template, logical_id: str, event: Any, overrides: dict[str, str]
) -> dict[str, str]:
    variables = (template.function_properties(logical_id).get("Environment") or {}).get("Variables") or {}
    params = _parameters_behind(template, dict(variables), dict(overrides))
    if is_cloudformation_event(event):  # Update/Delete: the resource as it was created
        resource = next(
            (r for r in template.resources.values() if r.get("Type") == event.get("ResourceType")), {}
        )
        properties = event.get("OldResourceProperties") or event.get("ResourceProperties") or {}
        if isinstance(properties, dict):
            params.update(_parameters_behind(template, dict(resource.get("Properties") or {}), properties))
    return params


def _buckets_in(event: Any) -> set[str]:
    """Bucket names an S3, SQS-wrapped or EventBridge event refers to."""
    found: set[str] = set()
    if not isinstance(event, dict):
        return found
    for record in event.get("Records") or []:
        if not isinstance(record, dict):
            continue
        name = ((record.get("s3") or {}).get("bucket") or {}).get("name")
        if isinstance(name, str) and name:
            found.add(name)
        body = record.get("body")
        if isinstance(body, str):
            with contextlib.suppress(json.JSONDecodeError):  # not JSON: no bucket to find there
                found |= _buckets_in(json.loads(body))
    detail = event.get("detail")
    if isinstance(detail, dict):
        name = (detail.get("bucket") or {}).get("name")
        if isinstance(name, str) and name:
            found.add(name)
    return found


def _ensure_buckets(names: set[str]) -> None:
    s3 = boto3.client("s3")
    for name in sorted(names):
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise InvokeError(f"cannot create bucket {name} named in the event: {exc}") from exc


class LocalInvoke:
    """An emulator with the stack deployed, for one or more invocations (the CLI makes one).

    The stack is deployed to suit each event (parameters behind the env overrides; a CloudFormation
    Create finds no custom resource, an Update or Delete finds it as created) and kept while the next
    event needs the same; a CloudFormation event may change it, so the stack is deployed afresh after
    one.
    """

    def __init__(
        self,
        *,
        template_path: Path = ROOT / "template.yaml",
        env_file: Path | None = ROOT / "events" / "env.json",
        prefer_build: bool = True,
    ) -> None:
        try:
            self.template = Template(template_path)
        except TemplateError as exc:
            raise InvokeError(str(exc)) from exc
        self.env_file = env_file if env_file and env_file.is_file() else None
        self.prefer_build = prefer_build
        self._exit = contextlib.ExitStack()
        self._emulator: Emulator | None = None
        self._responses: ResponseServer | None = None
        self._deployed: tuple[tuple[tuple[str, str], ...], bool] | None = None
        self._stack: DeployedStack | None = None

    def __enter__(self) -> LocalInvoke:
        emulator = self._exit.enter_context(Emulator())
        self._exit.enter_context(environment(emulator.environ()))
        self._responses = self._exit.enter_context(ResponseServer())
        self._emulator = emulator
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _routes_env(self) -> dict[str, str]:
        """ROUTES_FILE for functions run from source (a sam build artifact has its routes.json)."""
        try:
            return artifacts.routes_environment(self.template.root / "routes.yaml")
        except artifacts.BuildError as exc:
            raise InvokeError(str(exc)) from exc

    def _stack_for(self, params: dict[str, str], custom_resources: bool, err: TextIO) -> DeployedStack:
        key = (tuple(sorted(params.items())), custom_resources)
        if self._stack is not None and self._deployed == key:
            return self._stack
        assert self._emulator is not None
        assert self._responses is not None
        self._emulator.reset()  # moto keeps its state per process: start from nothing, as a new stack would
        self._stack = self._deployed = None
        deploy_log: list[str] = []
        deployer = StackDeployer(
            self.template,
            aws_env=self._emulator.environ(),
            responses=self._responses,
            on_log=lambda fid, line: deploy_log.append(f"{fid}: {line}"),  # shown if the deploy fails
            prefer_build=self.prefer_build,
            function_env=self._routes_env(),
        )
        started = time.monotonic()
        try:
            stack = deployer.deploy(INVOKE_STACK, params, custom_resources=custom_resources)
        except (StackError, artifacts.BuildError, TemplateError) as exc:
            for line in deploy_log:
                print(f"  [deploy] {line}", file=err)
            raise InvokeError(f"local deploy failed: {exc}") from exc
        print(f"local stack {INVOKE_STACK} ready in {time.monotonic() - started:.1f} s", file=err)
        self._stack, self._deployed = stack, key
        return stack

    def invoke(
        self,
        event_path: Path,
        *,
        function: str | None = None,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
    ) -> int:
        """Run one invocation; the exit status (0: the handler returned and CloudFormation got SUCCESS)."""
        assert self._emulator is not None
        assert self._responses is not None
        template = self.template
        event = _load_json(event_path, "event file")
        logical_id = choose_function(template, event, function)
        variables = (template.function_properties(logical_id).get("Environment") or {}).get("Variables") or {}
        overrides = env_overrides(self.env_file, logical_id, {str(k): "" for k in variables}, err)
        cloudformation = is_cloudformation_event(event)
        creating = cloudformation and event.get("RequestType") == "Create"
        stack = self._stack_for(_stack_parameters(template, logical_id, event, overrides), not creating, err)
        spec = stack.functions[logical_id]

        response_url = None
        if cloudformation:
            self._deployed = None  # the event may change the stack: the next one deploys it afresh
            response_url = self._responses.url()
            event = {**event, "ResponseURL": response_url}
            properties = event.get("ResourceProperties") or {}
            if isinstance(properties.get("DataBucket"), str):
                _ensure_buckets({properties["DataBucket"]})
        else:
            _ensure_buckets(_buckets_in(event))

        code_dir = artifacts.code_dir(spec, prefer_build=self.prefer_build)
        where = "its sam build artifact" if code_dir == artifacts.sam_build_dir(spec) else str(code_dir)
        print(f"invoking {logical_id} ({spec.handler}) from {where}, timeout {spec.timeout} s", file=err)
        with FunctionProcess(
            spec,
            aws_env=self._emulator.environ(),
            code_dir=code_dir,
            env_overrides={**self._routes_env(), **overrides},
            on_log=lambda fid, line: print(line, file=err),
        ) as process:
            request_id = str(uuid.uuid4())
            print(f"START RequestId: {request_id} Version: $LATEST", file=err)
            invocation = process.invoke(event, request_id=request_id)
        report = f"REPORT RequestId: {request_id}\tDuration: {invocation.duration_ms:.2f} ms"
        if invocation.init_ms is not None:
            report += f"\tInit Duration: {invocation.init_ms:.2f} ms"
        print(f"END RequestId: {request_id}\n{report}\tMemory Size: {spec.memory_size} MB", file=err)
        print(json.dumps(invocation.payload, indent=2, default=str), file=out)
        status = 1 if invocation.error else 0
        if response_url is not None:
            response = self._responses.wait(response_url, timeout=5.0)
            if response is None:
                print("CloudFormation response: none was sent", file=err)
                status = 1
            else:
                print(f"CloudFormation response: {json.dumps(response)}", file=err)
                if response.get("Status") != "SUCCESS":
                    print(f"CloudFormation would fail the resource: {response.get('Reason')}", file=err)
                    status = 1
        return status


def invoke(
    event_path: Path,
    *,
    function: str | None = None,
    template_path: Path = ROOT / "template.yaml",
    env_file: Path | None = ROOT / "events" / "env.json",
    prefer_build: bool = True,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """One invocation in a fresh emulator: what ``python -m local invoke`` runs."""
    with LocalInvoke(template_path=template_path, env_file=env_file, prefer_build=prefer_build) as session:
        return session.invoke(event_path, function=function, out=out, err=err)


__all__ = [
    "InvokeError",
    "LocalInvoke",
    "choose_function",
    "env_overrides",
    "invoke",
    "is_cloudformation_event",
]
