"""The hardening harness: the real trigger on the upload queue's path in the emulator, with injected faults.

``Stack`` is the data bucket (versioned) delivering to the upload queue (S3 -> an EventBridge rule on
the routed prefixes of routes.yaml -> SQS, as the template wires it), the queue's redrive policy to the
dead-letter queue with the template's own ``maxReceiveCount``, the trigger configured from
events/env.json, and its pipeline. Uploads are real objects (``stack.upload``); ``stack.deliver()`` runs
the local runtime's event source mapping poller (``local.delivery``, configured from the template's
``Type: SQS`` event) with the trigger's handler in this process: it receives batches of up to 10,
invokes the handler, deletes what it did not report as failed; SQS redelivers the rest when the
visibility the trigger set runs out, and moves a message to the dead-letter queue after
``maxReceiveCount`` receives. ``deliver`` waits out each visibility at once (time is not what these
tests are about; the waits the trigger chose are recorded in ``stack.postponed``).

Faults the emulator cannot produce on cue are injected in front of it by ``before-send`` hooks on the
trigger's own clients (``stack.rule`` for StartPipelineExecution, ``stack.s3_rule`` for CopyObject),
so botocore's real retry logic meets them.

``check_promise`` asserts that each upload the emulator notified ran exactly once on a snapshot holding
exactly its bytes, or was skipped with a logged reason, or waits in the dead-letter queue; and counts it
for build/hardening-figures.json (one key per test module: ``trigger_faults``, ``ops_redrive``).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from cfnlint.decode import cfn_yaml
from trigger import config as trigger_config
from trigger import handler
from trigger.config import settings
from trigger.errors import UnsupportedEvent
from trigger.events import ObjectEvent, normalise
from trigger.routing import Dataset, route

from contract.routes import event_pattern, loads
from local.delivery import Delivery as Poller
from local.lambdas import Invocation
from local.stack import EventSource
from tests.support.lambda_context import LambdaContext
from tests.support.project import ROOT, routes_file, trigger_env
from tests.support.trigger import ROLE_ARN, pipeline_definition

BUCKET = "example-data-bucket"
FIGURES = ROOT / "build" / "hardening-figures.json"
TEMPLATE = cfn_yaml.load(str(ROOT / "template.yaml"))["Resources"]
TEMPLATE_QUEUE = TEMPLATE["UploadQueue"]["Properties"]
UPLOADS = TEMPLATE["TriggerFunction"]["Properties"]["Events"]["Uploads"]["Properties"]  # its Type: SQS event
MAX_RECEIVE_COUNT = int(TEMPLATE_QUEUE["RedrivePolicy"]["maxReceiveCount"])


# -- faults ----------------------------------------------------------------------------------------


class _Body(io.BytesIO):
    """A canned HTTP body, readable both ways botocore reads one (stream() and read())."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def http_response(
    request: AWSPreparedRequest, status: int, body: bytes, content_type: str, **headers: str
) -> AWSResponse:
    all_headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **headers}
    return AWSResponse(request.url, status, all_headers, _Body(body))


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
Rule = Callable[[str, int], Fault | None]  # (raw key, attempt number so far) -> fault or None


@dataclass
class Attempt:
    key: str
    fault: Fault | None


@dataclass
class Delivery:
    """What the event source mapping did in one ``deliver()``: invocations and their batch failures."""

    invocations: int = 0
    failures: list[str] = field(default_factory=list)  # message IDs reported failed, in order


