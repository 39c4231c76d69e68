"""The snapshot: a server-side copy of exactly the upload's bytes, which the pipeline then reads.

SageMaker's S3 inputs cannot pin an object version, and a processing job starts minutes after its
trigger: a key overwritten in between would hand the run the newer file. So before the start the
trigger copies the upload under the snapshot prefix (``Dataset.snapshot_key``), which nothing else
writes and a lifecycle rule expires:

- object mode: the notification's object version (``CopySource`` with ``VersionId``); on a bucket
  without versioning, the object only if it still has the notified eTag (``CopySourceIfMatch``);
- marker mode: every object of the marker's folder as it was when the marker arrived: from a versioned
  bucket, each key's newest version not later than the marker's event time; otherwise what the listing
  shows, each copied only if unchanged since it was listed.

CopyObject handles objects up to 5 GiB; a larger one goes through boto3's managed copy (s3transfer's
multipart UploadPartCopy). What a failed copy means is decided once, in :func:`classify`: the object
gone or overwritten (precondition failed) can never succeed, so the upload is a logged skip saying
why; access denied (the role, or a KMS key it may not use) will not pass by waiting but may once access
is granted, so it is :class:`~trigger.errors.Rejected` (the dead-letter queue within minutes, for a
redrive); anything else (throttling, 5xx, timeouts, errors not known to be final) is
:class:`~trigger.errors.Transient` and the upload is retried through the queue.

An earlier attempt for the same upload may have made the snapshot already (the start failed after
it): a retry, or a copy refused because the source changed since, first looks for the snapshot and
uses it.

Time: a batch must never time out half-way (its messages would then wait the queue's whole
VisibilityTimeout). Before each copy, :class:`Budget` compares the invocation's time left with
:func:`copy_seconds` for that object plus what must follow it (the start, answering the batch): a
copy that would not fit is not begun, its upload is :class:`~trigger.errors.Transient` and waits
out its backoff like a refusal, and a later invocation with a fresh clock (where the copies already
made are found and reused) carries on. The estimate assumes a CopyObject copies at least 64 MiB/s
(5 GiB within ``S3_CONFIG``'s 80-second read timeout). Over 5 GiB, s3transfer copies 512 MiB parts
10 at a time, so the budget is 5 s + size / 640 MiB/s: with the template's 300-second Timeout an
object of up to about 170 GiB fits (about 540 GiB at Lambda's 900-second maximum). An object that
would not fit even in a fresh invocation is :class:`~trigger.errors.Rejected` (to the dead-letter
queue within minutes) with a reason saying to raise the function's Timeout, then redrive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contract import volume
from contract.datafiles import not_data
from trigger.errors import Rejected, Transient
from trigger.events import ObjectEvent, Skip
from trigger.routing import MAX_FILE_NAME_BYTES, MAX_KEY_BYTES, Dataset, key_problem

MAX_COPY_OBJECT_BYTES = 5 * 1024**3  # CopyObject's limit; larger objects need a multipart copy
MULTIPART_CHUNK_BYTES = 512 * 1024**2  # s3transfer raises it further to stay within 10,000 parts
MULTIPART_CONCURRENCY = 10  # s3transfer's default max_concurrency: parts copied at once
COPY_BYTES_PER_SECOND = 64 * 1024**2  # the least a CopyObject (or one part copy) is assumed to copy
COPY_OVERHEAD_SECONDS = 5  # a copy's own round trips (and a HeadObject first on a redelivery)
_GONE = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "NotFound", "404"})
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "InvalidObjectState", "403"})
_CHANGED = frozenset({"PreconditionFailed", "412"})


@dataclass(frozen=True, slots=True)
class Source:
    """One object to copy: its key, and what pins its bytes (a version ID, else an eTag)."""

    key: str
    version_id: str | None
    etag: str | None
    size: int | None


def copy_seconds(size: int | None) -> float:
    """The time one copy of ``size`` bytes is budgeted (an unknown size counts as 5 GiB)."""
    size = MAX_COPY_OBJECT_BYTES if size is None else size
    rate = COPY_BYTES_PER_SECOND * (MULTIPART_CONCURRENCY if size > MAX_COPY_OBJECT_BYTES else 1)
    return COPY_OVERHEAD_SECONDS + size / rate


@dataclass(frozen=True, slots=True)
class Budget:
    """The invocation's clock: whether a step still fits in the time left (see the module doc).

    ``time_left``: seconds left (from the Lambda context); ``total``: what was left when the
    invocation began (what a fresh invocation has); ``reserve``: kept for answering the batch
    (postponing the messages that wait).
    """

    time_left: Callable[[], float]
    total: float
    reserve: float = 10.0

    @classmethod
    def of(cls, remaining_millis: Callable[[], int]) -> Budget:
        return cls(lambda: remaining_millis() / 1000, remaining_millis() / 1000)

    def check(self, key: str, seconds: float, what: str) -> None:
        """Raise Transient when ``seconds`` more would not fit; Rejected when they never would."""
        need = seconds + self.reserve
        if need > self.total:
            raise Rejected(
                key,
                f"{what} is budgeted {need:.0f} s, more than a whole invocation has ({self.total:.0f} s): "
                "raise the trigger function's Timeout (at most 900 s), then redrive it",
            )
        left = self.time_left()
        if left < need:
            raise Transient(key, f"{what} is budgeted {need:.0f} s and {left:.0f} s are left: next time")


def classify(err: ClientError | BotoCoreError, what: str) -> str | None:
    """Why ``err`` (from S3) can never succeed, or None when it may pass and is worth retrying."""
    if not isinstance(err, ClientError):
        return None  # timeouts, refused connections: botocore already retried, the queue retries more
    code = str(err.response.get("Error", {}).get("Code", ""))
    if code == "NoSuchBucket":
        return f"{what} cannot be read: its bucket does not exist ({code})"
    if code in _GONE:  # S3 does not say whether the object (version) ever existed: say only what is known
        return (
            f"{what} is not in the bucket: never uploaded, or deleted before its snapshot was taken ({code})"
        )
    if code in _DENIED:
        return (
            f"{what} cannot be read: {code} (the trigger's role needs s3:GetObject/GetObjectVersion on it; "
            "an SSE-KMS object also needs kms:Decrypt on its KMS key, which the stack grants for "
            "DataKmsKeyArn only; S3 also answers so for a key deleted before its snapshot, to a role that "
            "may not list it)"
        )
    if code in _CHANGED:
        return (
            f"{what} was overwritten before its snapshot was taken ({code}) and the bucket keeps no "
            "versions: that upload's bytes are gone"
        )
    return None


def take(
    s3: Any,
    dataset: Dataset,
    *,
    retry: bool,
    budget: Budget | None = None,
    then: float = 0,
    kms_key: str | None = None,
) -> int | Skip:
    """Make ``dataset``'s snapshot. Its size in bytes when it is in place; a Skip when it never can be
    (nothing copied when the data cannot fit the processing volume its route sizes: ``contract.volume``).

    Raises Transient when it failed for a reason that passes, or when a copy would not fit in the
    ``budget`` with ``then`` seconds kept for what follows (the start). ``retry``: an earlier attempt
    may have made (part of) it already, so each copy looks for its target first. ``kms_key``: the
    snapshot is encrypted with this customer managed key (SSE-KMS) instead of the bucket's default.
    """
    src = dataset.source

    def unprocessable(reason: str) -> Skip:
        return Skip(src.key, reason, src.bucket, unprocessable=True)

    try:
        if dataset.source_folder is None:
            source = _sized(s3, src)
            why = not_data(dataset.relative, source.size)
            if why:  # the notification gave no size, and the object is empty
                return Skip(src.key, f"not data, nothing to run: {why}", src.bucket)
            pairs = [(source, dataset.snapshot_key)]
        else:
            pairs = list(_folder_pairs(s3, dataset))
        folder = dataset.source_folder or ""
        if folder:
            for source, _ in pairs:  # an unsafe key fails the folder, whether it is data or not
                problem = key_problem(source.key.removeprefix(folder))
                if problem:
                    return unprocessable(_unnamable(source.key, problem))
            pairs = [(s, t) for s, t in pairs if not_data(s.key.removeprefix(folder), s.size) is None]
            if not pairs:
                return unprocessable(f"the marker's folder {folder!r} holds no data objects")
            for source, _ in pairs:  # what is not data stays out; the rest is downloaded by the job
                problem = _too_long_for_a_file(source.key.removeprefix(folder))
                if problem:
                    return unprocessable(_unnamable(source.key, problem))
        for source, target in pairs:
            if len(target.encode("utf-8")) > MAX_KEY_BYTES:
                return unprocessable(
                    f"snapshot key for {source.key!r} is longer than S3's {MAX_KEY_BYTES}-byte limit"
                )
        size = sum(source.size or 0 for source, _ in pairs)
        too_large = volume.problem(size) if dataset.sizes_volume else None
        if too_large:
            return unprocessable(f"not run: {too_large}")
        for source, target in pairs:
            if retry and _exists(s3, src.bucket, target):
                continue
            if budget is not None:
                budget.check(
                    src.key, copy_seconds(source.size) + then, f"the copy of s3://{src.bucket}/{source.key}"
                )
            _copy(s3, src.bucket, source, target, retry=retry, kms_key=kms_key)
    except (ClientError, BotoCoreError) as err:
        failed = _failed_key(err, src.key)
        pinned = (
            f" (version {src.version_id})"
            if failed == src.key and src.version_id not in (None, "null")
            else ""
        )
        what = f"s3://{src.bucket}/{failed}{pinned}"
        reason = classify(err, what)
        if reason is None:
            raise Transient(src.key, f"snapshot failed, will retry: {err}") from err
        if isinstance(err, ClientError) and str(err.response.get("Error", {}).get("Code", "")) in _DENIED:
            # Access can be granted later (a key policy, a role): kept for a redrive, never dropped
            raise Rejected(src.key, f"{reason}; redrive it once access is fixed") from err
        return unprocessable(reason)
    return size


def _sized(s3: Any, src: ObjectEvent) -> Source:
    """The notified object as a copy source, with its size (HeadObject when the notification had none)."""
    version = src.version_id if src.version_id and src.version_id != "null" else None
    size = src.size
    if size is None:
        pinned = {"VersionId": version} if version else ({"IfMatch": src.etag} if src.etag else {})
        try:
            size = int(s3.head_object(Bucket=src.bucket, Key=src.key, **pinned)["ContentLength"])
        except ClientError as err:
            err.source_key = src.key  # type: ignore[attr-defined]
            raise
    return Source(src.key, version, src.etag, size)


def _too_long_for_a_file(relative: str) -> str | None:
    """Why an object of a marker's folder cannot be downloaded where the job reads it: a path segment
    longer than a file name holds."""
    long = next((p for p in relative.split("/") if len(p.encode("utf-8")) > MAX_FILE_NAME_BYTES), None)
    if long is None:
        return None
    return f"a path segment of {len(long.encode('utf-8'))} bytes; a file name holds {MAX_FILE_NAME_BYTES}"


def _unnamable(key: str, problem: str) -> str:
    return (
        f"the marker's folder holds {key!r}, which no snapshot key may name ({problem}): the folder is "
        "not run; rename or remove that object, then upload the marker again"
    )


def _failed_key(err: Exception, default: str) -> str:
    return str(getattr(err, "source_key", default))


def _copy(s3: Any, bucket: str, source: Source, target: str, *, retry: bool, kms_key: str | None) -> None:
    copy_source: dict[str, str] = {"Bucket": bucket, "Key": source.key}
    if source.version_id:
        copy_source["VersionId"] = source.version_id
    extra = {} if source.version_id or not source.etag else {"CopySourceIfMatch": source.etag}
    if kms_key:
        extra |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key}
    try:
        if source.size is not None and source.size > MAX_COPY_OBJECT_BYTES:
            _managed_copy(s3, bucket, copy_source, target, extra)
        else:
            # TaggingDirective REPLACE: the snapshot carries no tags (no s3:GetObjectTagging needed).
            s3.copy_object(
                Bucket=bucket, Key=target, CopySource=copy_source, TaggingDirective="REPLACE", **extra
            )
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        message = str(err.response.get("Error", {}).get("Message", ""))
        if code == "InvalidRequest" and "copy source is larger" in message:  # size unknown, over 5 GiB
            _managed_copy(s3, bucket, copy_source, target, extra)
            return
        if (code in _GONE or code in _CHANGED) and not retry and _exists(s3, bucket, target):
            return  # an earlier attempt (a direct re-invocation) made it before the source changed
        err.source_key = source.key  # type: ignore[attr-defined]
        raise


def _managed_copy(
    s3: Any, bucket: str, copy_source: dict[str, str], target: str, conditions: dict[str, str]
) -> None:
    from boto3.s3.transfer import TransferConfig  # s3transfer: only for the rare object over 5 GiB

    config = TransferConfig(
        multipart_threshold=MAX_COPY_OBJECT_BYTES, multipart_chunksize=MULTIPART_CHUNK_BYTES
    )
    s3.copy(copy_source, bucket, target, ExtraArgs=conditions or None, Config=config)


def _exists(s3: Any, bucket: str, key: str) -> bool:
    """Whether ``key`` (a snapshot) is there. A caller without s3:ListBucket on the key's prefix (the
    trigger's role lists only the raw prefix) gets 403 for a missing key, not 404: both mean "copy it"
    (a real access problem then shows on the copy itself)."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if str(err.response.get("Error", {}).get("Code", "")) in _GONE | {"403", "AccessDenied", "Forbidden"}:
            return False
        raise
    return True


