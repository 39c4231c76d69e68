"""Where the CLI works: a deployed stack (found through its CloudFormation outputs) or the local runtime
(found through ``.local-runtime/runtime.json``), and the clients to reach it.

Every client is made by boto3 from the standard settings, so ``AWS_ENDPOINT_URL`` (and the rest) are
honoured; for the local runtime the endpoint and region come from its state file and the credentials are
the emulator's dummy ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from trigger.config import Config as TriggerConfig
from trigger.config import TriggerMode
from trigger.errors import ConfigError

from contract.routes import Routes, RoutesError, loads
from local import STATE_FILE
from pipeline.__main__ import compile_routes

CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=30)
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ROUTES_YAML = Path(__file__).resolve().parent.parent / "routes.yaml"  # the repository's
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}


class OpsError(Exception):
    """The command cannot do what was asked; the message is the one line the user sees."""


@dataclass(frozen=True)
class Target:
    """A stack: its name, where it runs, and its outputs (PipelineName, UploadQueueUrl, ...)."""

    stack: str
    region: str
    outputs: Mapping[str, str]
    endpoint: str | None = None  # the local runtime's emulator; None = boto3's own resolution
    local: bool = False
    session: Any = field(default=None, compare=False, repr=False)

    @property
    def where(self) -> str:
        return f"local runtime at {self.endpoint}" if self.local else f"AWS {self.region}"

    def output(self, name: str) -> str:
        value = self.outputs.get(name)
        if not value:
            raise OpsError(f"stack {self.stack} has no {name} output (deployed from an older template?)")
        return value

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"config": CONFIG, "region_name": self.region}
        if self.endpoint:
            kwargs["endpoint_url"] = self.endpoint
        return self.session.client(service, **kwargs)


def _prefix(target: Target, output: str) -> str | None:
    """``clean/`` from ``CleanDataUrl`` = ``s3://<bucket>/clean/``."""
    url = target.outputs.get(output)
    return url.split("/", 3)[3] if url and url.startswith("s3://") and url.count("/") >= 3 else None


def trigger_settings(target: Target, routes: Routes) -> TriggerConfig:
    """The trigger's settings as this stack has them, from its outputs (pipeline, prefixes, mode, marker)
    and the ``routes`` it was built from: the dead-letter report and the backfill ask its rules."""
    given: dict[str, Any] = {
        "routes": routes,
        "clean_prefix": _prefix(target, "CleanDataUrl"),
        "snapshot_prefix": _prefix(target, "SnapshotDataUrl"),
        "marker_name": target.outputs.get("MarkerName"),
    }
    mode = target.outputs.get("TriggerMode")
    try:
        if mode:
            given["mode"] = TriggerMode(mode)
        return TriggerConfig(
            target.output("PipelineName"), **{k: v for k, v in given.items() if v is not None}
        )
    except (ConfigError, ValueError) as exc:
        raise OpsError(f"the stack's outputs do not make a trigger configuration: {exc}") from exc


def load_routes(path: Path | None = None) -> Routes:
    """The routes a stack was built from (default :data:`ROUTES_YAML`, the file `make build` compiles
    into the trigger: the deployed copy is inside its code), checked as the build checks them."""
    source = path or ROUTES_YAML
    try:
        return loads(compile_routes(source))
    except RoutesError as exc:
        raise OpsError(f"{source}: {exc}") from exc


def explain(exc: ClientError | BotoCoreError, doing: str) -> OpsError:
    """One line for a failed AWS call: what was being done and what AWS said."""
    if isinstance(exc, NoCredentialsError):
        return OpsError(f"{doing}: no AWS credentials (configure a profile or the AWS_* variables)")
    if isinstance(exc, NoRegionError):
        return OpsError(f"{doing}: no AWS region (pass --region or set AWS_REGION)")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), " ".join(str(error.get("Message", "")).split())
        if message.startswith("<"):  # an HTML error page (a proxy, or an emulator's HTTP 500): no details
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", code)
            return OpsError(f"{doing}: the endpoint answered HTTP {status} without an AWS error")
        if code in DENIED:
            return OpsError(f"{doing}: permission missing ({code}): {message}")
        return OpsError(f"{doing}: {code}: {message}" if message else f"{doing}: {code}")
    return OpsError(f"{doing}: {' '.join(str(exc).split())}")


def running_runtime(state_file: Path | None = None) -> dict[str, Any] | None:
    """The local runtime's state when one is running (its process alive), else None."""
    try:
        state: dict[str, Any] = json.loads((state_file or STATE_FILE).read_text(encoding="utf-8"))
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def local_target(state: Mapping[str, Any], stack: str | None = None) -> Target:
    stacks = list(state.get("stacks") or [])
    chosen = next((s for s in stacks if stack in (None, s.get("name"))), None)
    if chosen is None:
        names = ", ".join(str(s.get("name")) for s in stacks) or "none"
        raise OpsError(f"the local runtime has no stack {stack} (it has: {names})")
    outputs = {str(k): str(v) for k, v in (chosen.get("outputs") or {}).items()}
    region = str(state["region"])
    session = boto3.session.Session(region_name=region, **LOCAL_CREDENTIALS)
    return Target(str(chosen["name"]), region, outputs, str(state["endpoint"]), True, session)


def deployed_target(stack: str, region: str | None = None) -> Target:
    session = boto3.session.Session(region_name=region)
    try:
        cloudformation = session.client("cloudformation", config=CONFIG)
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if "does not exist" in message:
            raise OpsError(f"stack {stack} does not exist in {session.region_name}") from exc
        raise explain(exc, f"looking up stack {stack}") from exc
    except BotoCoreError as exc:
        raise explain(exc, f"looking up stack {stack}") from exc
    outputs = {str(o["OutputKey"]): str(o["OutputValue"]) for o in found[0].get("Outputs") or []}
    return Target(stack, str(session.region_name), outputs, None, False, session)


def resolve(*, stack: str | None, local: bool, region: str | None, state_file: Path | None = None) -> Target:
    """``--local``, no ``--stack`` or the name of a local stack while a local runtime runs: the local
    runtime; else the deployed stack."""
    state = running_runtime(state_file)
    local_names = {s.get("name") for s in (state or {}).get("stacks") or []}
    if local or stack is None or stack in local_names:  # a local stack's name (as its notifications say)
        if state is None:
            if local:
                raise OpsError("no local runtime is running: start one with `make up` (python -m local up)")
            raise OpsError(
                "no stack given and no local runtime running: pass --stack NAME, or start `make up`"
            )
        return local_target(state, stack)
    return deployed_target(stack, region)


__all__ = [
    "OpsError",
    "Target",
    "deployed_target",
    "explain",
    "load_routes",
    "local_target",
    "resolve",
    "running_runtime",
    "trigger_settings",
]
