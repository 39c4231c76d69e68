"""``python -m local invoke EVENT [--function LogicalId] [--running]``: a Docker-free ``sam local invoke``.

As ``sam local invoke`` (Handler, Environment, Timeout, Globals, ``--env-vars``), in a fresh process,
against an emulator with the stack deployed; the objects the event announces are put first, so a sample
event really starts a run. ``--running`` puts them into the running ``make up`` instead. docs/local-runtime.md
("make invoke") has the detail.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError
from trigger.errors import UnsupportedEvent
from trigger.events import Action, ObjectEvent, normalise

from coilgen import generate
from local import ROOT
from local.emulator import CREDENTIALS, Emulator, environment
from local.lambdas import FunctionProcess
from local.runtime import RuntimeStartError, function_code, routes_environment
from local.stack import (
    DeployedStack,
    ResponseUrls,
    StackDeployer,
    StackError,
    Template,
    TemplateError,
    points_at,
)
from ops.target import running_runtime

INVOKE_STACK = "local-invoke"
SAMPLE_ROWS = 200  # the sample object's rows: small, and more than the ETL's reject threshold needs


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


def created_objects(event: Any) -> list[ObjectEvent]:
    """The objects an S3, SQS or EventBridge event says were created, as the trigger reads it."""
    try:
        return [i for i in normalise(event) if isinstance(i, ObjectEvent) and i.action == Action.CREATED]
    except UnsupportedEvent:
        return []


def put_objects(
    s3: Any, objects: list[ObjectEvent], bucket: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Put each object (into ``bucket``, else its own, made versioned): (the event's version IDs and eTags
    -> those of the objects put, each key S3 refused -> why: too long, a path the HTTP layer rewrites)."""
    replaced: dict[str, str] = {}
    refused: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        sample = generate(Path(scratch), layout="named", rows=SAMPLE_ROWS, seed=1).out_dir / "Caravan.csv"
        for item in objects:
            name = bucket or item.bucket
            if bucket is None:
                with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                    s3.create_bucket(Bucket=name)
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            data = sample.read_bytes() if item.key.lower().endswith(".csv") else b""  # a marker, a folder
            try:
                put = s3.put_object(Bucket=name, Key=item.key, Body=data)
            except ClientError as exc:
                refused[item.key] = str(exc)
                continue
            for old, new in (
                (item.version_id, put.get("VersionId")),
                (item.etag, str(put["ETag"]).strip('"')),
            ):
                if old and new:
                    replaced[old] = new
    return replaced, refused


def env_overrides(
    env_file: Path | None, logical_id: str, declared: dict[str, Any], warn: TextIO
) -> dict[str, str]:
    """SAM's --env-vars semantics: global ``Parameters`` then the function's own section."""
    data = _load_json(env_file, "environment file") if env_file else {}
    if not isinstance(data, dict):
        raise InvokeError(f"{env_file}: expected an object of {{LogicalId: {{VARIABLE: value}}}}")
    values: dict[str, str] = {}
    for section in ("Parameters", logical_id):
        for name, value in (data.get(section) or {}).items():
            if name in declared:
                values[str(name)] = "" if value is None else str(value)
            else:
                print(
                    f"{env_file}: {section}.{name} ignored: {logical_id} declares no such variable", file=warn
                )
    return values


