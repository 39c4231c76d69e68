"""The snapshot a run reads: exactly the upload's bytes, whatever happens to the key afterwards.

Marker mode against the emulator's versioned S3 (real objects, real versions, real copies); the
unversioned and over-5-GiB cases with the S3 client stubbed (no network).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from trigger import snapshot
from trigger.config import Config, TriggerMode
from trigger.events import Action, ObjectEvent, Skip
from trigger.routing import Dataset, route

from local.emulator import Emulator

BUCKET = "example-data-bucket"


def digest(relative: str) -> str:
    """The snapshot folder of the dataset at ``relative`` under raw/: its key's SHA-256, 32 hex digits."""
    return hashlib.sha256(f"raw/{relative}".encode()).hexdigest()[:32]


def dataset(key: str, config: Config, **fields: Any) -> Dataset:
    item = ObjectEvent("sqs/s3", "ObjectCreated:Put", Action.CREATED, BUCKET, key, **fields)
    outcome = route(item, config)
    assert isinstance(outcome, Dataset)
    return outcome


def test_marker_mode_snapshots_the_folder_as_it_was_when_the_marker_arrived(aws: Emulator) -> None:
    # Given a versioned bucket with a folder of two data objects and its marker
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key="raw/batch/a.csv", Body=b"a,1\n")
    s3.put_object(Bucket=BUCKET, Key="raw/batch/sub/b.csv", Body=b"b,1\n")
    marker = s3.put_object(Bucket=BUCKET, Key="raw/batch/_SUCCESS", Body=b"")
    arrived = datetime.now(UTC).isoformat()
    # And, after the marker arrived, one object overwritten, one added and one deleted
    time.sleep(1.1)  # S3's LastModified has second resolution
    s3.put_object(Bucket=BUCKET, Key="raw/batch/a.csv", Body=b"a,2 (later)\n")
    s3.put_object(Bucket=BUCKET, Key="raw/batch/late.csv", Body=b"late\n")
    s3.delete_object(Bucket=BUCKET, Key="raw/batch/sub/b.csv")

    # When the marker's snapshot is taken
    config = Config("p", mode=TriggerMode.MARKER)
    folder = dataset(
        "raw/batch/_SUCCESS",
        config,
        version_id=marker["VersionId"],
        sequencer="00A1",
        event_time=arrived,
    )
    assert snapshot.take(s3, folder, retry=False) == len(b"a,1\n") + len(b"b,1\n")  # the bytes it holds

    # Then the snapshot holds the folder's objects as they were then (not the marker, nothing later)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=folder.snapshot_key)["Contents"]
    held = {
        o["Key"].removeprefix(folder.snapshot_key): s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
        for o in listed
    }
    assert held == {"a.csv": b"a,1\n", "sub/b.csv": b"b,1\n"}
    assert folder.input_url == f"s3://{BUCKET}/snapshot/{digest('batch')}/00A1/"
    assert folder.output_url == f"s3://{BUCKET}/clean/batch/00A1/"


def test_a_marker_whose_folder_holds_no_data_is_a_skip_saying_so(aws: Emulator) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    marker = s3.put_object(Bucket=BUCKET, Key="raw/empty/_SUCCESS", Body=b"")
    folder = dataset(
        "raw/empty/_SUCCESS",
        Config("p", mode=TriggerMode.MARKER),
        version_id=marker["VersionId"],
        sequencer="01",
    )
    outcome = snapshot.take(s3, folder, retry=False)
    assert isinstance(outcome, Skip)
    assert "holds no data objects" in outcome.reason


@pytest.fixture
def offline_s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens: an unstubbed call never leaves
    }.items():
        monkeypatch.setenv(name, value)
    return boto3.session.Session().client("s3")


def test_an_unversioned_upload_is_copied_only_if_unchanged_and_an_overwrite_is_a_skip(
    offline_s3: Any,
) -> None:
    # Given an upload to an unversioned bucket (no version ID: the notified eTag pins its bytes)
    upload = dataset("raw/a.csv", Config("p"), etag="0123abcd", sequencer="0B", size=4)
    with Stubber(offline_s3) as s3:
        # When S3 answers that the object no longer has that eTag (overwritten before the copy)
        s3.add_client_error(
            "copy_object",
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            412,
            expected_params={
                "Bucket": BUCKET,
                "Key": f"snapshot/{digest('a.csv')}/0B/a.csv",
                "CopySource": {"Bucket": BUCKET, "Key": "raw/a.csv"},
                "CopySourceIfMatch": "0123abcd",
                "TaggingDirective": "REPLACE",
            },
        )
        # and no earlier attempt made the snapshot
        s3.add_client_error("head_object", "404", "Not Found", 404)
        outcome = snapshot.take(offline_s3, upload, retry=False)

    # Then the upload is a skip saying its bytes are gone (never a run on the newer file)
    assert isinstance(outcome, Skip)
    assert "overwritten before its snapshot was taken" in outcome.reason
    assert outcome.unprocessable


def test_an_object_over_5_gib_is_copied_with_a_multipart_copy(
    offline_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an upload of 6 GiB (CopyObject's limit is 5 GiB)
    upload = dataset("raw/big.bin", Config("p"), version_id="v9", sequencer="0C", size=6 * 1024**3)
    copies: list[dict[str, Any]] = []
    monkeypatch.setattr(
        offline_s3,
        "copy",
        lambda source, bucket, key, **kw: copies.append({"source": source, "key": key, **kw}),
    )

    # When the snapshot is taken, Then boto3's managed (multipart) copy makes it, of exactly that version
    with Stubber(offline_s3):  # and no single CopyObject is sent
        assert snapshot.take(offline_s3, upload, retry=False) == 6 * 1024**3
    (copied,) = copies
    assert copied["source"] == {"Bucket": BUCKET, "Key": "raw/big.bin", "VersionId": "v9"}
    assert copied["key"] == f"snapshot/{digest('big.bin')}/0C/big.bin"
    assert copied["Config"].multipart_threshold == snapshot.MAX_COPY_OBJECT_BYTES


@pytest.mark.parametrize(
    ("listed", "why"),
    [
        ("raw/batch/../escape.csv", "'..' path segment"),
        ("raw/batch/sub//b.csv", "empty"),
        ("raw/batch/%2e%2e/escape.csv", "'..' path segment"),
        ("raw/batch/bell\x07.csv", "control characters"),
    ],
)
def test_a_marker_whose_folder_holds_an_unsafe_key_is_skipped_saying_which(
    offline_s3: Any, listed: str, why: str
) -> None:
    # Given a marker on an unversioned bucket whose folder lists a good object and an unsafe key
    folder = dataset("raw/batch/_SUCCESS", Config("p", mode=TriggerMode.MARKER), etag="m", sequencer="0B")
    stub = Stubber(offline_s3)
    stub.add_response(
        "list_objects_v2",
        {
            "Contents": [
                {"Key": "raw/batch/a.csv", "ETag": '"a"', "Size": 4},
                {"Key": listed, "ETag": '"x"', "Size": 4},
                {"Key": "raw/batch/_SUCCESS", "ETag": '"m"', "Size": 0},
            ]
        },
        expected_params={"Bucket": BUCKET, "Prefix": "raw/batch/"},
    )

    # When its snapshot is taken
    with stub:
        outcome = snapshot.take(offline_s3, folder, retry=False)

    # Then nothing is copied (no CopyObject stubbed) and the marker is a WARNING skip naming the key
    stub.assert_no_pending_responses()
    assert isinstance(outcome, Skip)
    assert outcome.unprocessable
    assert repr(listed) in outcome.reason
    assert why in outcome.reason