@dataclass
class Stack:
    """The bucket, the upload queue, the dead-letter queue, the trigger and its pipeline, and faults."""

    pipeline_name: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    logs: io.StringIO
    rule: Rule = lambda key, n: None  # StartPipelineExecution faults; the default: none
    s3_rule: Rule = lambda key, n: None  # CopyObject faults (by source key)
    attempts: list[Attempt] = field(default_factory=list)
    copy_attempts: list[Attempt] = field(default_factory=list)
    uploads: dict[str, tuple[str, str]] = field(default_factory=dict)  # snapshot URL -> (key, version)
    postponed: list[tuple[str, int]] = field(default_factory=list)  # (message ID, visibility set)
    failed_invocations: int = 0
    message_ids: dict[str, str] = field(default_factory=dict)  # receipt handle -> message ID
    bodies: list[str] = field(default_factory=list)  # every distinct upload-queue message body seen

    # -- faults, for ``stack.rule = lambda key, attempt: ...``
    @staticmethod
    def reply(status: int, code: str, message: str) -> Fault:
        return Reply(status, code, message)

    @staticmethod
    def fail(error: Callable[..., Exception]) -> Fault:
        return Raise(error)

    @staticmethod
    def lose_answer(error: Callable[..., Exception]) -> Fault:
        return LoseAnswer(error)

    # -- the world
    def upload(self, *keys: str, body: bytes | None = None) -> list[str]:
        """Upload each key (its own bytes unless ``body``); S3 notifies the upload queue. Returns versions."""
        s3 = boto3.client("s3")
        versions = []
        for key in keys:
            content = body if body is not None else f"{key},{uuid.uuid4()}\n".encode()
            versions.append(str(s3.put_object(Bucket=BUCKET, Key=key, Body=content)["VersionId"]))
        return versions

    def create_pipeline(self) -> None:
        boto3.client("sagemaker").create_pipeline(
            PipelineName=self.pipeline_name, PipelineDefinition=pipeline_definition(), RoleArn=ROLE_ARN
        )

    def delete_pipeline(self) -> None:
        boto3.client("sagemaker").delete_pipeline(PipelineName=self.pipeline_name)

    def executions(self) -> dict[str, str]:
        """Every execution of the pipeline: ARN -> its InputDataUrl (none while the pipeline is missing)."""
        sm = boto3.client("sagemaker")
        try:
            sm.describe_pipeline(PipelineName=self.pipeline_name)
        except sm.exceptions.ResourceNotFound:
            return {}
        found: dict[str, str] = {}
        pages = sm.get_paginator("list_pipeline_executions").paginate(PipelineName=self.pipeline_name)
        for page in pages:
            for summary in page["PipelineExecutionSummaries"]:
                arn = summary["PipelineExecutionArn"]
                params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
                found[arn] = {p["Name"]: p["Value"] for p in params["PipelineParameters"]}["InputDataUrl"]
        return found

    def executed_keys(self) -> list[str]:
        """The raw key of every execution's upload (sorted), through the snapshot URL it ran on."""
        return sorted(self.uploads[url][0] for url in self.executions().values())

    def attempts_for(self, key: str) -> int:
        return sum(1 for a in self.attempts if a.key == key)

    def skipped(self) -> list[tuple[str, str]]:
        """(key, reason) of every logged skip that names a key."""
        return [
            (r["key"], r["reason"])
            for r in self.log_records()
            if r["message"] == "record skipped" and r.get("key")
        ]

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().split("\n") if line.strip()]

    # -- the event source mapping
    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = handler.lambda_handler(
            event,
            LambdaContext(aws_request_id=str(uuid.uuid4())),  # type: ignore[arg-type]
        )
        return result

    def deliver(self, *, max_receives: int | None = None, wait_out_backoff: bool = True) -> Delivery:
        """Run the event source mapping's poller (``local.delivery``) one batch at a time until the queue
        has nothing visible.

        ``max_receives``: stop after that many batches. ``wait_out_backoff=False``: leave postponed
        messages hidden (as they would be for their backoff) and return.
        """
        sqs = boto3.client("sqs")
        delivery = Delivery()
        outcomes: list[tuple[str, dict[str, Any]]] = []
        mapping = upload_event_source(self.queue_url, self.queue_arn)
        poller = Poller(
            mapping=mapping,
            functions=[InProcessTrigger(self)],
            sqs=sqs,
            region="us-east-1",
            notify=lambda kind, details: outcomes.append((kind, details)),
        )
        while max_receives is None or delivery.invocations < max_receives:
            messages = poll_once(poller)
            if not messages:
                break
            kind, details = outcomes[-1]
            assert kind == "invoked", f"the poller could not hand over the batch: {kind} {details}"
            failed = [f["itemIdentifier"] for f in details["result"]["batchItemFailures"]]
            delivery.invocations += 1
            delivery.failures += failed
            if failed:
                self.failed_invocations += 1
                if not wait_out_backoff:
                    break
                for message in messages:  # the backoff runs out: SQS makes them visible again
                    if message["MessageId"] in failed:
                        sqs.change_message_visibility(
                            QueueUrl=self.queue_url,
                            ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=0,
                        )
        return delivery

    def send(self, body: str) -> None:
        """A message on the upload queue, as S3 (a duplicate delivery) or SQS's redrive would send it."""
        boto3.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=body)

    def redrive(self) -> int:
        """What ``StartMessageMoveTask`` does (moto lacks it): every dead-lettered message back, as it is."""
        sqs = boto3.client("sqs")
        moved = 0
        while True:
            messages = sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return moved
            for message in messages:
                self.send(message["Body"])
                sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1

    def _remember(self, body: str) -> None:
        if body not in self.bodies:
            self.bodies.append(body)
        for dataset in datasets(body):
            version = dataset.source.version_id or ""
            self.uploads.setdefault(dataset.input_url, (dataset.source.key, version))

    # -- the dead-letter queue
    def dlq_bodies(self) -> list[str]:
        """What the dead-letter queue holds (visible messages), left in place."""
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

    # -- the fault hooks
    def before_start(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        params = json.loads(request.body)
        url = {p["Name"]: p["Value"] for p in params["PipelineParameters"]}["InputDataUrl"]
        key = self.uploads.get(url, (url, ""))[0]
        fault = self.rule(key, self.attempts_for(key) + 1)
        self.attempts.append(Attempt(key, fault))
        match fault:
            case None:
                return None
            case Reply(status, code, message):
                body = json.dumps({"__type": code, "message": message}).encode()
                return http_response(
                    request, status, body, "application/x-amz-json-1.1", **{"x-amzn-ErrorType": code}
                )
            case Raise(error):
                raise error(endpoint_url=request.url)
            case LoseAnswer(error):
                boto3.client("sagemaker").start_pipeline_execution(**params)  # it reaches SageMaker...
                raise error(endpoint_url=request.url)  # ...but the answer never comes back
        return None

    def before_copy(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        source = request.headers.get("x-amz-copy-source", b"")
        source = source.decode() if isinstance(source, bytes) else str(source)
        key = unquote(source.split("?", 1)[0]).removeprefix(f"{BUCKET}/").removeprefix(f"/{BUCKET}/")
        fault = self.s3_rule(key, sum(1 for a in self.copy_attempts if a.key == key) + 1)
        self.copy_attempts.append(Attempt(key, fault))
        match fault:
            case None:
                return None
            case Reply(status, code, message):
                xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
                return http_response(request, status, xml, "application/xml")
            case Raise(error) | LoseAnswer(error):
                raise error(endpoint_url=request.url)
        return None

    def record_postponed(self, params: dict[str, Any], **_: Any) -> None:
        receipt = params["ReceiptHandle"]
        self.postponed.append((self.message_ids.get(receipt, receipt), int(params["VisibilityTimeout"])))


def upload_event_source(queue_url: str, queue_arn: str) -> EventSource:
    """The trigger's ``Type: SQS`` event of template.yaml: batch size, batching window, partial failures."""
    return EventSource(
        function_id="TriggerFunction",
        queue_url=queue_url,
        queue_arn=queue_arn,
        batch_size=int(UPLOADS["BatchSize"]),
        batching_window=float(UPLOADS["MaximumBatchingWindowInSeconds"]),
        maximum_concurrency=1,  # one poller: the batches, and so the counts, are the same in every run
        report_batch_item_failures="ReportBatchItemFailures" in UPLOADS["FunctionResponseTypes"],
    )


@dataclass
class InProcessTrigger:
    """The trigger's handler in this process as the poller's function, so that the fault hooks on its
    clients apply; it notes each message as the harness needs it before the handler sees the batch."""

    stack: Stack

    def invoke(self, event: dict[str, Any]) -> Invocation:
        for record in event["Records"]:
            self.stack._remember(record["body"])
            self.stack.message_ids[record["receiptHandle"]] = record["messageId"]
        before = len(self.stack.postponed)
        started = time.monotonic()
        result = self.stack.invoke(event)
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        postponed = {mid for mid, _ in self.stack.postponed[before:]}
        assert postponed == failed, "every failed message has its next delivery pushed out"
        duration_ms = (time.monotonic() - started) * 1000
        return Invocation(str(uuid.uuid4()), result, error=False, duration_ms=duration_ms, init_ms=None)


def poll_once(poller: Poller) -> list[dict[str, Any]]:
    """One turn of a poller thread of ``local.delivery``, in this thread: receive a batch (its long poll
    and batching window), invoke the function, delete what it did not report failed. The received
    messages (none: the queue had nothing visible)."""
    messages: list[dict[str, Any]] = poller._receive()
    if messages:
        poller._handle(poller.functions[0], messages)
    return messages


def datasets(body: str) -> list[Dataset]:
    """The uploads an upload-queue message announces, routed as the trigger routes them."""
    try:
        items = normalise({"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": body}]})
    except UnsupportedEvent:
        return []
    found = []
    for item in items:
        if isinstance(item, ObjectEvent):
            outcome = route(item, settings())
            if isinstance(outcome, Dataset):
                found.append(outcome)
    return found