def _folder_pairs(s3: Any, dataset: Dataset) -> Iterator[tuple[Source, str]]:
    """Each object of the marker's folder as of the marker's arrival, with its snapshot key."""
    src, folder = dataset.source, str(dataset.source_folder)
    marker_key = src.key
    as_of = _parse_time(src.event_time)
    if src.version_id and src.version_id != "null":
        newest: dict[str, tuple[tuple[datetime, bool], dict[str, Any] | None]] = {}
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=src.bucket, Prefix=folder)
        for page in pages:
            entries = [(v, False) for v in page.get("Versions", [])]
            entries += [(d, True) for d in page.get("DeleteMarkers", [])]
            for entry, deleted in entries:
                key = str(entry["Key"])
                if as_of is not None and entry["LastModified"] > as_of:
                    continue  # written after the marker arrived
                # Newest first within a key: a later entry of the same second does not replace it.
                rank = (entry["LastModified"], bool(entry.get("IsLatest")))
                if key not in newest or rank > newest[key][0]:
                    newest[key] = (rank, None if deleted else entry)
        for key in sorted(newest):
            version = newest[key][1]
            if version is None or key == marker_key or key.endswith("/"):
                continue  # deleted before the marker arrived, the marker itself, a folder placeholder
            yield (
                Source(key, str(version["VersionId"]), _etag(version), _bytes(version)),
                (dataset.snapshot_key + key.removeprefix(folder)),
            )
        return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=src.bucket, Prefix=folder):
        for entry in page.get("Contents", []):
            key = str(entry["Key"])
            if key == marker_key or key.endswith("/"):
                continue
            yield (
                Source(key, None, _etag(entry), _bytes(entry)),
                dataset.snapshot_key + key.removeprefix(folder),
            )


def _bytes(entry: dict[str, Any]) -> int | None:
    size = entry.get("Size")
    return int(size) if size is not None else None


def _etag(entry: dict[str, Any]) -> str | None:
    etag = entry.get("ETag")
    return str(etag).strip('"') if etag else None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


__all__ = ["MAX_COPY_OBJECT_BYTES", "Budget", "Source", "classify", "copy_seconds", "take"]
