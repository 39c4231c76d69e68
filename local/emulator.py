"""A local AWS emulator: moto's server on a free loopback port, with fidelity fixes.

Every component talks to it over HTTP through the standard ``AWS_ENDPOINT_URL`` setting, exactly as
it would talk to AWS or LocalStack. :meth:`Emulator.environ` gives the variables to export.

moto 5.2.5 falls short of S3 and SageMaker Pipelines in ways this project depends on, and
:func:`_install_fidelity` closes each gap with a small patch of moto's backend (one process-wide
install, undone never: the patched behaviour is the real services'):

1. ``ClientRequestToken`` is stored but not honoured: the same token twice makes two executions.
   Real SageMaker returns the first execution. Patched to do the same.
2. Every execution is ``Succeeded`` from creation and its failure reason is dropped. Patched to start
   ``Executing``; the local pipeline runner records ``Succeeded``/``Failed`` and the reason through
   :meth:`Emulator.record_execution`, and Describe/ListPipelineExecution(s) report them.
3. ``ListPipelineExecutionSteps`` answers HTTP 500 (NotImplemented). Patched to list the steps the
   runner recorded, newest first, as SageMaker does.
4. An unknown pipeline name answers ``ValidationException``; SageMaker answers ``ResourceNotFound``.
5. S3 notification records lack ``versionId`` and ``sequencer``, which S3 always sends (``versionId``
   on a versioned bucket). Patched to add both: a re-upload of the same bytes is a new event.
6. There are no service quotas. :meth:`Emulator.set_quotas` sets the account's quota of concurrent
   pipeline executions: a StartPipelineExecution beyond it answers ``ResourceLimitExceeded`` (HTTP
   400) with SageMaker's message, as SageMaker does; a replay of an existing execution's
   ``ClientRequestToken`` is answered as before, whatever the count. The processing-instance quota is
   the runner's (:mod:`local.runner`: SageMaker refuses the job, not the start). moto's state is
   per process, so the quota is too; without a call there is none (moto's own behaviour).
7. SQS calls on one queue are not atomic: two concurrent ReceiveMessage calls can hand out the same
   message or fail with "Set changed size during iteration" (HTTP 500), which several pollers of one
   queue do all the time. Patched: every call that reads or changes a queue's messages runs under one
   lock; a long poll waits for messages outside it, as SQS's own long polling does.
8. ``RetryPipelineExecution`` is missing. Patched: a ``Failed`` execution goes back to ``Executing`` and
   the callbacks given to :func:`on_retry` (the runtime's runner) run it again; any other status answers
   ``ValidationException``; a ``ClientRequestToken`` already used for that execution changes nothing.
9. EventBridge's input transformer parses every ``InputTemplate`` as JSON after filling its
   placeholders, so a plain-text template (EventBridge's documented ``"<instance> is in state
   <status>"`` form) fails, and a target queue receives the JSON encoding of what it produced.
   EventBridge sends a plain-text template's result as that text. Patched: a template that is not JSON
   is filled the same way and reaches an SQS target as its text; a JSON template is unchanged.
10. ``StopPipelineExecution`` answers HTTP 500 (NotImplemented), and ``DeletePipeline`` deletes a
    pipeline whatever its executions do; SageMaker refuses to delete a pipeline with running executions
    ("stop all running instances of the pipeline using the StopPipelineExecution API"). Patched: a stop
    turns an ``Executing`` execution ``Stopping``, then ``Stopped`` once :meth:`Emulator.set_stop_seconds`
    have passed (SageMaker first stops the running step; 0 by default), a ``Stopping`` one is answered
    as before, any other status answers ``ValidationException``; ``DeletePipeline`` answers
    ``ConflictException`` (one of its documented errors) while an execution is ``Executing`` or
    ``Stopping``. The local runner does not stop a job it is running (nothing stops one locally).
11. S3's events to EventBridge (a bucket's ``EventBridgeConfiguration``) differ from S3's: ``etag`` is
    spelled ``eTag``, ``sequencer`` and the event ``id`` are constants, ``reason`` is ``ObjectCreated``
    instead of the API (``PutObject``, ``CopyObject``, ...), and the rules of every bus get them, not only
    the default bus's (where S3 sends them). Patched to send S3's shape
    (with the sequencer of item 5) to the default bus's enabled rules. Input transformers are not
    applied to them (moto's own choice; the upload rule has none).
12. ``GetBucketNotificationConfiguration`` leaves out ``EventBridgeConfiguration`` although
    ``PutBucketNotificationConfiguration`` stores it. Patched to answer it, as S3 does.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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


@dataclass(frozen=True)
class Quotas:
    """An account's service quotas, as the local runtime enforces them (None: no quota)."""

    max_concurrent_executions: int | None = 20  # SageMaker's documented default per account
    max_processing_instances: int | None = 4  # processing instances of all jobs together

    def __post_init__(self) -> None:
        for name in ("max_concurrent_executions", "max_processing_instances"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (got {value})")


EXECUTION_LIMIT_MESSAGE = (
    "The account-level service limit 'Maximum number of concurrent pipeline executions' is {limit} "
    "Pipeline Executions, with current utilization of {used} Pipeline Executions. Please use AWS "
    "Service Quotas to request an increase for this quota."
)


class ResourceLimitExceeded(SagemakerClientError):
    """SageMaker's refusal of a request beyond a service quota (HTTP 400)."""

    code = "ResourceLimitExceeded"


@dataclass
class _Account:
    """The quota state shared by every emulator of this process (moto's backends are per process)."""

    max_concurrent_executions: int | None = None
    refused_starts: int = 0
    most_executing: int = 0  # the most executions Executing right after a start
    # Told of every StartPipelineExecution answered: (execution ARN, whether it replayed a token).
    on_start: Callable[[str, bool], None] | None = None
    stop_seconds: float = 0.0  # how long a stopped execution stays Stopping


_account = _Account()


@dataclass
class StepRecord:
    """One step of an execution, as ListPipelineExecutionSteps reports it."""

    name: str
    step_type: str
    status: str
    start_time: datetime
    end_time: datetime | None = None
    failure_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "StepName": self.name,
            "StepDisplayName": self.name,
            "StepStatus": self.status,
            "StartTime": self.start_time.isoformat(),
            "AttemptCount": self.attempts,
            "Metadata": self.metadata,
        }
        if self.end_time is not None:
            item["EndTime"] = self.end_time.isoformat()
        if self.failure_reason:
            item["FailureReason"] = self.failure_reason
        return item


