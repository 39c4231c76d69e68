"""``s3sm status`` lists the uploads the trigger skipped lately, with why, from its log group: CloudWatch
Logs stubbed (botocore Stubber, the exact FilterLogEvents parameters), no network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ops.skips import Skips, recent
from ops.status import Queues, as_json, render
from ops.target import Target

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=24)
GROUP = "/aws/lambda/prod-TriggerFunction"
BUCKET = "prod-databucket-1a2b3c"
NOT_DATA = "not data, nothing to run: raw/batch/_SUCCESS is empty"
LONG = (
    "s3://prod-databucket-1a2b3c/raw/coil2000/Caravan.csv (version 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY) is "
    "not in the bucket: never uploaded, or deleted before its snapshot was taken (NoSuchVersion)"
)


class Session:
    """boto3's session as Target uses it, handing out one stubbed CloudWatch Logs client."""

    def __init__(self) -> None:
        self.logs = boto3.client(
            "logs",
            region_name="eu-west-1",
            aws_access_key_id="unit",
            aws_secret_access_key="unit",  # noqa: S106 - a placeholder: a stubbed client sends nothing
        )
        self.stub = Stubber(self.logs)

    def client(self, service: str, **kwargs: Any) -> Any:
        assert service == "logs"
        return self.logs


@pytest.fixture
def session() -> Iterator[Session]:
    found = Session()
    with found.stub:
        yield found
    found.stub.assert_no_pending_responses()


def stack(session: Session, **outputs: str) -> Target:
    return Target(
        "prod",
        "eu-west-1",
        {"DataBucketName": BUCKET, "TriggerLogGroupName": GROUP, **outputs},
        session=session,
    )


def line(minutes_ago: int, message: str, **fields: Any) -> dict[str, Any]:
    """A log event as FilterLogEvents returns it: the Powertools JSON line and its timestamp."""
    stamp = int((NOW - timedelta(minutes=minutes_ago)).timestamp() * 1000)
    body = {"level": "INFO", "location": "skip:120", "message": message, "service": "trigger", **fields}
    return {
        "logStreamName": "2026/12/03/[$LATEST]abc",
        "timestamp": stamp,
        "message": json.dumps(body),
        "eventId": str(stamp),
    }


def expect_pages(session: Session, *pages: list[dict[str, Any]]) -> None:
    """FilterLogEvents over the last 24 h, with the phrase pattern, answering ``pages`` in turn."""
    expected = {
        "logGroupName": GROUP,
        "filterPattern": '"record skipped"',
        "startTime": int(SINCE.timestamp() * 1000),
        "endTime": int(NOW.timestamp() * 1000),
    }
    for index, events in enumerate(pages):
        last = index == len(pages) - 1
        answer: dict[str, Any] = {"events": events} | ({} if last else {"nextToken": f"t{index}"})
        session.stub.add_response(
            "filter_log_events", answer, expected | ({"nextToken": f"t{index - 1}"} if index else {})
        )


def test_status_lists_the_newest_skips_with_their_reasons_newest_first(session: Session) -> None:
    # Given 12 skips over two pages of the trigger's log (oldest first, as CloudWatch answers), and a line
    # that only quotes the phrase
    first = [
        line(600 - i, "record skipped", key=f"raw/old/{i}.csv", bucket=BUCKET, reason="duplicate")
        for i in range(10)
    ]
    second = [
        line(30, "upload deferred", key="raw/a.csv", reason="not a 'record skipped' line"),
        line(20, "record skipped", key="raw/batch/_SUCCESS", bucket=BUCKET, reason=NOT_DATA),
        line(5, "record skipped", key="raw/coil2000/Caravan.csv", bucket=BUCKET, reason=LONG),
    ]
    expect_pages(session, first, second)

    # When status reads the skips of the last 24 h
    skips = recent(stack(session), since=SINCE, limit=10, now=NOW)

    # Then it keeps the 10 newest of the 12 skips (not the other line), newest first, with key and reason
    assert skips.total == 12
    assert [s.key for s in skips.shown[:2]] == ["raw/coil2000/Caravan.csv", "raw/batch/_SUCCESS"]
    assert skips.shown[0].reason == LONG
    assert skips.shown[0].time == "2026-12-03T11:55:00Z"
    assert len(skips.shown) == 10


