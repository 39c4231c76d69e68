"""``s3sm status``'s recent skips read from a log group on the emulator (moto server over HTTP): the
filter pattern moto evaluates as CloudWatch Logs does, and the lines that only contain the phrase left
out. The log lines are put into the group here, as the trigger's Powertools logger writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from local.emulator import Emulator
from ops.skips import recent
from ops.status import render_skips
from ops.target import Target

GROUP = "/aws/lambda/skips-local-TriggerFunction"
BUCKET = "skips-data"


def logged(message: str, **fields: Any) -> str:
    return json.dumps(
        {"level": "INFO", "location": "skip:120", "message": message, "service": "trigger", **fields}
    )


def test_status_finds_the_triggers_recent_skips_in_its_log_group(aws: Emulator) -> None:
    # Given the trigger's log group holding a skip from two days ago, a start, a deferral whose reason
    # quotes the phrase, and two recent skips
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="2026/12/03/[$LATEST]abc")
    now = datetime.now(UTC)

    def at(minutes_ago: int) -> int:
        return int((now - timedelta(minutes=minutes_ago)).timestamp() * 1000)

    events = [
        (
            at(2 * 24 * 60),
            logged("record skipped", key="raw/old.csv", bucket=BUCKET, reason="too old to show"),
        ),
        (at(30), logged("pipeline execution started", key="raw/a.csv", bucket=BUCKET)),
        (at(20), logged("record skipped", key="raw/batch/_SUCCESS", bucket=BUCKET, reason="not data: empty")),
        (at(10), logged("upload deferred", key="raw/b.csv", reason="quotes 'record skipped'")),
        (at(5), logged("record skipped", key="outside/x.csv", bucket=BUCKET, reason="under no route (raw/)")),
    ]
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="2026/12/03/[$LATEST]abc",
        logEvents=[{"timestamp": stamp, "message": message} for stamp, message in events],
    )
    session = boto3.session.Session()
    target = Target("skips-local", str(session.region_name), {"TriggerLogGroupName": GROUP}, session=session)

    # When status reads the skips of the last 24 hours
    skips = recent(target, since=now - timedelta(hours=24), limit=10)

    # Then it shows the two recent skips, newest first, with their keys and reasons, and nothing else
    assert skips.note is None
    assert [(s.key, s.reason) for s in skips.shown] == [
        ("outside/x.csv", "under no route (raw/)"),
        ("raw/batch/_SUCCESS", "not data: empty"),
    ]
    text = "\n".join(render_skips(skips, BUCKET, 100))
    assert "outside/x.csv" in text
    assert "under no route (raw/)" in text
    assert "raw/old.csv" not in text


def test_a_log_group_the_trigger_has_not_made_yet_is_no_skips_not_an_error(aws: Emulator) -> None:
    session = boto3.session.Session()
    target = Target("skips-local", str(session.region_name), {"TriggerLogGroupName": GROUP}, session=session)
    skips = recent(target, since=datetime.now(UTC) - timedelta(hours=24), limit=10)
    assert skips.shown == []
    assert skips.note == f"none: the log group {GROUP} does not exist yet (the trigger has not run)"
