"""Lambda entry point: S3 upload notifications in, one SageMaker pipeline execution per upload out.

Thin on purpose: environment settings (``trigger.config``), event shapes (``trigger.events``), dataset
rules (``trigger.routing``), the snapshot (``trigger.snapshot``), the request (``trigger.request``) and
the retry waits (``trigger.backoff``) are plain modules; this one wires them to Powertools' Logger,
Metrics and batch utility and to the S3, SQS and SageMaker clients.

Two ways in:

- the upload queue (an SQS event source mapping with ``ReportBatchItemFailures``): Powertools'
  ``BatchProcessor`` handles each message; one whose upload must wait (a quota, throttling, a 5xx, a
  timeout, a missing pipeline, a snapshot copy that may pass) is reported as a batch item failure and
  its visibility is pushed out by the backoff for its ``ApproximateReceiveCount``, so SQS redelivers
  it later and, after 24 h of that, its redrive policy moves it to the dead-letter queue; one
  SageMaker rejects for good (access denied, a validation error: ``request.refusal``) fails with no
  wait, so the redrive policy moves it there within minutes;
- any other accepted event (a direct S3 notification, EventBridge, SQS-shaped events without message
  IDs, as ``sam local invoke`` sends them): every record is handled, then :class:`StartFailed` names
  the uploads that must be retried, for whoever invoked the function to send the event again.

Either way a duplicate delivery starts nothing twice: the idempotency token is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError, ClientError

from trigger import backoff, snapshot
from trigger.config import Config, settings
from trigger.errors import Rejected, StartFailed, Transient
from trigger.events import ObjectEvent, Skip, normalise
from trigger.request import build_request, idempotency_token, refusal
from trigger.routing import route

logger = Logger()
metrics = Metrics()

# Throttling, 5xx and connection errors are retried by botocore's standard retry mode (exponential
# backoff with jitter, at most MAX_ATTEMPTS calls in all: botocore's "total_max_attempts"; its older
# "max_attempts" key counts retries only); what still fails waits in the queue (trigger.backoff).
MAX_ATTEMPTS = 5
CLIENT_CONFIG = BotocoreConfig(
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}, connect_timeout=3, read_timeout=10
)  # StartPipelineExecution and ChangeMessageVisibility answer in well under a second
# CopyObject answers when the copy is done (up to 5 GiB): a long read timeout, fewer attempts, all
# within the function's timeout (template: 300 s).
S3_CONFIG = BotocoreConfig(
    retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=3, read_timeout=80
)
_RECORD_KEYS = ("bucket", "key", "execution_arn")


@cache
def sagemaker_client() -> Any:
    """The SageMaker client, made on first use and then kept for the execution environment's life.

    Not at import: building a client costs about as much as importing boto3 itself, which alone would
    break the cold-start budget (importing this module <= 1.3x ``import boto3``; see
    ``bench/trigger_coldstart.py``). The first invocation pays it instead, once. The endpoint comes
    from the standard AWS settings (``AWS_ENDPOINT_URL`` included), never from code.
    """
    return boto3.session.Session().client("sagemaker", config=CLIENT_CONFIG)


@cache
def s3_client() -> Any:
    """The S3 client for the snapshot copies (made on first use, like :func:`sagemaker_client`)."""
    return boto3.session.Session().client("s3", config=S3_CONFIG)


@cache
def sqs_client() -> Any:
    """The SQS client that pushes a waiting upload's next delivery out (ChangeMessageVisibility)."""
    return boto3.session.Session().client("sqs", config=CLIENT_CONFIG)


START_SECONDS = 15.0  # kept for StartPipelineExecution after a copy (CLIENT_CONFIG: 3 s + 10 s a try)