def test_the_skips_show_under_the_executions_their_reasons_whole(session: Session) -> None:
    # Given two skips logged, one with a reason longer than a line
    expect_pages(
        session,
        [
            line(20, "record skipped", key="raw/batch/_SUCCESS", bucket=BUCKET, reason=NOT_DATA),
            line(5, "record skipped", key="raw/coil2000/Caravan.csv", bucket=BUCKET, reason=LONG),
        ],
    )
    target = stack(session, PipelineName="p")
    skips = recent(target, since=SINCE, limit=10, now=NOW)

    # When status renders them 100 columns wide (no execution yet)
    text = render(target, [], Queues(0, 0, None, 0), width=100, skips=skips)

    # Then each skip is a row: when, the key, and the reason, wrapped whole, never cut
    lines = text.splitlines()
    heading = next(i for i, shown in enumerate(lines) if shown.startswith("skips since 2026-12-02T12:00Z"))
    assert "2, newest first" in lines[heading]
    assert lines[heading + 1].split() == ["LOGGED", "KEY", "REASON"]
    rows = lines[heading + 3 :]
    assert rows[0].startswith("2026-12-03T11:55:00Z  raw/coil2000/Caravan.csv  ")
    assert "…" not in text
    assert max(len(shown) for shown in lines) <= 100
    reason_column = rows[0].index("s3://")
    batch = next(i for i, r in enumerate(rows) if r.startswith("2026-12-03T11:40:00Z  raw/batch/_SUCCESS  "))
    assert " ".join(r[reason_column:] for r in rows[:batch]) == LONG
    assert " ".join(r[reason_column:] for r in rows[batch:]) == NOT_DATA
    # And --json carries them in full
    shown = json.loads(as_json(target, [], None, skips))["skips"]
    assert (shown["total"], shown["newest"][0]["reason"]) == (2, LONG)


def test_no_skips_in_the_window_says_none(session: Session) -> None:
    expect_pages(session, [line(5, "pipeline execution started", key="raw/a.csv")])
    skips = recent(stack(session), since=SINCE, limit=10, now=NOW)
    assert render(
        stack(session, PipelineName="p"), [], Queues(0, 0, None, 0), width=100, skips=skips
    ).endswith("skips since 2026-12-02T12:00Z: none")


@pytest.mark.parametrize(
    ("code", "status", "says"),
    [
        (
            "ResourceNotFoundException",
            400,
            f"none: the log group {GROUP} does not exist yet (the trigger has not run)",
        ),
        ("AccessDeniedException", 400, "unknown: reading the trigger's skips in"),
    ],
)
def test_a_log_group_that_cannot_be_read_is_named_and_status_still_shows_the_rest(
    session: Session, code: str, status: int, says: str
) -> None:
    # Given a log group that does not exist yet, or a caller without logs:FilterLogEvents
    session.stub.add_client_error("filter_log_events", code, "no", status)

    # When status reads the skips, Then it says why there are none to show, and does not fail
    skips = recent(stack(session), since=SINCE, limit=10, now=NOW)
    assert skips.note is not None
    assert skips.note.startswith(says)
    if code == "AccessDeniedException":
        assert "permission missing" in skips.note
        assert skips.note.endswith("(logs:FilterLogEvents)")


def test_a_stack_without_the_log_group_output_says_so_without_calling_aws(session: Session) -> None:
    target = Target("prod", "eu-west-1", {"PipelineName": "p"}, session=session)
    skips = recent(target, since=SINCE, limit=10, now=NOW)
    assert skips == Skips(
        SINCE, note="unknown: the stack has no TriggerLogGroupName output (deployed from an older template?)"
    )
