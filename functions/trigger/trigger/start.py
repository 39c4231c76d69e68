"""One invocation's work: each upload routed, snapshotted and started once, or skipped with a reason.

Plain code, given everything it uses: the settings (``trigger.config``), the invocation's clock
(``snapshot.Budget``), a Powertools ``Logger`` (its log lines are the trigger's: ``record skipped``,
``pipeline execution started``, ``upload deferred``, ``upload rejected``, ``message postponed``) and
the AWS clients (:class:`Clients`, each made by its factory on first use). ``trigger.handler`` wires
it to Lambda; tests give it stubbed clients.

- An upload that must wait (a quota, throttling, a 5xx, a timeout, a missing pipeline, a copy that
  may pass) raises :class:`~trigger.errors.Transient`; from the upload queue its message is then
  hidden for the backoff of its receive count (:mod:`trigger.backoff`), or for no time at all when
  SageMaker refused it for good (:class:`~trigger.errors.Rejected`: the redrive policy dead-letters it).
- A batch may name one upload twice: the second starts nothing (the same idempotency token).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trigger import backoff, snapshot
from trigger.config import Config
from trigger.errors import Rejected, StartFailed, Transient
from trigger.events import ObjectEvent, Skip, normalise
from trigger.request import build_request, idempotency_token, refusal
from trigger.routing import route

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

SKIPPED = "record skipped"  # the log line of every skip (s3sm status lists the recent ones)
START_SECONDS = 15.0  # kept for StartPipelineExecution after a copy (its client: 3 s + 10 s a try)
_RECORD_KEYS = ("bucket", "key", "execution_arn")


@dataclass(frozen=True)
class Clients:
    """The AWS clients, each from a factory called when first needed (an invocation that only skips
    makes none)."""

    s3: Callable[[], Any]
    sagemaker: Callable[[], Any]
    sqs: Callable[[], Any]


@dataclass
class Run:
    """One invocation's outcomes, and the tokens it already started (a batch may repeat an upload).

    ``budget``: the invocation's clock; a copy or a start that would not fit in the time left is not
    begun (the upload waits for a later invocation), so a batch never times out half-way.
    """

    config: Config
    clients: Clients
    logger: Logger
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
        self.logger.append_keys(bucket=source.bucket, key=source.key)
        try:
            taken = snapshot.take(
                self.clients.s3(),
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
                response = self.clients.sagemaker().start_pipeline_execution(**request)
            except (ClientError, BotoCoreError) as err:
                final = refusal(err, outcome.pipeline)
                if final is not None:
                    raise Rejected(source.key, f"{final} (to the dead-letter queue, not retried)") from err
                raise Transient(source.key, f"StartPipelineExecution failed, will retry: {err}") from err
            self.tokens.add(token)
            arn = str(response["PipelineExecutionArn"])
            self.logger.append_keys(execution_arn=arn)
            self.logger.info("pipeline execution started", extra={**urls, "token": token})
            self.started.append({"key": source.key, **urls, "executionArn": arn})
        except Transient as err:
            self.deferred.append((source.key, err.reason))
            what = "upload rejected" if isinstance(err, Rejected) else "upload deferred"
            self.logger.warning(what, extra={**urls, "reason": err.reason})
            raise
        finally:
            self.logger.remove_keys(_RECORD_KEYS)

    def skip(self, skip: Skip) -> None:
        names = {k: v for k, v in (("bucket", skip.bucket), ("key", skip.key)) if v is not None}
        log = self.logger.warning if skip.unprocessable else self.logger.info
        log(SKIPPED, extra={**names, "reason": skip.reason, "unprocessable": skip.unprocessable})
        self.skipped.append({"key": skip.key, "reason": skip.reason})

    def every(self, items: Iterable[ObjectEvent | Skip]) -> dict[str, Any]:
        """Every record of an event that did not come from the upload queue, each handled once.

        Returns ``{"started": [{key, inputDataUrl, outputDataUrl, executionArn}], "skipped": [{key,
        reason}]}``, or raises StartFailed, after every record was handled, naming the uploads to retry.
        """
        cause: BaseException | None = None
        for item in items:
            try:
                self.handle(item, retry=False)
            except Transient as err:
                cause = err.__cause__  # named by StartFailed below, once every other record was handled
        if self.deferred:
            raise StartFailed(self.deferred) from cause
        return {"started": self.started, "skipped": self.skipped}

    def message(self, record: SQSRecord) -> None:
        """One upload-queue message: its notification(s) handled; raises Transient when it must wait."""
        receives = _receive_count(record)
        waiting: list[Transient] = []
        for item in normalise({"Records": [record.raw_event]}):  # a malformed body: one unprocessable Skip
            try:
                self.handle(item, retry=receives > 1)
            except Transient as err:
                waiting.append(err)  # the message's other records still run; the message as a whole waits
        if waiting:
            # Only rejections: no wait, so the redrive policy dead-letters it within minutes.
            rejected = all(isinstance(err, Rejected) for err in waiting)
            self.postpone(record, receives, wait=0 if rejected else None)
            raise waiting[-1]

    def postpone(self, record: SQSRecord, receives: int, *, wait: int | None = None) -> None:
        """Hide the message for ``wait`` seconds, by default the backoff of its ``receives``-th receive
        (see :mod:`trigger.backoff`)."""
        if wait is None:
            wait = backoff.delay(receives, self.config.backoff_base_seconds, self.config.backoff_cap_seconds)
        try:
            sqs = self.clients.sqs()
            sqs.change_message_visibility(
                QueueUrl=queue_url(record.event_source_arn, sqs.meta.endpoint_url),
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=wait,
            )
        except (ClientError, BotoCoreError, KeyError, ValueError) as err:
            # The message still fails: it comes back after the queue's own visibility timeout instead.
            self.logger.warning(
                "could not postpone the message", extra={"error": str(err), "receive_count": receives}
            )
            return
        self.logger.info("message postponed", extra={"receive_count": receives, "visibility_timeout": wait})

    def counts(self) -> dict[str, int]:
        """How many uploads started, were skipped, and must wait (the ``event handled`` log line)."""
        return {"started": len(self.started), "skipped": len(self.skipped), "failed": len(self.deferred)}


def queue_url(queue_arn: str, endpoint_url: str) -> str:
    """The queue URL for ``queue_arn`` on ``endpoint_url`` (the SQS client's: AWS or an emulator)."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
    return f"{endpoint_url}/{parts[4]}/{parts[5]}"


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


__all__ = ["SKIPPED", "START_SECONDS", "Clients", "Run", "is_queue_batch", "queue_url"]
