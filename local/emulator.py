"""A local AWS emulator: moto's server on a loopback port, reached through ``AWS_ENDPOINT_URL``
(:meth:`Emulator.environ`). moto 5.2.5 falls short of AWS where the product depends on it; the patches
below (installed once per process) each restore one AWS behaviour, named in its docstring and listed in
docs/local-runtime.md ("Where moto falls short").
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from jsonpath_ng.ext.parser import parse as jsonpath
from moto.core.responses import ActionResult
from moto.events import models as events_models
from moto.events import utils as events_utils
from moto.s3 import notifications as s3_notifications
from moto.s3 import responses as s3_responses
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import (
    ConflictException,
    ResourceNotFound,
    SagemakerClientError,
    ValidationError,
)
from moto.server import ThreadedMotoServer
from moto.sqs import models as sqs_models

DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
# Dummy credentials: the emulator accepts any, and they keep boto3 away from real ones.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
EXECUTION_LIMIT_MESSAGE = (
    "The account-level service limit 'Maximum number of concurrent pipeline executions' is {limit} "
    "Pipeline Executions, with current utilization of {used} Pipeline Executions. Please use AWS "
    "Service Quotas to request an increase for this quota."
)
SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
# S3's EventBridge "reason" for each ObjectCreated event (the API that created the object).
_CREATED_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}
_SQS_CALLS = (  # the SQS calls that read or change a queue's messages
    "send_message", "send_message_batch", "delete_message", "delete_message_batch",
    "change_message_visibility", "change_message_visibility_batch", "purge_queue", "get_queue_attributes",
)  # fmt: skip


@dataclass(frozen=True)
class Quotas:
    """An account's service quotas, as the local runtime enforces them (None: no quota)."""

    max_concurrent_executions: int | None = 20  # SageMaker's documented default per account
    max_processing_instances: int | None = 4  # processing instances of all jobs together

    def __post_init__(self) -> None:
        for name in ("max_concurrent_executions", "max_processing_instances"):
            if (value := getattr(self, name)) is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (got {value})")


class ResourceLimitExceeded(SagemakerClientError):
    """SageMaker's refusal of a request beyond a service quota (HTTP 400)."""

    code = "ResourceLimitExceeded"


@dataclass
class _Account:
    """The state shared by every emulator of this process (moto's backends are per process)."""

    max_concurrent_executions: int | None = None
    refused_starts: int = 0
    most_executing: int = 0  # the most executions Executing right after a start
    listeners: list[Callable[[str, bool], None]] = field(default_factory=list)  # (ARN, replayed)
    stop_seconds: float = 0.0  # how long a stopped execution stays Stopping


_account = _Account()
_patch_lock = threading.Lock()
_patched = False


def _install_fidelity() -> None:
    global _patched
    with _patch_lock:
        if not _patched:
            _patch_sagemaker()
            _patch_s3()
            _patch_sqs()
            _patch_events()
            _patched = True


def _tell(arn: str, replayed: bool) -> None:
    for listener in list(_account.listeners):
        listener(arn, replayed)


def _pipeline_named(pipelines: dict[str, Any], pipeline_name: str) -> Any:
    """An unknown pipeline answers ResourceNotFound, as SageMaker does (moto: ValidationException)."""
    try:
        return pipelines[pipeline_name]
    except KeyError:
        raise ResourceNotFound(message=f"Pipeline '{pipeline_name}' does not exist.") from None


def _find_execution(backend: Any, execution_arn: str) -> Any:
    for pipeline in backend.pipelines.values():
        if execution_arn in pipeline.pipeline_executions:
            return pipeline.pipeline_executions[execution_arn]
    raise ValidationError(message=f"Could not find execution {execution_arn}")


def _executing(backend: Any) -> int:
    """Executions of the account in status Executing: what the execution quota counts."""
    executions = (e for p in backend.pipelines.values() for e in p.pipeline_executions.values())
    return sum(1 for e in executions if e.pipeline_execution_status == "Executing")