_patch_lock = threading.Lock()
_patched = False
_retry_callbacks: list[Callable[[str], None]] = []


def on_retry(callback: Callable[[str], None]) -> Callable[[], None]:
    """Call ``callback(execution_arn)`` after each accepted RetryPipelineExecution; returns the undo."""
    _retry_callbacks.append(callback)
    return lambda: _retry_callbacks.remove(callback)


def _install_fidelity() -> None:
    """Patch moto's backends once per process (see the module docstring)."""
    global _patched
    with _patch_lock:
        if not _patched:
            _patch_sagemaker()
            _patch_s3_events()
            _patch_sqs()
            _patch_events()
            _patched = True


def _pipeline_named(pipelines: dict[str, Any], pipeline_name: str) -> Any:
    try:
        return pipelines[pipeline_name]
    except KeyError:
        raise ResourceNotFound(message=f"Pipeline '{pipeline_name}' does not exist.") from None


def _patch_sagemaker() -> None:
    backend_cls = sm_models.SageMakerModelBackend
    original_start = backend_cls.start_pipeline_execution
    original_describe = backend_cls.describe_pipeline_execution
    original_list = backend_cls.list_pipeline_executions
    original_delete = backend_cls.delete_pipeline
    start_lock = threading.Lock()

    def start_pipeline_execution(
        self: Any,
        pipeline_name: str,
        pipeline_execution_display_name: str,
        pipeline_parameters: list[dict[str, Any]],
        pipeline_execution_description: str,
        parallelism_configuration: dict[str, int],
        client_request_token: str,
    ) -> dict[str, str]:
        with start_lock:  # moto's server is threaded: check-then-create must be atomic
            pipeline = _pipeline_named(self.pipelines, pipeline_name)
            if client_request_token:
                for arn, execution in pipeline.pipeline_executions.items():
                    if execution.client_request_token == client_request_token:
                        if _account.on_start is not None:
                            _account.on_start(arn, True)
                        return {"PipelineExecutionArn": arn}
            limit = _account.max_concurrent_executions
            if limit is not None:
                used = _executing(self)
                if used >= limit:
                    _account.refused_starts += 1
                    raise ResourceLimitExceeded(EXECUTION_LIMIT_MESSAGE.format(limit=limit, used=used))
            result: dict[str, str] = original_start(
                self,
                pipeline_name,
                pipeline_execution_display_name,
                pipeline_parameters,
                pipeline_execution_description,
                parallelism_configuration,
                client_request_token,
            )
            execution = pipeline.pipeline_executions[result["PipelineExecutionArn"]]
            execution.pipeline_execution_status = "Executing"
            execution.steps = []
            _account.most_executing = max(_account.most_executing, _executing(self))
            if _account.on_start is not None:
                _account.on_start(result["PipelineExecutionArn"], False)
            return result

    def describe_pipeline_execution(self: Any, pipeline_execution_arn: str) -> dict[str, Any]:
        _settle(_find_execution(self, pipeline_execution_arn))
        result: dict[str, Any] = original_describe(self, pipeline_execution_arn)
        reason = _find_execution(self, pipeline_execution_arn).pipeline_execution_failure_reason
        result.pop("FailureReason", None)
        if reason:
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
        execution = _find_execution(self, pipeline_execution_arn)
        steps: list[StepRecord] = getattr(execution, "steps", [])
        return {"PipelineExecutionSteps": [s.to_api() for s in reversed(steps)]}

    def list_steps_response(self: Any) -> ActionResult:
        arn = self._get_param("PipelineExecutionArn")
        return ActionResult(self.sagemaker_backend.list_pipeline_execution_steps(arn))

    def retry_pipeline_execution(
        self: Any, pipeline_execution_arn: str, client_request_token: str | None
    ) -> dict[str, str]:
        with start_lock:
            execution = _find_execution(self, pipeline_execution_arn)
            tokens: set[str] = getattr(execution, "retry_tokens", set())
            if client_request_token and client_request_token in tokens:
                return {"PipelineExecutionArn": pipeline_execution_arn}
            status = execution.pipeline_execution_status
            if status != "Failed":
                raise ValidationError(
                    message=f"Pipeline execution {pipeline_execution_arn} is {status}; "
                    "only a Failed one can be retried"
                )
            execution.retry_tokens = tokens | ({client_request_token} if client_request_token else set())
            execution.pipeline_execution_status = "Executing"
            execution.pipeline_execution_failure_reason = None
            execution.last_modified_time = datetime.now(UTC)
        for callback in list(_retry_callbacks):
            callback(pipeline_execution_arn)
        return {"PipelineExecutionArn": pipeline_execution_arn}

    def retry_response(self: Any) -> ActionResult:
        arn = self._get_param("PipelineExecutionArn")
        return ActionResult(
            self.sagemaker_backend.retry_pipeline_execution(arn, self._get_param("ClientRequestToken"))
        )

    def stop_pipeline_execution(self: Any, pipeline_execution_arn: str) -> dict[str, str]:
        with start_lock:
            execution = _find_execution(self, pipeline_execution_arn)
            status = _settle(execution)
            if status == "Executing":
                execution.pipeline_execution_status = "Stopping"
                execution.stops_at = time.monotonic() + _account.stop_seconds
                execution.last_modified_time = datetime.now(UTC)
            elif status != "Stopping":
                raise ValidationError(
                    message=f"Pipeline execution {pipeline_execution_arn} is {status}; "
                    "only an Executing one can be stopped"
                )
        return {"PipelineExecutionArn": pipeline_execution_arn}

    def stop_response(self: Any) -> ActionResult:
        arn = self._get_param("PipelineExecutionArn")
        return ActionResult(self.sagemaker_backend.stop_pipeline_execution(arn))

    def delete_pipeline(self: Any, pipeline_name: str) -> str:
        with start_lock:
            pipeline = _pipeline_named(self.pipelines, pipeline_name)
            running = sorted(
                arn
                for arn, execution in pipeline.pipeline_executions.items()
                if _settle(execution) in ("Executing", "Stopping")
            )
            if running:
                raise ConflictException(
                    f"Pipeline {pipeline_name} has running executions ({', '.join(running)}): stop them "
                    "with StopPipelineExecution before deleting it"
                )
            arn: str = original_delete(self, pipeline_name)
            return arn

    # Patching third-party classes is the point here; mypy cannot follow it.
    for name, patch in {
        "retry_pipeline_execution": retry_pipeline_execution,
        "stop_pipeline_execution": stop_pipeline_execution,
        "delete_pipeline": delete_pipeline,
        "start_pipeline_execution": start_pipeline_execution,
        "describe_pipeline_execution": describe_pipeline_execution,
        "list_pipeline_executions": list_pipeline_executions,
        "list_pipeline_execution_steps": list_pipeline_execution_steps,
    }.items():
        setattr(backend_cls, name, patch)
    setattr(sm_responses.SageMakerResponse, "list_pipeline_execution_steps", list_steps_response)  # noqa: B010
    setattr(sm_responses.SageMakerResponse, "retry_pipeline_execution", retry_response)  # noqa: B010
    setattr(sm_responses.SageMakerResponse, "stop_pipeline_execution", stop_response)  # noqa: B010
    # moto's models look the pipeline up by this module-level name (describe, update, delete, start).
    setattr(sm_models, "get_pipeline_from_name", _pipeline_named)  # noqa: B010


