"""What AWS would report about the local runtime that moto does not: SageMaker's status-change events, what
the stack's topics would send, uploads no route takes, and the queues' oldest-message age.

- :meth:`Notifications.on_runner` (chained into the runner's notify) sends SageMaker's "Pipeline Execution
  Status Change" event (``PutEvents``, source ``aws.sagemaker``, the detail fields of SageMaker's documented
  example, ``events/notifications/sagemaker-pipeline-execution-status.json``) on each transition; the
  template's rule (made by :mod:`local.stack`, its topic an SQS stand-in) turns the ones it matches into
  the topic's sentence, reported here as ``topic-notification``.
- Uploads outside every routed prefix never reach the trigger (the upload rule's pattern leaves them out),
  so on AWS nothing says why they did not run. Locally a second rule takes every ``Object Created`` of
  the bucket into a queue of its own, and each one no route takes (the stack's own snapshot, clean and
  code folders aside) is reported as ``unrouted``, with the routed prefixes.
- CloudWatch's ``AWS/SQS`` ``ApproximateAgeOfOldestMessage`` (which ``s3sm status`` and the backlog alarm
  read): moto publishes no SQS metrics, so it is published every few seconds from moto's own queue state
  (moto's server runs in this process).

Hand-written only where moto lacks the service behaviour: SageMaker emitting events, an SNS target, SQS
metrics.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from moto.sqs.models import sqs_backends
from trigger.errors import UnsupportedEvent
from trigger.events import ObjectEvent, normalise

from contract.folders import CODE_PREFIX
from contract.routes import Routes
from local.emulator import ACCOUNT_ID
from local.stack import DeployedStack

Notify = Callable[[str, dict[str, Any]], None]
SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
_RUNNER_KINDS = {"execution-started", "execution-failed", "execution-succeeded"}


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def status_event(
    *,
    pipeline_arn: str,
    execution_arn: str,
    current: str,
    previous: str | None,
    start: datetime | None,
    end: datetime | None = None,
    display_name: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A PutEvents entry shaped as SageMaker's "Pipeline Execution Status Change" event: the fields of the
    documented detail in its order, without those SageMaker would not have yet (an end while executing)."""
    detail: dict[str, Any] = {
        "pipelineExecutionDisplayName": display_name or execution_arn.rsplit("/", 1)[-1],
        "currentPipelineExecutionStatus": current,
        "previousPipelineExecutionStatus": previous,
        "executionStartTime": _iso(start),
        "executionEndTime": _iso(end),
        "pipelineExecutionDescription": description,
        "pipelineArn": pipeline_arn,
        "pipelineExecutionArn": execution_arn,
    }
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps({k: v for k, v in detail.items() if v is not None}),
        "Resources": [pipeline_arn, execution_arn],
    }


def oldest_ages(region: str, now: float | None = None) -> dict[str, float]:
    """Queue name -> seconds since its oldest message was sent (0 when empty), from moto's backend."""
    now = time.time() if now is None else now
    ages: dict[str, float] = {}
    for name, queue in list(sqs_backends[ACCOUNT_ID][region].queues.items()):
        messages: list[Any] = list(queue._messages)  # moto's Message (its stamp is typed None)
        sent = [int(m.sent_timestamp) for m in messages if m.sent_timestamp is not None]
        ages[str(name)] = max(0.0, now - min(sent) / 1000) if sent else 0.0
    return ages