def _settle(execution: Any) -> str:
    """The execution's status, a stop that has run its course now ``Stopped``."""
    if execution.pipeline_execution_status == "Stopping" and time.monotonic() >= execution.stops_at:
        _set_status(execution, "Stopped")
    return str(execution.pipeline_execution_status)


def _refused(arn: str, status: str, only: str) -> ValidationError:
    return ValidationError(message=f"Pipeline execution {arn} is {status}; only {only}")


def _set_status(execution: Any, status: str, reason: str | None = None) -> None:
    previous = execution.pipeline_execution_status
    execution.pipeline_execution_status, execution.pipeline_execution_failure_reason = status, reason
    execution.last_modified_time = datetime.now(UTC)
    if status != previous:
        _status_changed(execution, previous)


def _iso(when: datetime | None) -> str | None:
    return when.replace(tzinfo=when.tzinfo or UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def status_event(execution: Any, previous: str | None) -> dict[str, Any]:
    """SageMaker's "Pipeline Execution Status Change" event for ``execution`` (moto's), as a PutEvents
    entry: the documented detail's fields in its order, without those SageMaker would not have yet."""
    arn, current = execution.arn, execution.pipeline_execution_status
    ended = current in ("Succeeded", "Failed", "Stopped")
    detail = {
        "pipelineExecutionDisplayName": execution.pipeline_execution_display_name or arn.rsplit("/", 1)[-1],
        "currentPipelineExecutionStatus": current,
        "previousPipelineExecutionStatus": previous,
        "executionStartTime": _iso(execution.creation_time),
        "executionEndTime": _iso(execution.last_modified_time) if ended else None,
        "pipelineExecutionDescription": execution.pipeline_execution_description,
        "pipelineArn": arn.split("/execution/")[0],
        "pipelineExecutionArn": arn,
    }
    detail = {k: v for k, v in detail.items() if v is not None}
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [detail["pipelineArn"], arn],
    }


def _status_changed(execution: Any, previous: str | None) -> None:
    """SageMaker sends an execution's every status change to EventBridge (moto sends nothing)."""
    from moto.events.models import events_backends

    _, _, _, region, account, _ = execution.arn.split(":", 5)
    events_backends[account][region].put_events([status_event(execution, previous)])


def _started(backend: Any, pipeline_name: str, token: str) -> str | None:
    """The execution ``token`` started, else None once the execution quota allows a new one."""
    pipeline = _pipeline_named(backend.pipelines, pipeline_name)
    for arn, execution in pipeline.pipeline_executions.items():
        if token and execution.client_request_token == token:
            return str(arn)
    limit, used = _account.max_concurrent_executions, _executing(backend)
    if limit is not None and used >= limit:
        _account.refused_starts += 1
        raise ResourceLimitExceeded(EXECUTION_LIMIT_MESSAGE.format(limit=limit, used=used))
    return None


