"""What AWS would report about the local runtime that moto does not (hand-written because moto has no SNS
target or SQS metrics): what the stack's topics (SQS stand-ins) would send, uploads no route takes (through
a rule of their own), and ``AWS/SQS`` ``ApproximateAgeOfOldestMessage`` from moto's queues.
docs/local-runtime.md has the detail.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from moto.sqs.models import sqs_backends

from contract.folders import CODE_PREFIX
from contract.routes import Routes
from local.delivery import s3_keys
from local.emulator import ACCOUNT_ID
from local.stack import DeployedStack

Notify = Callable[[str, dict[str, Any]], None]


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
    """The stand-in topics, the unrouted uploads and the queue-age metric of a runtime."""

    def __init__(
        self,
        *,
        events: Any,
        sqs: Any,
        cloudwatch: Any,
        region: str,
        notify: Notify,
        poll_wait: float = 1.0,
        metric_interval: float = 10.0,
    ) -> None:
        self.events, self.sqs, self.cloudwatch = events, sqs, cloudwatch
        self.region, self.notify = region, notify
        self.poll_wait, self.metric_interval = poll_wait, metric_interval
        self.readers: list[tuple[str, Callable[[str], None]]] = []  # (queue URL, what a message means)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def watch_topics(self, stack: DeployedStack) -> None:
        """Report what the stack's topics would send (their stand-in queues), as the rule delivered it."""
        for topic, url in stack.topics.items():
            self.readers.append((url, partial(self._sent, {"stack": stack.name, "topic": topic})))

    def _sent(self, details: dict[str, Any], body: str) -> None:
        self.notify("topic-notification", {**details, "message": body})

    def watch_uploads(self, stack: DeployedStack, routes: Routes, bucket: str) -> None:
        """Report the uploads to ``bucket`` no route takes (the stack's own folders aside)."""
        own = tuple(
            p
            for p in (*(stack.parameters.get(f"{n}Prefix") for n in ("Snapshot", "Clean")), CODE_PREFIX)
            if p
        )
        name = f"{stack.name}-uploads-seen"[:64]  # local only: every Object Created of the bucket
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{name}"
        pattern = {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [bucket]}},
        }
        self.events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        self.events.put_targets(Rule=name, Targets=[{"Id": "uploads-seen", "Arn": arn}])

        def unrouted(body: str) -> None:
            for key in s3_keys(body):
                if routes.root(key) is None and not key.startswith(own):
                    self.notify("unrouted", {"stack": stack.name, "key": key, "prefixes": routes.prefixes()})

        self.readers.append((url, unrouted))

    def drain(self) -> None:
        """Read every watched queue once, each message handed to what it means."""
        for url, meaning in list(self.readers):
            for message in self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                meaning(message["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def publish_ages(self) -> dict[str, float]:
        """Every queue's oldest-message age, to the emulator's CloudWatch (as AWS/SQS publishes it)."""
        ages, stamp = oldest_ages(self.region), datetime.now(UTC)
        metric = {"MetricName": "ApproximateAgeOfOldestMessage", "Timestamp": stamp, "Unit": "Seconds"}
        data = [
            {**metric, "Dimensions": [{"Name": "QueueName", "Value": name}], "Value": round(age, 3)}
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


__all__ = ["Notifications", "oldest_ages"]