class Notifications:
    """The status events, the stand-in topics, the unrouted uploads and the queue-age metric of a runtime."""

    def __init__(
        self,
        *,
        events: Any,
        sqs: Any,
        sagemaker: Any,
        cloudwatch: Any,
        region: str,
        notify: Notify,
        poll_wait: float = 1.0,
        metric_interval: float = 10.0,
    ) -> None:
        self.events, self.sqs, self.sagemaker, self.cloudwatch = events, sqs, sagemaker, cloudwatch
        self.region, self.notify, self.poll_wait, self.metric_interval = (
            region,
            notify,
            poll_wait,
            metric_interval,
        )
        self.readers: list[tuple[str, Callable[[str], None]]] = []  # (queue URL, what a message means)
        self._previous: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def watch_topics(self, stack: DeployedStack) -> None:
        """Report what the stack's topics would send (their stand-in queues)."""
        for topic, url in stack.topics.items():
            self.readers.append((url, self._topic(stack.name, topic)))

    def watch_uploads(self, stack: DeployedStack, routes: Routes, bucket: str) -> None:
        """Report the uploads to ``bucket`` no route takes (the stack's own folders aside)."""
        own = (
            stack.parameters.get("SnapshotPrefix", ""),
            stack.parameters.get("CleanPrefix", ""),
            CODE_PREFIX,
        )
        name = f"{stack.name}-uploads-seen"[:64]  # local only: every Object Created of the bucket
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        pattern = {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [bucket]}},
        }
        self.events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        self.events.put_targets(Rule=name, Targets=[{"Id": "uploads-seen", "Arn": arn}])

        def unrouted(body: str) -> None:
            try:
                items = normalise(json.loads(body))
            except (ValueError, UnsupportedEvent):
                return
            for item in items:
                key = item.key if isinstance(item, ObjectEvent) else None
                if key and routes.root(key) is None and not key.startswith(tuple(p for p in own if p)):
                    self.notify("unrouted", {"stack": stack.name, "key": key, "prefixes": routes.prefixes()})

        self.readers.append((url, unrouted))

    def _topic(self, stack: str, topic: str) -> Callable[[str], None]:
        def sent(body: str) -> None:  # what SNS would send on, as the rule delivered it
            self.notify("topic-notification", {"stack": stack, "topic": topic, "message": body})

        return sent

    def on_runner(self, kind: str, details: dict[str, Any]) -> None:
        """Send the status-change event for a transition the runner reports (its notify callback)."""
        if kind not in _RUNNER_KINDS or self._stop.is_set():
            return
        arn = str(details["arn"])
        try:
            described = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
            current = str(described["PipelineExecutionStatus"])
            with self._lock:
                previous = self._previous.get(arn)
                if previous == current:
                    return
                self._previous[arn] = current
            entry = status_event(
                pipeline_arn=str(described["PipelineArn"]),
                execution_arn=arn,
                current=current,
                previous=previous,
                start=described.get("CreationTime"),
                end=described.get("LastModifiedTime")
                if current in ("Succeeded", "Failed", "Stopped")
                else None,
                display_name=described.get("PipelineExecutionDisplayName"),
                description=described.get("PipelineExecutionDescription"),
            )
            if self.events.put_events(Entries=[entry]).get("FailedEntryCount", 0):
                self.notify("notification-error", {"arn": arn, "error": "PutEvents refused the event"})
        except (ClientError, BotoCoreError) as exc:
            self.notify("notification-error", {"arn": arn, "error": str(exc)})

    def drain(self) -> None:
        """Read every watched queue once, each message handed to what it means."""
        for url, meaning in list(self.readers):
            for message in self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                meaning(message["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def publish_ages(self) -> dict[str, float]:
        """Every queue's oldest-message age, to the emulator's CloudWatch (as AWS/SQS publishes it)."""
        ages, stamp = oldest_ages(self.region), datetime.now(UTC)
        data = [
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": name}],
                "Timestamp": stamp,
                "Value": round(age, 3),
                "Unit": "Seconds",
            }
            for name, age in ages.items()
        ]
        for start in range(0, len(data), 20):  # well within PutMetricData's limits per call
            self.cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=data[start : start + 20])
        return ages

    def start(self) -> Notifications:
        for work, every in ((self.drain, self.poll_wait), (self.publish_ages, self.metric_interval)):
            thread = threading.Thread(target=self._loop, args=(work, every), name=work.__name__, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _loop(self, work: Callable[[], object], every: float) -> None:
        while True:
            try:
                work()
            except (ClientError, BotoCoreError) as exc:
                if self._stop.is_set():
                    return
                self.notify("notification-error", {"error": str(exc)})
            if self._stop.wait(every):
                return

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []


__all__ = ["DETAIL_TYPE", "SOURCE", "Notifications", "oldest_ages", "status_event"]