def _patch_sagemaker() -> None:
    backend_cls = sm_models.SageMakerModelBackend
    original_start = backend_cls.start_pipeline_execution
    original_describe = backend_cls.describe_pipeline_execution
    original_list = backend_cls.list_pipeline_executions
    original_delete = backend_cls.delete_pipeline
    lock = threading.Lock()  # moto's server is threaded: each check-then-change is atomic

    def start_pipeline_execution(self: Any, pipeline_name: str, *args: Any) -> dict[str, str]:
        """SageMaker answers a replayed ClientRequestToken with its execution (moto starts another),
        refuses a start beyond the account's execution quota, and the execution is Executing until its
        steps end (moto: Succeeded at once), its status-change event sent. Every start answered goes to
        the start listeners."""
        with lock:
            arn = _started(self, pipeline_name, args[-1])  # the last argument: ClientRequestToken
            replayed = arn is not None
            if arn is None:
                arn = original_start(self, pipeline_name, *args)["PipelineExecutionArn"]
                execution = _find_execution(self, arn)
                execution.pipeline_execution_status, execution.steps = "Executing", []
                _status_changed(execution, None)
                _account.most_executing = max(_account.most_executing, _executing(self))
        _tell(arn, replayed)
        return {"PipelineExecutionArn": arn}

    def describe_pipeline_execution(self: Any, pipeline_execution_arn: str) -> dict[str, Any]:
        """The execution's own status and failure reason (moto drops the reason)."""
        execution = _find_execution(self, pipeline_execution_arn)
        _settle(execution)
        result: dict[str, Any] = original_describe(self, pipeline_execution_arn)
        result.pop("FailureReason", None)
        if reason := execution.pipeline_execution_failure_reason:
            result["FailureReason"] = reason
        return result

    def list_pipeline_executions(self: Any, pipeline_name: str) -> dict[str, Any]:
        for execution in _pipeline_named(self.pipelines, pipeline_name).pipeline_executions.values():
            _settle(execution)
        result: dict[str, Any] = original_list(self, pipeline_name)
        for summary in result["PipelineExecutionSummaries"]:
            if summary.get("PipelineExecutionFailureReason") in ("None", ""):
                del summary["PipelineExecutionFailureReason"]
        return result

    def list_pipeline_execution_steps(self: Any, pipeline_execution_arn: str) -> dict[str, Any]:
        """The steps the runner recorded, newest first (moto: HTTP 500)."""
        steps = getattr(_find_execution(self, pipeline_execution_arn), "steps", [])
        return {"PipelineExecutionSteps": [dict(step) for step in reversed(steps)]}

    def retry_pipeline_execution(self: Any, pipeline_execution_arn: str, token: str | None) -> dict[str, str]:
        """A Failed execution runs again (moto: missing); a token already used for it changes nothing."""
        answer = {"PipelineExecutionArn": pipeline_execution_arn}
        with lock:
            execution = _find_execution(self, pipeline_execution_arn)
            tokens: set[str] = getattr(execution, "retry_tokens", set())
            if token and token in tokens:
                return answer
            if (status := execution.pipeline_execution_status) != "Failed":
                raise _refused(pipeline_execution_arn, status, "a Failed one can be retried")
            execution.retry_tokens = tokens | ({token} if token else set())
            _set_status(execution, "Executing")
        _tell(pipeline_execution_arn, False)
        return answer

    def stop_pipeline_execution(self: Any, pipeline_execution_arn: str) -> dict[str, str]:
        """Executing -> Stopping -> Stopped after ``set_stop_seconds`` (moto: HTTP 500)."""
        with lock:
            execution = _find_execution(self, pipeline_execution_arn)
            if (status := _settle(execution)) == "Executing":
                _set_status(execution, "Stopping")
                execution.stops_at = time.monotonic() + _account.stop_seconds
            elif status != "Stopping":
                raise _refused(pipeline_execution_arn, status, "an Executing one can be stopped")
        return {"PipelineExecutionArn": pipeline_execution_arn}

    def delete_pipeline(self: Any, pipeline_name: str) -> str:
        """SageMaker refuses to delete a pipeline with running executions (moto deletes it)."""
        with lock:
            pipeline = _pipeline_named(self.pipelines, pipeline_name)
            executions = pipeline.pipeline_executions.items()
            running = sorted(arn for arn, e in executions if _settle(e) in ("Executing", "Stopping"))
            if running:
                raise ConflictException(
                    f"Pipeline {pipeline_name} has running executions ({', '.join(running)}): stop them "
                    "with StopPipelineExecution before deleting it"
                )
            return str(original_delete(self, pipeline_name))

    def response(method: str, *params: str) -> Callable[[Any], ActionResult]:
        """The HTTP side of an operation moto does not route to its backend."""
        return lambda self: ActionResult(
            getattr(self.sagemaker_backend, method)(*map(self._get_param, params))
        )

    # Patching third-party classes is the point here; mypy cannot follow it.
    for patch in (
        start_pipeline_execution, describe_pipeline_execution, list_pipeline_executions,
        list_pipeline_execution_steps, retry_pipeline_execution, stop_pipeline_execution, delete_pipeline,
    ):  # fmt: skip
        setattr(backend_cls, patch.__name__, patch)
    for name, params in {
        "list_pipeline_execution_steps": ("PipelineExecutionArn",),
        "retry_pipeline_execution": ("PipelineExecutionArn", "ClientRequestToken"),
        "stop_pipeline_execution": ("PipelineExecutionArn",),
    }.items():
        setattr(sm_responses.SageMakerResponse, name, response(name, *params))
    # moto's models look the pipeline up by this module-level name (describe, update, delete, start).
    setattr(sm_models, "get_pipeline_from_name", _pipeline_named)  # noqa: B010


