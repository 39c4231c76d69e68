"""Hardening fixtures: the real trigger against the emulator, faults injected where it cannot fail on cue.

``stack`` gives the trigger configured from events/env.json, its pipeline and a dead-letter queue in
the emulator, and a fault injector in front of SageMaker: a ``before-send`` hook on the trigger's own
SageMaker client that, per StartPipelineExecution attempt, lets the request through or answers with a
crafted error, raises a timeout, or lets it through and then loses the answer. ``lambda_async`` does what
Lambda's asynchronous invocation does with a failing event: retries it, then writes Lambda's on-failure
record to the dead-letter queue.

After every test using ``stack``, ``check_promise`` asserts that each upload the test announced (through
``stack.event``) ran exactly once or waits in the dead-letter queue, and counts it; the session writes
the counts to build/hardening-figures.json (``faults``, ``redrive``) for the README's table.
Autouse, for every test in this directory: ``no_backoff`` (botocore retries without their sleeps).
"""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.retries.standard import ExponentialBackoff
from trigger import config as trigger_config
from trigger import handler
from trigger.errors import TriggerError, UnsupportedEvent
from trigger.events import ObjectEvent, normalise

from local.emulator import Emulator
from redrive.replay import LambdaContext, in_process
from redrive.run import Report, redrive

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "example-data-bucket"
ROLE_ARN = "arn:aws:iam::123456789012:role/pipeline-execution"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:TriggerFunction"
MAX_RETRY_ATTEMPTS = 2  # Lambda's default for asynchronous invocation (the template's EventInvokeConfig)
FIGURES = ROOT / "build" / "hardening-figures.json"
FIGURES_RUN: defaultdict[str, Counter[str]] = defaultdict(Counter)  # suite -> counts


def trigger_env() -> dict[str, str]:
    env: dict[str, str] = json.loads((ROOT / "events" / "env.json").read_text(encoding="utf-8"))[
        "TriggerFunction"
    ]
    return env


def pipeline_definition() -> str:
    parameters = [
        {"Name": "InputDataUrl", "Type": "String", "DefaultValue": f"s3://{BUCKET}/raw/"},
        {"Name": "OutputDataUrl", "Type": "String", "DefaultValue": f"s3://{BUCKET}/clean/"},
    ]
    return json.dumps({"Version": "2020-12-01", "Parameters": parameters, "Steps": []})


def s3_record(key: str, *, version: str = "v1", bucket: str = BUCKET) -> dict[str, Any]:
    """One S3 ObjectCreated record, key encoded as S3 encodes it in notifications."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-26T12:00:00.000Z",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": quote_plus(key, safe="/"), "size": 10, "eTag": "e" * 32, "versionId": version},
        },
    }


def s3_event(*keys: str) -> dict[str, Any]:
    return {"Records": [s3_record(key) for key in keys]}


# -- faults ----------------------------------------------------------------------------------------


class _Body(io.BytesIO):
    """A canned HTTP body, readable both ways botocore reads one (stream() and read())."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def http_response(request: AWSPreparedRequest, status: int, body: object, **headers: str) -> AWSResponse:
    raw = json.dumps(body).encode()
    all_headers = {"Content-Type": "application/x-amz-json-1.1", "Content-Length": str(len(raw)), **headers}
    return AWSResponse(request.url, status, all_headers, _Body(raw))


@dataclass(frozen=True)
class Reply:
    """Answer the attempt with this AWS error instead of reaching the emulator."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Raise:
    """Fail the attempt with this exception (a timeout, a refused connection) before it is sent."""

    error: Callable[..., Exception]


@dataclass(frozen=True)
class LoseAnswer:
    """Let the attempt reach the emulator (the execution starts), then lose the answer."""

    error: Callable[..., Exception]


Fault = Reply | Raise | LoseAnswer
Rule = Callable[[str, int], Fault | None]  # (input URL, attempt number so far) -> fault or None


@dataclass
class Attempt:
    input_url: str
    fault: Fault | None


@dataclass
class AsyncResult:
    """What Lambda's asynchronous invocation made of one event."""

    invocations: list[dict[str, Any] | TriggerError] = field(default_factory=list)
    dead_letter: dict[str, Any] | None = None

    @property
    def succeeded(self) -> bool:
        return bool(self.invocations) and not isinstance(self.invocations[-1], TriggerError)