@contextmanager
def stack_in_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The bucket -> upload queue -> trigger path of the template, and the pipeline, in the emulator the
    AWS_* variables point at, for as long as the block runs."""
    env = trigger_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caches = (trigger_config.settings, handler.sagemaker_client, handler.s3_client, handler.sqs_client)
    for cached in caches:
        cached.cache_clear()
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    dlq_url = sqs.create_queue(QueueName="trigger-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    queue_url = sqs.create_queue(
        QueueName="upload-queue",
        Attributes={
            "RedrivePolicy": json.dumps(redrive),
            "VisibilityTimeout": str(TEMPLATE_QUEUE["VisibilityTimeout"]),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events = boto3.client("events")
    routes = loads(Path(routes_file()).read_text(encoding="utf-8"))
    events.put_rule(Name="upload-rule", EventPattern=json.dumps(event_pattern(routes, BUCKET)))
    events.put_targets(Rule="upload-rule", Targets=[{"Id": "upload-queue", "Arn": queue_arn}])
    logs = io.StringIO()
    stream_handler = handler.logger.registered_handler
    previous = stream_handler.setStream(logs)  # type: ignore[attr-defined]
    harness = Stack(env["PIPELINE_NAME"], queue_url, queue_arn, dlq_url, logs)
    harness.create_pipeline()
    handler.sagemaker_client().meta.events.register(
        "before-send.sagemaker.StartPipelineExecution", harness.before_start
    )
    handler.s3_client().meta.events.register("before-send.s3.CopyObject", harness.before_copy)
    handler.sqs_client().meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibility", harness.record_postponed
    )
    try:
        yield harness
    finally:
        stream_handler.setStream(previous)  # type: ignore[attr-defined]
        for cached in caches:
            cached.cache_clear()


def check_promise(stack: Stack, figures: Counter[str]) -> None:
    """After every test: each upload ran exactly once on its own bytes, or was skipped saying why, or
    waits in the dead-letter queue. That is the promise to a user (nothing lost, nothing run twice)."""
    runs = Counter(stack.executions().values())
    waiting = {d.input_url for body in stack.dlq_bodies() for d in datasets(body)}
    skipped_keys = {key for key, _ in stack.skipped()}
    skipped = {url for url, (key, _) in stack.uploads.items() if key in skipped_keys and url not in runs}
    uploads = set(stack.uploads)
    lost = uploads - set(runs) - waiting - skipped
    duplicated = sum(count - 1 for count in runs.values() if count > 1)
    s3 = boto3.client("s3")
    wrong_bytes = []
    for url in runs:
        key, version = stack.uploads[url]
        snapshot = s3.get_object(Bucket=BUCKET, Key=url.removeprefix(f"s3://{BUCKET}/"))["Body"].read()
        original = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read()
        if snapshot != original:
            wrong_bytes.append(key)
    figures["tests"] += 1
    figures["uploads"] += len(uploads)
    figures["executions_expected"] += len(uploads - waiting - skipped)
    figures["executions_started"] += sum(runs[url] for url in uploads)
    figures["in_dlq"] += len(uploads & waiting - set(runs))
    figures["skipped_with_reason"] += len(skipped)
    figures["lost"] += len(lost)
    figures["duplicated"] += duplicated
    figures["faults_injected"] += sum(1 for a in stack.attempts + stack.copy_attempts if a.fault is not None)
    figures["failed_invocations"] += stack.failed_invocations
    assert not lost, f"uploads neither run, skipped nor dead-lettered: {sorted(lost)}"
    assert not duplicated, f"uploads run more than once: {[u for u, n in runs.items() if n > 1]}"
    assert not wrong_bytes, f"runs whose snapshot is not their upload's bytes: {wrong_bytes}"


def write_figures(suites: dict[str, Counter[str]]) -> None:
    """Each suite's counts into build/hardening-figures.json (one key per suite, the others kept)."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(FIGURES.read_text(encoding="utf-8")) if FIGURES.exists() else {}
    for suite, counts in suites.items():
        data[suite] = dict(sorted(counts.items()))
    FIGURES.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