def _patch_s3() -> None:
    sequence, sequence_lock = itertools.count(1), threading.Lock()

    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        """S3's "Object Created" event as S3 sends it: ``etag``, ``version-id``, an increasing
        ``sequencer``, the API as ``reason``, to the default bus's enabled rules only (moto: ``eTag``, a
        constant ``sequencer`` and ``id``, ``reason`` ObjectCreated, to every bus)."""
        from moto.events.models import events_backends

        obj: dict[str, Any] = {"key": key.name, "size": key.size, "etag": key.etag.replace('"', "")}
        if key.version_id is not None:
            obj["version-id"] = key.version_id
        with sequence_lock:
            obj["sequencer"] = f"{next(sequence):016X}"
        detail = {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": obj,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": _CREATED_REASONS.get(event_name, event_name.split(":")[1]),
        }
        event: Any = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": s3_notifications._detail_type(event_name),
            "source": "aws.s3",
            "account": account_id,
            "time": time.time(),  # moto writes it as ISO 8601 when it delivers to SQS
            "region": bucket.region_name,
            "resources": [bucket.arn],
            "detail": detail,
        }
        default_bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
        for rule in list(default_bus.rules.values()) if default_bus else []:
            if rule.state == "ENABLED":
                rule.send_to_targets(event, transform_input=False)

    original_get_notification = s3_responses.S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:
        """The stored ``EventBridgeConfiguration`` is part of the answer (moto leaves it out)."""
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is not None and config.event_bridge is not None:
            serialized = self.serialized  # this request's response object only:
            self.serialized = lambda result: serialized(
                ActionResult({**dict(result.result), "EventBridgeConfiguration": {}})
            )
        return original_get_notification(self)

    setattr(s3_notifications, "_send_event_bridge_message", send_event_bridge_message)  # noqa: B010
    setattr(s3_responses.S3Response, "get_bucket_notification", get_bucket_notification)  # noqa: B010