@dataclass
class Stack:
    """The trigger, its pipeline and dead-letter queue in the emulator, and faults in front of SageMaker."""

    pipeline_name: str
    dlq_url: str
    logs: io.StringIO
    rule: Rule = lambda url, n: None  # the default: no fault
    attempts: list[Attempt] = field(default_factory=list)
    uploads: set[str] = field(default_factory=set)  # InputDataUrl of every upload a test announced
    failed_invocations: int = 0

    # -- faults, for ``stack.rule = lambda input_url, attempt: ...``
    @staticmethod
    def reply(status: int, code: str, message: str) -> Fault:
        """The attempt is answered with this AWS error (it never reaches the emulator)."""
        return Reply(status, code, message)

    @staticmethod
    def fail(error: Callable[..., Exception]) -> Fault:
        """The attempt fails with ``error(endpoint_url=...)`` before it is sent (ConnectTimeoutError...)."""
        return Raise(error)

    @staticmethod
    def lose_answer(error: Callable[..., Exception]) -> Fault:
        """The attempt reaches the emulator (the execution starts), then its answer is lost."""
        return LoseAnswer(error)

    def event(self, *keys: str) -> dict[str, Any]:
        """An S3 notification with one ObjectCreated record per key (uploads that must run once)."""
        self.uploads.update(f"s3://{BUCKET}/{key}" for key in keys)
        return s3_event(*keys)

    # -- the world
    def create_pipeline(self) -> None:
        boto3.client("sagemaker").create_pipeline(
            PipelineName=self.pipeline_name, PipelineDefinition=pipeline_definition(), RoleArn=ROLE_ARN
        )

    def pipeline_exists(self) -> bool:
        sm = boto3.client("sagemaker")
        try:
            sm.describe_pipeline(PipelineName=self.pipeline_name)
        except sm.exceptions.ResourceNotFound:
            return False
        return True

    def delete_pipeline(self) -> None:
        boto3.client("sagemaker").delete_pipeline(PipelineName=self.pipeline_name)

    def executions(self) -> dict[str, str]:
        """Every execution of the pipeline: ARN -> its InputDataUrl (none while the pipeline is missing)."""
        sm = boto3.client("sagemaker")
        found: dict[str, str] = {}
        if not self.pipeline_exists():
            return found
        pages = sm.get_paginator("list_pipeline_executions").paginate(PipelineName=self.pipeline_name)
        for page in pages:
            for summary in page["PipelineExecutionSummaries"]:
                arn = summary["PipelineExecutionArn"]
                params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
                found[arn] = {p["Name"]: p["Value"] for p in params["PipelineParameters"]}["InputDataUrl"]
        return found

    def attempts_for(self, key: str) -> int:
        return sum(1 for a in self.attempts if a.input_url == f"s3://{BUCKET}/{key}")

    # -- the trigger, once or as Lambda's asynchronous invocation does it
    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            return handler.lambda_handler(event, LambdaContext(aws_request_id=str(uuid.uuid4())))  # type: ignore[arg-type]
        except TriggerError:
            self.failed_invocations += 1
            raise

    def lambda_async(self, event: dict[str, Any], *, retries: int = MAX_RETRY_ATTEMPTS) -> AsyncResult:
        """Invoke, retry up to ``retries`` times on an error, then send Lambda's failure record to the DLQ."""
        result = AsyncResult()
        request_id = str(uuid.uuid4())
        for _ in range(1 + retries):
            try:
                result.invocations.append(self.invoke(json.loads(json.dumps(event))))
                return result
            except TriggerError as err:
                result.invocations.append(err)
        error = result.invocations[-1]
        result.dead_letter = failure_record(event, error, request_id, len(result.invocations))
        boto3.client("sqs").send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(result.dead_letter))
        return result

    # -- the dead-letter queue
    def send_to_dlq(self, body: str, **attributes: str) -> None:
        extra = {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()}
        kwargs: dict[str, Any] = {"QueueUrl": self.dlq_url, "MessageBody": body}
        if extra:
            kwargs["MessageAttributes"] = extra
        boto3.client("sqs").send_message(**kwargs)

    def dlq_bodies(self) -> list[str]:
        """What the queue holds (visible messages), left in place."""
        sqs = boto3.client("sqs")
        bodies: list[str] = []
        handles: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30)
            messages = got.get("Messages", [])
            if not messages:
                break
            bodies += [m["Body"] for m in messages]
            handles += [m["ReceiptHandle"] for m in messages]
        for receipt in handles:
            sqs.change_message_visibility(QueueUrl=self.dlq_url, ReceiptHandle=receipt, VisibilityTimeout=0)
        return bodies

    def lambda_client(self, *, deployed: bool = True) -> Any:
        """A Lambda client whose Invoke runs the trigger handler here and answers as Lambda does.

        (The emulator cannot run Lambda functions without Docker.) A raised error becomes HTTP 200 with
        ``X-Amz-Function-Error: Unhandled`` and Lambda's error document; ``deployed=False`` answers 404.
        """
        client = boto3.client("lambda")

        def invoke(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
            name = request.url.split("/functions/")[1].split("/")[0]
            if not deployed:
                body = {"Type": "User", "Message": f"Function not found: {FUNCTION_ARN[:-15]}{name}"}
                return http_response(request, 404, body, **{"x-amzn-ErrorType": "ResourceNotFoundException"})
            try:
                result: object = self.invoke(json.loads(request.body))
            except TriggerError as err:
                error = {"errorMessage": str(err), "errorType": type(err).__name__, "stackTrace": []}
                return http_response(request, 200, error, **{"X-Amz-Function-Error": "Unhandled"})
            return http_response(request, 200, result, **{"X-Amz-Executed-Version": "$LATEST"})

        client.meta.events.register("before-send.lambda.Invoke", invoke)
        return client

    def redrive(self, queue_url: str | None = None, **options: Any) -> Report:
        """``python -m redrive --local`` as a function call: the trigger in-process, the emulator's SQS."""
        options.setdefault("wait_seconds", 0)
        return redrive(
            queue_url or self.dlq_url,
            in_process(),
            sqs=boto3.client("sqs"),
            sagemaker=boto3.client("sagemaker"),
            **options,
        )

    # -- the fault hook
    def before_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        params = json.loads(request.body)
        url = {p["Name"]: p["Value"] for p in params["PipelineParameters"]}["InputDataUrl"]
        fault = self.rule(url, sum(1 for a in self.attempts if a.input_url == url) + 1)
        self.attempts.append(Attempt(url, fault))
        match fault:
            case None:
                return None
            case Reply(status, code, message):
                body = {"__type": code, "message": message}
                return http_response(request, status, body, **{"x-amzn-ErrorType": code})
            case Raise(error):
                raise error(endpoint_url=request.url)
            case LoseAnswer(error):
                boto3.client("sagemaker").start_pipeline_execution(**params)  # it reaches SageMaker...
                raise error(endpoint_url=request.url)  # ...but the answer never comes back


def failure_record(event: dict[str, Any], error: Exception, request_id: str, attempts: int) -> dict[str, Any]:
    """Lambda's on-failure invocation record (documented format) for an event that failed every attempt."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{FUNCTION_ARN}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": []},
    }


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retry mode, without its random sleeps (up to 20 s) between attempts."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def stack(aws: Emulator, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Given the trigger configured from events/env.json, its pipeline and its DLQ in a clean emulator."""
    env = trigger_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    trigger_config.settings.cache_clear()
    handler.sagemaker_client.cache_clear()
    dlq_url = boto3.client("sqs").create_queue(QueueName="trigger-dlq")["QueueUrl"]
    logs = io.StringIO()
    stream_handler = handler.logger.registered_handler
    previous = stream_handler.setStream(logs)  # type: ignore[attr-defined]
    harness = Stack(env["PIPELINE_NAME"], dlq_url, logs)
    harness.create_pipeline()
    handler.sagemaker_client().meta.events.register(
        "before-send.sagemaker.StartPipelineExecution", harness.before_send
    )
    yield harness
    stream_handler.setStream(previous)  # type: ignore[attr-defined]
    trigger_config.settings.cache_clear()
    handler.sagemaker_client.cache_clear()
    check_promise(harness, FIGURES_RUN[request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")])


def check_promise(stack: Stack, figures: Counter[str]) -> None:
    """After every test: each upload it announced ran exactly once, or sits in the dead-letter queue.

    That is the promise to a user (nothing lost, nothing run twice); checked here once for all the
    tests, and counted for the README's table.
    """
    runs = Counter(stack.executions().values())
    waiting = {url for body in stack.dlq_bodies() for url in dead_lettered_urls(body)}
    lost = stack.uploads - set(runs) - waiting
    duplicated = sum(count - 1 for count in runs.values() if count > 1)
    figures["tests"] += 1
    figures["uploads"] += len(stack.uploads)
    figures["executions_expected"] += len(stack.uploads - waiting)
    figures["executions_started"] += sum(runs[url] for url in stack.uploads)
    figures["in_dlq_with_reason"] += len(stack.uploads & waiting - set(runs))
    figures["lost"] += len(lost)
    figures["duplicated"] += duplicated
    figures["faults_injected"] += sum(1 for a in stack.attempts if a.fault is not None)
    figures["failed_invocations"] += stack.failed_invocations
    assert not lost, f"uploads neither run nor dead-lettered: {sorted(lost)}"
    assert not duplicated, f"uploads run more than once: {[u for u, n in runs.items() if n > 1]}"


def dead_lettered_urls(body: str) -> set[str]:
    """The InputDataUrls (object mode) of the uploads a dead-letter message holds."""
    try:
        message = json.loads(body)
        event = message.get("requestPayload", message) if isinstance(message, dict) else message
        items = normalise(event)
    except (ValueError, UnsupportedEvent):
        return set()
    return {f"s3://{item.bucket}/{item.key}" for item in items if isinstance(item, ObjectEvent)}


@pytest.fixture(scope="session", autouse=True)
def figures() -> Iterator[None]:
    """Writes the suites' counts into build/hardening-figures.json when the session ends."""
    yield
    if not FIGURES_RUN:
        return
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(FIGURES.read_text(encoding="utf-8")) if FIGURES.exists() else {}
    for suite, counts in FIGURES_RUN.items():
        data[suite] = dict(sorted(counts.items()))
    FIGURES.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