# S3's EventBridge "reason" for each ObjectCreated event (the API that created the object).
_CREATED_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}


def _patch_s3_events() -> None:
    original = s3_notifications._get_s3_event
    sequence = itertools.count(1)
    sequence_lock = threading.Lock()

    def next_sequencer() -> str:
        with sequence_lock:
            return f"{next(sequence):016X}"

    def get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event: dict[str, Any] = original(event_name, bucket, key, notification_id)
        obj = event["Records"][0]["s3"]["object"]
        obj["sequencer"] = next_sequencer()
        if key.version_id not in (None, "null"):
            obj["versionId"] = key.version_id
        return event

    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        from moto.events.models import events_backends

        obj: dict[str, Any] = {"key": key.name, "size": key.size, "etag": key.etag.replace('"', "")}
        if key.version_id is not None:
            obj["version-id"] = key.version_id
        obj["sequencer"] = next_sequencer()
        event: Any = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": s3_notifications._detail_type(event_name),
            "source": "aws.s3",
            "account": account_id,
            "time": time.time(),  # moto writes it as ISO 8601 when it delivers to SQS
            "region": bucket.region_name,
            "resources": [bucket.arn],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket.name},
                "object": obj,
                "request-id": uuid.uuid4().hex[:16].upper(),
                "requester": account_id,
                "source-ip-address": "127.0.0.1",
                "reason": _CREATED_REASONS.get(event_name, event_name.split(":")[1]),
            },
        }
        default_bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
        for rule in list(default_bus.rules.values()) if default_bus else []:
            if rule.state == "ENABLED":
                rule.send_to_targets(event, transform_input=False)

    setattr(s3_notifications, "_get_s3_event", get_s3_event)  # noqa: B010
    setattr(s3_notifications, "_send_event_bridge_message", send_event_bridge_message)  # noqa: B010

    original_get_notification = s3_responses.S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None:
            return original_get_notification(self)
        serialized = self.serialized

        def with_eventbridge(result: ActionResult) -> Any:
            return serialized(ActionResult({**dict(result.result), "EventBridgeConfiguration": {}}))  # type: ignore[call-overload]

        self.serialized = with_eventbridge  # this request's response object only
        return original_get_notification(self)

    setattr(s3_responses.S3Response, "get_bucket_notification", get_bucket_notification)  # noqa: B010