def _patch_sqs() -> None:
    """SQS calls on one queue are atomic (moto: two concurrent ReceiveMessage calls can hand out one message
    or fail with "Set changed size during iteration"); a long poll waits for messages outside the lock."""
    backend_cls = sqs_models.SQSBackend
    lock = threading.RLock()
    original_receive = backend_cls.receive_message

    def receive_message(
        self: Any, queue_name: str, count: int, wait_seconds: int, *args: Any, **kwargs: Any
    ) -> Any:
        deadline = time.monotonic() + (wait_seconds or 0)
        while True:
            with lock:
                result = original_receive(self, queue_name, count, 0, *args, **kwargs)
            if result or (remaining := deadline - time.monotonic()) <= 0:
                return result
            self.get_queue(queue_name).wait_for_messages(min(1.0, remaining))

    def serialised(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(self, *args, **kwargs)

        return call

    setattr(backend_cls, "receive_message", receive_message)  # noqa: B010
    for name in _SQS_CALLS:
        setattr(backend_cls, name, serialised(getattr(backend_cls, name)))


class _PlainText(str):
    """What an input transformer made of a template that is not JSON: delivered as this text."""


def _patch_events() -> None:
    """EventBridge's input transformer delivers a plain-text template (the notification rule's
    ``"<instance> is in state <status>"`` form) as that text (moto parses every template as JSON)."""
    parser = events_utils.EventTemplateParser
    original_parse = parser.parse
    original_send = events_models.Rule._send_to_sqs_queue

    def parse(input_template: str, input_paths_map: dict[str, Any], event: Any) -> Any:
        try:
            return original_parse(input_template, input_paths_map, event)
        except json.JSONDecodeError:
            text = input_template
            for name, path in (input_paths_map or {}).items():
                if matches := jsonpath(path).find(event):
                    text = text.replace(f"<{name}>", parser._stringify(matches[0].value))
            return _PlainText(text)

    def send_to_sqs_queue(self: Any, resource_id: str, event: Any, group_id: str | None = None) -> None:
        if not isinstance(event, _PlainText):
            return original_send(self, resource_id, event, group_id)
        backend = sqs_models.sqs_backends[self.account_id][self.region_name]
        backend.send_message(queue_name=resource_id, message_body=str(event), group_id=group_id)

    setattr(parser, "parse", staticmethod(parse))  # noqa: B010
    setattr(events_models.Rule, "_send_to_sqs_queue", send_to_sqs_queue)  # noqa: B010


class Emulator:
    """moto's server on ``127.0.0.1`` (a free port unless given); a context manager. Quotas, start
    listeners and the runner's records are process-wide, as moto's state is."""

    def __init__(self, region: str = DEFAULT_REGION, port: int = 0) -> None:
        self.region, self.endpoint_url, self._port = region, "", port
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)

    def start(self) -> Emulator:
        """Serve; a taken port raises OSError here (moto's server thread would only print it and hang)."""
        if self._port:
            with socket.socket() as probe:  # as the server binds: a stopped run's TIME_WAIT is no obstacle
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", self._port))
        _install_fidelity()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self.endpoint_url:
            self._server.stop()
            self.endpoint_url = ""

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every resource (moto's reset API), keeping the server and its patches."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 - the emulator's own http URL

    def environ(self) -> dict[str, str]:
        """The standard variables that point boto3 (and the SageMaker SDK) at this emulator."""
        region = {"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region}
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **region, **CREDENTIALS}

    def set_quotas(self, quotas: Quotas | None) -> None:
        """Enforce ``quotas.max_concurrent_executions`` on StartPipelineExecution (None: no quota)."""
        _account.max_concurrent_executions = quotas.max_concurrent_executions if quotas else None
        _account.most_executing = 0

    def set_stop_seconds(self, seconds: float) -> None:
        """How long an execution stopped through the API stays ``Stopping`` (0 by default)."""
        _account.stop_seconds = seconds

    def on_start(self, listener: Callable[[str, bool], None]) -> Callable[[], None]:
        """Call ``listener(execution_arn, replayed)`` after every start answered and every retry accepted
        (``replayed`` False: the execution is to run). Returns the undo."""
        _account.listeners.append(listener)
        return lambda: _account.listeners.remove(listener)

    @property
    def most_executing(self) -> int:
        return _account.most_executing

    @property
    def refused_starts(self) -> int:
        return _account.refused_starts

    def executing(self) -> int:
        return _executing(self._backend())

    def _backend(self) -> Any:
        return sm_models.sagemaker_backends[ACCOUNT_ID][self.region]

    def record_execution(self, execution_arn: str, status: str, failure_reason: str | None = None) -> None:
        """Set an execution's status and failure reason (what only the local runner may do)."""
        _set_status(_find_execution(self._backend(), execution_arn), status, failure_reason)

    def record_step(self, execution_arn: str, step: Mapping[str, Any]) -> None:
        """Add or replace (by ``StepName``) a step of an execution, in ListPipelineExecutionSteps' shape."""
        execution = _find_execution(self._backend(), execution_arn)
        steps = [s for s in getattr(execution, "steps", []) if s["StepName"] != step["StepName"]]
        execution.steps = [*steps, dict(step)]


def environment(values: Mapping[str, str]) -> Any:
    """A context manager that sets environment variables for a block, then restores them."""
    return mock.patch.dict(os.environ, values)


__all__ = [
    "ACCOUNT_ID",
    "CREDENTIALS",
    "DEFAULT_REGION",
    "DETAIL_TYPE",
    "SOURCE",
    "Emulator",
    "Quotas",
    "ResourceLimitExceeded",
    "environment",
    "status_event",
]