@dataclass
class Run:
    """One invocation's outcomes, and the tokens it already started (a batch may repeat an upload).

    ``budget``: the invocation's clock; a copy or a start that would not fit in the time left is not
    begun (the upload waits for a later invocation), so a batch never times out half-way.
    """

    config: Config
    budget: snapshot.Budget | None = None
    started: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)

    def handle(self, item: ObjectEvent | Skip, *, retry: bool) -> None:
        """Snapshot and start ``item``'s upload, or skip it; raises Transient when it must wait."""
        outcome = item if isinstance(item, Skip) else route(item, self.config)
        if isinstance(outcome, Skip):
            self.skip(outcome)
            return
        source = outcome.source
        token = idempotency_token(outcome)
        if token in self.tokens:
            self.skip(Skip(source.key, "duplicate of an earlier record in this event", source.bucket))
            return
        urls = {"inputDataUrl": outcome.input_url, "outputDataUrl": outcome.output_url}
        logger.append_keys(bucket=source.bucket, key=source.key)
        try:
            taken = snapshot.take(
                s3_client(),
                outcome,
                retry=retry,
                budget=self.budget,
                then=START_SECONDS,
                kms_key=self.config.data_kms_key,
            )
            if isinstance(taken, Skip):
                self.skip(taken)
                return
            if self.budget is not None:
                self.budget.check(source.key, START_SECONDS, "StartPipelineExecution")
            request = build_request(outcome, taken)
            try:
                response = sagemaker_client().start_pipeline_execution(**request)
            except (ClientError, BotoCoreError) as err:
                final = refusal(err, outcome.pipeline)
                if final is not None:
                    raise Rejected(source.key, f"{final} (to the dead-letter queue, not retried)") from err
                raise Transient(source.key, f"StartPipelineExecution failed, will retry: {err}") from err
            self.tokens.add(token)
            arn = str(response["PipelineExecutionArn"])
            logger.append_keys(execution_arn=arn)
            logger.info("pipeline execution started", extra={**urls, "token": token})
            self.started.append({"key": source.key, **urls, "executionArn": arn})
        except Transient as err:
            self.deferred.append((source.key, err.reason))
            what = "upload rejected" if isinstance(err, Rejected) else "upload deferred"
            logger.warning(what, extra={**urls, "reason": err.reason})
            raise
        finally:
            logger.remove_keys(_RECORD_KEYS)

    def skip(self, skip: Skip) -> None:
        names = {k: v for k, v in (("bucket", skip.bucket), ("key", skip.key)) if v is not None}
        log = logger.warning if skip.unprocessable else logger.info
        log("record skipped", extra={**names, "reason": skip.reason, "unprocessable": skip.unprocessable})
        self.skipped.append({"key": skip.key, "reason": skip.reason})

    def message(self, record: SQSRecord) -> None:
        """One upload-queue message: its notification(s) handled; raises Transient when it must wait."""
        receives = _receive_count(record)
        waiting: list[Transient] = []
        for item in normalise_message(record):
            try:
                self.handle(item, retry=receives > 1)
            except Transient as err:
                waiting.append(err)  # the message's other records still run; the message as a whole waits
        if waiting:
            # Only rejections: no wait, so the redrive policy dead-letters it within minutes.
            rejected = all(isinstance(err, Rejected) for err in waiting)
            postpone(record, receives, self.config, wait=0 if rejected else None)
            raise waiting[-1]

    def emit_metrics(self) -> None:
        metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=len(self.started))
        metrics.add_metric(name="RecordsSkipped", unit=MetricUnit.Count, value=len(self.skipped))
        metrics.add_metric(name="StartFailures", unit=MetricUnit.Count, value=len(self.deferred))
        counts = {"started": len(self.started), "skipped": len(self.skipped), "failed": len(self.deferred)}
        logger.info("event handled", extra=counts)


def normalise_message(record: SQSRecord) -> list[ObjectEvent | Skip]:
    """The notifications one queue message carries (a malformed body is one unprocessable Skip)."""
    return normalise({"Records": [record.raw_event]})


def postpone(record: SQSRecord, receives: int, config: Config, *, wait: int | None = None) -> None:
    """Hide the message for ``wait`` seconds, by default the backoff of its ``receives``-th receive
    (see :mod:`trigger.backoff`)."""
    if wait is None:
        wait = backoff.delay(receives, config.backoff_base_seconds, config.backoff_cap_seconds)
    try:
        sqs_client().change_message_visibility(
            QueueUrl=queue_url(record.event_source_arn),
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=wait,
        )
    except (ClientError, BotoCoreError, KeyError, ValueError) as err:
        # The message still fails: it comes back after the queue's own visibility timeout instead.
        logger.warning("could not postpone the message", extra={"error": str(err), "receive_count": receives})
        return
    logger.info("message postponed", extra={"receive_count": receives, "visibility_timeout": wait})


def queue_url(queue_arn: str) -> str:
    """The queue URL for ``queue_arn``, on whatever endpoint the SQS client uses (AWS or an emulator)."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
    return f"{sqs_client().meta.endpoint_url}/{parts[4]}/{parts[5]}"


def _receive_count(record: SQSRecord) -> int:
    try:
        return max(1, int(record.attributes.approximate_receive_count))
    except (KeyError, TypeError, ValueError):
        return 1


def is_queue_batch(event: object) -> bool:
    """Whether ``event`` is a batch from an SQS event source mapping (every record an SQS message)."""
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(
            isinstance(r, dict)
            and r.get("eventSource") == "aws:sqs"
            and isinstance(r.get("messageId"), str)
            and isinstance(r.get("receiptHandle"), str)
            for r in records
        )
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Snapshot and start the pipeline once per upload announced in ``event``; skip (and log) the rest.

    From the upload queue: returns ``{"batchItemFailures": [{"itemIdentifier": messageId}]}`` naming
    the messages that must wait. Otherwise: returns ``{"started": [{key, inputDataUrl, outputDataUrl,
    executionArn}], "skipped": [{key, reason}]}``, or raises StartFailed (after every record was
    handled) naming the uploads to retry. Raises ConfigError (bad environment) or UnsupportedEvent
    (an event of another kind).
    """
    config = settings()
    metrics.namespace = config.metrics_namespace
    run = Run(config, snapshot.Budget.of(context.get_remaining_time_in_millis))
    if is_queue_batch(event):
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        try:
            return dict(process_partial_response(event, run.message, processor, context))
        finally:
            run.emit_metrics()
    cause: BaseException | None = None
    for item in normalise(event):
        try:
            run.handle(item, retry=False)
        except Transient as err:
            cause = err.__cause__  # named by StartFailed below, once every other record was handled
    run.emit_metrics()
    if run.deferred:
        raise StartFailed(run.deferred) from cause
    return {"started": run.started, "skipped": run.skipped}