def _patch_sqs() -> None:
    backend_cls = sqs_models.SQSBackend
    lock = threading.RLock()
    original_receive = backend_cls.receive_message

    def receive_message(
        self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any, **kwargs: Any
    ) -> Any:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with lock:
                result = original_receive(self, queue_name, count, 0, *args, **kwargs)
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            self.get_queue(queue_name).wait_for_messages(min(1.0, remaining))

    def serialised(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(self, *args, **kwargs)

        return call

    setattr(backend_cls, "receive_message", receive_message)  # noqa: B010
    for name in (
        "send_message",
        "send_message_batch",
        "delete_message",
        "delete_message_batch",
        "change_message_visibility",
        "change_message_visibility_batch",
        "purge_queue",
        "get_queue_attributes",
    ):
        setattr(backend_cls, name, serialised(getattr(backend_cls, name)))


class _PlainText(str):
    """What an input transformer made of a template that is not JSON: delivered as this text."""


def _patch_events() -> None:
    parser = events_utils.EventTemplateParser
    original_parse = parser.parse
    original_send = events_models.Rule._send_to_sqs_queue

    def parse(input_template: str, input_paths_map: dict[str, Any], event: Any) -> Any:
        try:
            return original_parse(input_template, input_paths_map, event)
        except json.JSONDecodeError:
            text = input_template
            for name, path in (input_paths_map or {}).items():
                matches = jsonpath(path).find(event)
                if matches:
                    text = text.replace(f"<{name}>", parser._stringify(matches[0].value))
            return _PlainText(text)

    def send_to_sqs_queue(self: Any, resource_id: str, event: Any, group_id: str | None = None) -> None:
        if not isinstance(event, _PlainText):
            original_send(self, resource_id, event, group_id)
            return
        backend = sqs_models.sqs_backends[self.account_id][self.region_name]
        backend.send_message(queue_name=resource_id, message_body=str(event), group_id=group_id)

    setattr(parser, "parse", staticmethod(parse))  # noqa: B010
    setattr(events_models.Rule, "_send_to_sqs_queue", send_to_sqs_queue)  # noqa: B010


def _executing(backend: Any) -> int:
    """Executions of the account (this backend) in status Executing."""
    return sum(
        1
        for pipeline in backend.pipelines.values()
        for execution in pipeline.pipeline_executions.values()
        if execution.pipeline_execution_status == "Executing"
    )


def _settle(execution: Any) -> str:
    """The execution's status, a stop that has run its course now ``Stopped``."""
    if execution.pipeline_execution_status == "Stopping" and time.monotonic() >= execution.stops_at:
        execution.pipeline_execution_status = "Stopped"
        execution.last_modified_time = datetime.now(UTC)
    return str(execution.pipeline_execution_status)


def _find_execution(backend: Any, execution_arn: str) -> Any:
    for pipeline in backend.pipelines.values():
        if execution_arn in pipeline.pipeline_executions:
            return pipeline.pipeline_executions[execution_arn]
    raise ValidationError(message=f"Could not find execution {execution_arn}")


class Emulator:
    """moto's server on ``127.0.0.1`` and a free port, started and stopped by its owner.

    Use it as a context manager::

        with Emulator() as emu:
            os.environ.update(emu.environ())
    """

    def __init__(self, region: str = DEFAULT_REGION, port: int = 0) -> None:
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._endpoint: str | None = None

    @property
    def endpoint_url(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return self._endpoint

    def start(self) -> Emulator:
        _install_fidelity()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._endpoint is not None:
            self._server.stop()
            self._endpoint = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every resource (moto's reset API), keeping the server and its patches."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 - the emulator's own http URL

    def set_quotas(self, quotas: Quotas | None) -> None:
        """Enforce ``quotas.max_concurrent_executions`` on StartPipelineExecution (None: no quota).

        The quota is process-wide, as moto's state is; the processing-instance quota is the runner's.
        """
        _account.max_concurrent_executions = quotas.max_concurrent_executions if quotas else None
        _account.most_executing = 0

    def set_stop_seconds(self, seconds: float) -> None:
        """How long an execution stopped through the API stays ``Stopping`` (process-wide; 0 by default)."""
        _account.stop_seconds = seconds

    def set_start_listener(self, listener: Callable[[str, bool], None] | None) -> None:
        """Call ``listener(execution_arn, replayed)`` for every start answered (process-wide)."""
        _account.on_start = listener

    @property
    def most_executing(self) -> int:
        """The most executions Executing at once (counted at each start) in this process."""
        return _account.most_executing

    @property
    def refused_starts(self) -> int:
        """How many starts the execution quota refused in this process."""
        return _account.refused_starts

    def executing(self) -> int:
        """Executions in status Executing (what the execution quota counts)."""
        return _executing(self._backend())

    def environ(self) -> dict[str, str]:
        """The standard variables that point boto3 (and the SageMaker SDK) at this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **CREDENTIALS,
        }

    # -- what only the local pipeline runner may do: record progress the API cannot set ----------

    def _backend(self) -> Any:
        return sm_models.sagemaker_backends[ACCOUNT_ID][self.region]

    def record_execution(self, execution_arn: str, status: str, failure_reason: str | None = None) -> None:
        """Set an execution's status (Executing, Succeeded, Failed, Stopped) and failure reason."""
        execution = _find_execution(self._backend(), execution_arn)
        execution.pipeline_execution_status = status
        execution.pipeline_execution_failure_reason = failure_reason
        execution.last_modified_time = datetime.now(UTC)

    def record_step(self, execution_arn: str, step: StepRecord) -> None:
        """Add or replace (by name) a step of an execution."""
        execution = _find_execution(self._backend(), execution_arn)
        steps: list[StepRecord] = getattr(execution, "steps", [])
        execution.steps = [s for s in steps if s.name != step.name] + [step]


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


__all__ = [
    "ACCOUNT_ID",
    "CREDENTIALS",
    "DEFAULT_REGION",
    "Emulator",
    "Quotas",
    "ResourceLimitExceeded",
    "StepRecord",
    "environment",
    "on_retry",
]
