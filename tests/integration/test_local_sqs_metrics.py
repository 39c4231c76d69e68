"""The local runtime's stand-in for CloudWatch's ApproximateAgeOfOldestMessage, read as s3sm reads it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import boto3

from local.emulator import Emulator
from local.notifications import Notifications


def test_the_age_of_the_oldest_message_reaches_cloudwatch(aws: Emulator) -> None:
    # Given a queue with a message sent a moment ago, and an empty one
    sqs = boto3.client("sqs")
    busy = sqs.create_queue(QueueName="ops-metric-busy")["QueueUrl"]
    sqs.create_queue(QueueName="ops-metric-empty")
    sqs.send_message(QueueUrl=busy, MessageBody="{}")
    time.sleep(1.1)
    sqs.send_message(QueueUrl=busy, MessageBody="{}")
    # When the metric is published
    cloudwatch = boto3.client("cloudwatch")
    found = Notifications(
        events=None,
        sqs=None,
        cloudwatch=cloudwatch,
        region=aws.region,
        notify=lambda k, d: None,
    )
    ages = found.publish_ages()
    # Then the busy queue's age is its oldest message's, the empty queue's 0, readable from CloudWatch
    assert 1.0 <= ages["ops-metric-busy"] < 30
    assert ages["ops-metric-empty"] == 0.0
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": "ops-metric-busy"}],
        StartTime=now - timedelta(minutes=15),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [round(p["Maximum"], 3) for p in points] == [round(ages["ops-metric-busy"], 3)]
