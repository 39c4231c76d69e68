"""Every sample event in events/ replayed through the real trigger handler against the emulator.

Each case states what a user would see: which keys start an execution (with which data URLs) and
which are skipped (with which reason); the assertions check the summary the handler returns, the
exact StartPipelineExecution calls it made, and the executions the emulator now lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from trigger.events import ObjectEvent, normalise
from trigger.routing import upload_id

from contract import ledger
from tests.support.trigger import snapshot_of

BUCKET = "example-data-bucket"
EVENTS = Path(__file__).resolve().parents[2] / "events"
DISPLAY_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}")
REQUEST_FIELDS = {
    "PipelineName",
    "PipelineExecutionDisplayName",
    "PipelineExecutionDescription",
    "PipelineParameters",
    "ClientRequestToken",
}


@dataclass(frozen=True)
class Expected:
    started: list[str]  # keys, in order
    skipped: list[tuple[str | None, str]]  # (key, a phrase of the reason), in order


UNSAFE = "unsafe key: an empty, '.' or '..' path segment"
OBJECT_MODE: dict[str, Expected] = {
    "s3-put.json": Expected(["raw/coil2000/Caravan.csv"], []),
    "s3-put-reupload.json": Expected(["raw/coil2000/Caravan.csv"], []),
    "s3-put-space.json": Expected(["raw/my data/coil 2000.csv"], []),
    "s3-put-plus.json": Expected(["raw/a+b/coil+2000.csv"], []),
    "s3-put-unicode.json": Expected(["raw/données/été 2000 \u2013 ü.csv"], []),
    "s3-put-sam-encoded.json": Expected(["raw/my data+v2/données été.csv"], []),
    "s3-put-outside-raw.json": Expected(
        [], [("uploads/coil2000/Caravan.csv", "outside the routed prefixes ('raw/')")]
    ),
    "s3-put-folder.json": Expected([], [("raw/folder/", "folder placeholder")]),
    "s3-put-marker.json": Expected([], [("raw/batch/_SUCCESS", "marker object '_SUCCESS': object mode")]),
    "s3-put-marker-folder-data.json": Expected(["raw/batch/part-0001.csv"], []),
    "s3-delete.json": Expected([], [("raw/coil2000/Caravan.csv", "object removed (ObjectRemoved:Delete)")]),
    "s3-test-event.json": Expected([], [(None, "s3:TestEvent")]),
    "sqs-s3-put.json": Expected(["raw/queued/coil 2000+sqs.csv"], [(None, "s3:TestEvent")]),
    "sqs-upload-batch.json": Expected(
        ["raw/batch 2026/train.csv", "raw/batch 2026/test.csv"],
        [(None, "s3:TestEvent"), ("raw/batch 2026/train.csv", "duplicate of an earlier record")],
    ),
    "eventbridge-object-created.json": Expected(["raw/event bridge/coil+2000.csv"], []),
    "s3-multi-record.json": Expected(
        ["raw/coil2000/train.csv", "raw/coil2000/test.csv"],
        [
            ("clean/coil2000/train.csv/full_data.csv", "outside the routed prefixes"),
            ("raw/coil2000/", "folder placeholder"),
        ],
    ),
    "s3-put-unsafe-keys.json": Expected(
        [],
        [
            ("raw/../clean/x.csv", UNSAFE),
            ("raw/a/../../clean/x.csv", UNSAFE),
            ("raw/../clean/y.csv", UNSAFE),
            ("raw//x.csv", UNSAFE),
            ("raw/./x.csv", UNSAFE),
            ("raw/line\nbreak.csv", "key contains control characters"),
            ("raw/" + "k" * 1100 + ".csv", "key longer than S3's 1024-byte limit"),
        ],
    ),
}
MARKER_MODE: dict[str, Expected] = {
    "s3-put-marker.json": Expected(["raw/batch/_SUCCESS"], []),
    "s3-put-marker-folder-data.json": Expected(
        [], [("raw/batch/part-0001.csv", "not the marker object '_SUCCESS': marker mode")]
    ),
    "s3-put.json": Expected([], [("raw/coil2000/Caravan.csv", "not the marker object")]),
}


def urls(item: ObjectEvent, *, marker: bool) -> tuple[str, str]:
    """The snapshot the run reads and the folder it writes, for the upload ``item`` announces."""
    uid = item.sequencer or upload_id(item)
    relative = item.key.removeprefix("raw/")
    if marker:
        relative = relative.rsplit("/", 1)[0]
        return f"s3://{BUCKET}/{snapshot_of(relative, uid)}", f"s3://{BUCKET}/clean/{relative}/{uid}/"
    name = relative.rpartition("/")[2]
    return f"s3://{BUCKET}/{snapshot_of(relative, uid, name)}", f"s3://{BUCKET}/clean/{relative}/{uid}/"


def announced(event: dict[str, Any]) -> dict[str, ObjectEvent]:
    return {item.key: item for item in normalise(event) if isinstance(item, ObjectEvent)}


def check_replay(trigger: Any, event: dict[str, Any], expected: Expected, *, marker: bool) -> dict[str, Any]:
    # When the event is replayed through the real handler
    items = announced(event)
    summary: dict[str, Any] = trigger.summary(trigger.invoke(event))
    assert summary.get("batchItemFailures", []) == []

    # Then the summary lists the started keys with their data URLs, and every skip with its reason
    assert [s["key"] for s in summary["started"]] == expected.started
    for started in summary["started"]:
        item = items[started["key"]]
        assert (started["inputDataUrl"], started["outputDataUrl"]) == urls(item, marker=marker)
    assert [s["key"] for s in summary["skipped"]] == [key for key, _ in expected.skipped]
    for skipped, (_, phrase) in zip(summary["skipped"], expected.skipped, strict=True):
        assert phrase in skipped["reason"]

    # And, in object mode, a snapshot of exactly the notified version, where the run reads it
    if not marker:
        assert len(trigger.copies) == len(expected.started)
        for copied, started in zip(trigger.copies, summary["started"], strict=True):
            item = items[started["key"]]
            source = {"Bucket": BUCKET, "Key": item.key}
            if item.version_id and item.version_id != "null":
                source["VersionId"] = item.version_id
            assert copied["CopySource"] == source
            assert f"s3://{BUCKET}/{copied['Key']}" == started["inputDataUrl"]

    # And exactly one StartPipelineExecution call per started key, passing only the two data URLs
    assert len(trigger.calls) == len(expected.started)
    for call, started in zip(trigger.calls, summary["started"], strict=True):
        assert set(call) == REQUEST_FIELDS
        assert call["PipelineName"] == trigger.pipeline_name
        assert call["PipelineParameters"] == [
            {"Name": "InputDataUrl", "Value": started["inputDataUrl"]},
            {"Name": "OutputDataUrl", "Value": started["outputDataUrl"]},
            {"Name": "ProcessingVolumeSizeInGB", "Value": "30"},  # the sample uploads are small: the least
        ]
        assert re.fullmatch(r"[0-9a-f]{64}", call["ClientRequestToken"])
        assert DISPLAY_NAME.fullmatch(call["PipelineExecutionDisplayName"])
        recorded = ledger.read(call["PipelineExecutionDescription"])  # the ledger: this upload, its output
        assert recorded is not None
        assert (recorded.bucket, recorded.key, recorded.output) == (
            BUCKET,
            started["key"],
            started["outputDataUrl"],
        )

    # And the emulator holds exactly those executions, with those parameters
    executions = {e.arn: e for e in trigger.executions()}
    assert sorted(executions) == sorted(s["executionArn"] for s in summary["started"])
    for started in summary["started"]:
        assert executions[started["executionArn"]].parameters == {
            "InputDataUrl": started["inputDataUrl"],
            "OutputDataUrl": started["outputDataUrl"],
            "ProcessingVolumeSizeInGB": "30",
        }
    return summary


@pytest.mark.parametrize("name", sorted(OBJECT_MODE))
def test_replaying_each_sample_event_in_object_mode(
    trigger: Any, event: Callable[[str], dict[str, Any]], name: str
) -> None:
    # Given the trigger as events/env.json configures it (object mode)
    check_replay(trigger, event(name), OBJECT_MODE[name], marker=False)

    # And the metrics count what happened
    expected = OBJECT_MODE[name]
    assert trigger.metrics() == {
        "ExecutionsStarted": len(expected.started),
        "RecordsSkipped": len(expected.skipped),
        "StartFailures": 0,
    }


@pytest.mark.parametrize("name", sorted(MARKER_MODE))
def test_replaying_marker_events_in_marker_mode(
    trigger: Any, event: Callable[[str], dict[str, Any]], name: str
) -> None:
    # Given the trigger in marker mode: a folder is one dataset, started by its _SUCCESS object
    trigger.configure(TRIGGER_MODE="marker")
    # And the marker's folder in the bucket, written before the marker's event
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for key in ("raw/batch/part-0001.csv", "raw/batch/part-0002.csv", "raw/batch/_SUCCESS"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"a,b\n1,2\n")
    replayed = event(name)
    for record in replayed["Records"]:
        record["eventTime"] = datetime.now(UTC).isoformat()
    check_replay(trigger, replayed, MARKER_MODE[name], marker=True)

    # Then each data object of the folder was snapshotted (not the marker), under the upload's folder
    for started in MARKER_MODE[name].started:
        item = announced(replayed)[started]
        snapshot_folder = urls(item, marker=True)[0].removeprefix(f"s3://{BUCKET}/")
        assert [c["Key"] for c in trigger.copies] == [
            f"{snapshot_folder}part-0001.csv",
            f"{snapshot_folder}part-0002.csv",
        ]


def test_every_trigger_sample_event_is_replayed_by_these_tests() -> None:
    # Given the sample events a user can pass to `sam local invoke -e` (CloudFormation events are the
    # deploy function's, env.json is not an event)
    trigger_events = {
        path.name
        for path in EVENTS.glob("*.json")
        if path.name != "env.json" and "RequestType" not in json.loads(path.read_text(encoding="utf-8"))
    }
    # Then each one has its expected outcome above
    assert trigger_events == set(OBJECT_MODE)
