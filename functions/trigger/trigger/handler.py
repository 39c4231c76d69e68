"""Lambda entry point: S3 upload notifications in, one SageMaker pipeline execution per upload out.

Wiring only: Powertools' Logger, Metrics and batch utility, the S3, SQS and SageMaker clients, and the
entry point. What happens to each upload (route, snapshot, start, skip, wait) is decided in
:mod:`trigger.start`, over the plain modules for settings (``trigger.config``), event shapes
(``trigger.events``), dataset rules (``trigger.routing``), the snapshot (``trigger.snapshot``), the
request (``trigger.request``) and the retry waits (``trigger.backoff``).

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

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config as BotocoreConfig

from trigger import snapshot
from trigger.config import settings
from trigger.events import normalise
from trigger.start import Clients, Run, is_queue_batch

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


CLIENTS = Clients(s3=s3_client, sagemaker=sagemaker_client, sqs=sqs_client)  # each made on first use


def emit_metrics(run: Run) -> None:
    counts = run.counts()
    metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=counts["started"])
    metrics.add_metric(name="RecordsSkipped", unit=MetricUnit.Count, value=counts["skipped"])
    metrics.add_metric(name="StartFailures", unit=MetricUnit.Count, value=counts["failed"])
    logger.info("event handled", extra=counts)


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
    run = Run(config, CLIENTS, logger, snapshot.Budget.of(context.get_remaining_time_in_millis))
    if is_queue_batch(event):
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        try:
            return dict(process_partial_response(event, run.message, processor, context))
        finally:
            emit_metrics(run)
    items = normalise(event)  # UnsupportedEvent: nothing handled, nothing counted
    try:
        return run.every(items)
    finally:
        emit_metrics(run)
