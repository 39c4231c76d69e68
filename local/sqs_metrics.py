"""CloudWatch's ``AWS/SQS`` ``ApproximateAgeOfOldestMessage``, locally.

SQS has no API attribute for the age of a queue's oldest message: on AWS, ``s3sm status`` and the
``UploadBacklogAlarm`` read CloudWatch's metric for it. moto publishes no SQS metrics, so the local runtime
publishes this one itself, every few seconds, from the emulator's own queue state (moto's server runs in
this process): the age of the oldest message not deleted, 0 for an empty queue. ``s3sm status`` then reads
it through the same ``GetMetricStatistics`` call as on AWS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from moto.sqs.models import sqs_backends

from local.emulator import ACCOUNT_ID

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


class QueueAgeMetric:
    """Publishes every queue's oldest-message age to the emulator's CloudWatch, every ``interval`` s."""

    def __init__(self, *, cloudwatch: Any, region: str, notify: Notify, interval: float = 10.0) -> None:
        self.cloudwatch, self.region, self.notify, self.interval = cloudwatch, region, notify, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish_once(self) -> dict[str, float]:
        ages = oldest_ages(self.region)
        stamp = datetime.now(UTC)
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

    def start(self) -> QueueAgeMetric:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="sqs-metrics", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.publish_once()
            except (ClientError, BotoCoreError) as exc:
                if self._stop.is_set():
                    break
                self.notify("metrics-error", {"error": str(exc)})
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


__all__ = ["QueueAgeMetric", "oldest_ages"]