def _parameters_behind(template: Template, nodes: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
    """Template parameters behind the given values (``Name: !Ref Param``), so the local stack matches."""
    refs = {
        name: node.get("Ref") for name, node in nodes.items() if isinstance(node, dict) and len(node) == 1
    }
    return {
        str(refs[n]): str(v)
        for n, v in values.items()
        if refs.get(n) in template.parameters and isinstance(v, str | int | float)
    }


class LocalInvoke:
    """An emulator with the stack deployed, for one or more invocations (the CLI makes one). The stack
    suits each event (parameters behind the env overrides; a CloudFormation Create finds no custom
    resource, an Update or Delete finds it as created) and is kept while the next event needs the same."""

    def __init__(
        self, *, env_file: Path | None = ROOT / "events" / "env.json", prefer_build: bool = True
    ) -> None:
        try:
            self.template = Template(ROOT / "template.yaml")
        except TemplateError as exc:
            raise InvokeError(str(exc)) from exc
        self.env_file = env_file if env_file and env_file.is_file() else None
        self.prefer_build, self.emulator = prefer_build, Emulator()
        self._exit = contextlib.ExitStack()
        self._deployed: tuple[tuple[tuple[str, str], ...], bool] | None = None
        self._stack: DeployedStack | None = None

    def __enter__(self) -> LocalInvoke:
        self._exit.enter_context(self.emulator)
        self._exit.enter_context(environment(self.emulator.environ()))
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _code(self, spec: Any) -> tuple[Path, dict[str, str]]:
        return function_code(spec, prefer_build=self.prefer_build, root=self.template.root)

    def _stack_for(self, params: dict[str, str], custom_resources: bool, err: TextIO) -> DeployedStack:
        key = (tuple(sorted(params.items())), custom_resources)
        if self._stack is not None and self._deployed == key:
            return self._stack
        self.emulator.reset()  # moto keeps its state per process: start from nothing, as a new stack would
        deploy_log: list[str] = []  # shown if the deploy fails
        deployer = StackDeployer(
            self.template,
            aws_env=self.emulator.environ(),
            on_log=lambda fid, line: deploy_log.append(f"{fid}: {line}"),
            code=self._code,
            function_env=routes_environment(self.template.root / "routes.yaml"),
        )
        started = time.monotonic()
        try:
            self._stack = deployer.deploy(INVOKE_STACK, params, custom_resources=custom_resources)
        except StackError as exc:
            print("\n".join(f"  [deploy] {line}" for line in deploy_log), file=err)
            raise InvokeError(f"local deploy failed: {exc}") from exc
        print(f"local stack {INVOKE_STACK} ready in {time.monotonic() - started:.1f} s", file=err)
        self._deployed = key
        return self._stack

    def _function(self, event: Any, requested: str | None) -> str:
        """The function to invoke: the one asked for, else the only one that can take this event."""
        functions = self.template.functions()
        if requested and requested not in functions:
            raise InvokeError(
                f"no function {requested} in {self.template.path.name} (functions: {', '.join(functions)})"
            )
        if requested or len(functions) == 1:
            return requested or functions[0]
        if is_cloudformation_event(event):
            resources = self.template.resources.values()
            tokens = [
                r.get("Properties", {}).get("ServiceToken")
                for r in resources
                if r.get("Type") == event.get("ResourceType")
            ]
            takers = [f for f in functions if any(points_at(t, f) for t in tokens)]
        else:
            takers = [f for f in functions if self.template.properties(f).get("Events")]
        if len(takers) != 1:
            raise InvokeError(
                f"cannot tell which function takes this event: pass --function ({', '.join(functions)})"
            )
        return takers[0]

    def invoke(
        self,
        event_path: Path,
        *,
        function: str | None = None,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
    ) -> int:
        """Run one invocation; the exit status (0: the handler returned and CloudFormation got SUCCESS)."""
        template, event = self.template, _load_json(event_path, "event file")
        logical_id = self._function(event, function)
        variables = dict((template.properties(logical_id).get("Environment") or {}).get("Variables") or {})
        overrides = env_overrides(self.env_file, logical_id, variables, err)
        params = _parameters_behind(template, variables, dict(overrides))
        cloudformation = is_cloudformation_event(event)
        if cloudformation:  # Update/Delete: the resource as it was created
            kind = event.get("ResourceType")
            resource = next((r for r in template.resources.values() if r.get("Type") == kind), {})
            properties = event.get("OldResourceProperties") or event.get("ResourceProperties") or {}
            params.update(_parameters_behind(template, dict(resource.get("Properties") or {}), properties))
        stack = self._stack_for(params, not (cloudformation and event.get("RequestType") == "Create"), err)
        spec, s3, responses = stack.functions[logical_id], boto3.client("s3"), None
        if cloudformation:
            self._deployed = None  # the event may change the stack: the next one deploys it afresh
            responses = ResponseUrls(s3, self.emulator.region)
            event = {**event, "ResponseURL": responses.url()}
            if isinstance(bucket := (event.get("ResourceProperties") or {}).get("DataBucket"), str):
                with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                    s3.create_bucket(Bucket=bucket)
        elif objects := created_objects(event):
            text = event_path.read_text(encoding="utf-8")
            replaced, refused = put_objects(s3, objects)
            for old, new in replaced.items():
                text = text.replace(old, new)
            event = json.loads(text)
            if put := [o.key for o in objects if o.key not in refused]:
                print(f"put {', '.join(put)} (a sample file) for the event to announce", file=err)
            for key, why in refused.items():
                print(f"not put {key} (the event still announces it): {why}", file=err)

        code_dir, env = self._code(spec)
        where = "its sam build artifact" if ".aws-sam" in code_dir.parts else str(code_dir)
        print(f"invoking {logical_id} ({spec.handler}) from {where}, timeout {spec.timeout} s", file=err)
        with FunctionProcess(
            spec,
            aws_env=self.emulator.environ(),
            code_dir=code_dir,
            env_overrides={**routes_environment(template.root / "routes.yaml"), **env, **overrides},
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
        if responses is not None:
            response = responses.wait(event["ResponseURL"])
            print(
                f"CloudFormation response: {json.dumps(response) if response else 'none was sent'}", file=err
            )
            if response is None or response.get("Status") != "SUCCESS":
                reason = response.get("Reason") if response else "no response"
                print(f"CloudFormation would fail the resource: {reason}", file=err)
                status = 1
        return status


def replay_into_running(event_path: Path, err: TextIO = sys.stderr) -> int:
    """Put the objects ``event_path`` announces into the running ``make up``'s bucket: a real upload."""
    if (state := running_runtime()) is None:
        raise InvokeError("--running: no local runtime is running: start one with `make up`")
    if not (objects := created_objects(_load_json(event_path, "event file"))):
        raise InvokeError(f"--running replays uploads: {event_path} announces no object created")
    bucket = str(state["stacks"][0]["bucket"])
    with environment(
        {**CREDENTIALS, "AWS_ENDPOINT_URL": state["endpoint"], "AWS_DEFAULT_REGION": state["region"]}
    ):
        _, refused = put_objects(boto3.client("s3"), objects, bucket)
    for item in objects:
        if item.key in refused:
            print(f"not put s3://{bucket}/{item.key}: {refused[item.key]}", file=err)
        else:
            print(f"put s3://{bucket}/{item.key}: `make up` shows what becomes of it", file=err)
    return 0


def invoke(
    event_path: Path,
    *,
    function: str | None = None,
    env_file: Path | None = ROOT / "events" / "env.json",
    prefer_build: bool = True,
    running: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """One invocation in a fresh emulator, or (``running``) uploads into ``make up``."""
    if running:
        return replay_into_running(event_path, err)
    try:
        with LocalInvoke(env_file=env_file, prefer_build=prefer_build) as session:
            return session.invoke(event_path, function=function, out=out, err=err)
    except RuntimeStartError as exc:
        raise InvokeError(str(exc)) from exc


__all__ = ["InvokeError", "LocalInvoke", "created_objects", "env_overrides", "invoke", "put_objects"]
