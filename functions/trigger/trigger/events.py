"""Every event shape the trigger accepts, normalised into object notifications (or skips).

Accepted: S3 event notifications (any number of records), the same delivered through SQS (each
message body one S3 notification, possibly the ``s3:TestEvent``), Amazon EventBridge events from S3
(``Object Created``/``Object Deleted``, directly or through SQS), and the ``s3:TestEvent``.

Keys: an S3 *notification* URL-encodes the key (``+`` for a space, ``%2B`` for a plus, UTF-8
%-escapes), so each record's key is decoded with ``unquote_plus``. An *EventBridge* event carries the
key as it is (not encoded), so it is used verbatim: Powertools' ``S3EventBridgeNotificationObject.key``
unquotes it anyway, which would turn a real ``+`` into a space, so the raw field is read instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent, SQSRecord
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from trigger.errors import UnsupportedEvent

TEST_EVENT = "s3:TestEvent"


class Action(StrEnum):
    CREATED = "created"
    REMOVED = "removed"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """One S3 object notification, whatever envelope it came in. ``key`` is the real (decoded) key."""

    source: str  # s3 | eventbridge, prefixed "sqs/" when it came through a queue
    event_name: str
    action: Action
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    sequencer: str | None = None
    size: int | None = None  # bytes, as the notification reports it
    event_time: str | None = None  # ISO 8601, when S3 finished the request
    rerun: str | None = None  # `s3sm backfill --rerun`: a deliberate new run of the same version

    @property
    def identity(self) -> str | None:
        """What tells this upload of the key from another upload of it, or None if the record lacks it.

        The version ID when the bucket is versioned; otherwise the eTag and the sequencer together (a
        re-upload of identical content has the same eTag but a new sequencer). S3 reports ``"null"``
        for objects written while versioning was off or suspended: that is no identity. A backfill's
        ``--rerun`` stamp is part of it, so a deliberate rerun is a new upload (token and folder).
        """
        if self.version_id and self.version_id != "null":
            found = f"versionId={self.version_id}"
        else:
            fields = (("eTag", self.etag), ("sequencer", self.sequencer))
            found = ";".join(f"{name}={value}" for name, value in fields if value)
        if not found:
            return None
        return f"{found};rerun={self.rerun}" if self.rerun else found


@dataclass(frozen=True, slots=True)
class Skip:
    """A record that starts nothing, and why. ``key`` is None when the record names no object.

    ``unprocessable``: the record may announce a real upload that this trigger cannot run (malformed,
    or a key no pipeline input can name safely), as opposed to one that is not its to run (outside the
    prefix, a delete, a folder placeholder). Those are logged at WARNING, so that they can be alarmed on.
    """

    key: str | None
    reason: str
    bucket: str | None = None
    unprocessable: bool = False


class _Malformed(ValueError):
    """A record lacks a field or has one of the wrong type (turned into a Skip, never raised out)."""


def normalise(event: object) -> list[ObjectEvent | Skip]:
    """The object notifications in ``event``, in order; raises UnsupportedEvent for any other event."""
    if not isinstance(event, dict):
        raise UnsupportedEvent(f"expected an S3, SQS or EventBridge event object, got {type(event).__name__}")
    items = _normalise(event, via="")
    if items is None:
        fields = ", ".join(sorted(map(str, event))[:8]) or "none"
        raise UnsupportedEvent(
            "not an S3 notification, SQS-wrapped S3 notification or EventBridge S3 event "
            f"(top-level fields: {fields})"
        )
    return items


def _normalise(event: dict[str, Any], via: str) -> list[ObjectEvent | Skip] | None:
    if event.get("Event") == TEST_EVENT:
        bucket = event.get("Bucket")
        reason = f"{TEST_EVENT}: S3 sends it once when the bucket notification is set up; nothing to process"
        return [Skip(None, reason, bucket if isinstance(bucket, str) else None)]
    if event.get("source") == "aws.s3" and "detail-type" in event:
        return [_eventbridge(S3EventBridgeNotificationEvent(event), via)]
    records = event.get("Records")
    if not isinstance(records, list):
        return None
    items: list[ObjectEvent | Skip] = []
    for index, record in enumerate(records):
        source = record.get("eventSource") if isinstance(record, dict) else None
        if source == "aws:s3":
            items.append(_s3_record(S3EventRecord(record), via))
        elif source == "aws:sqs" and not via:
            items.extend(_sqs_record(record))
        else:
            items.append(Skip(None, f"record {index}: unsupported event source {source!r}"))
    return items


def _sqs_record(raw: dict[str, Any]) -> list[ObjectEvent | Skip]:
    message = f"SQS message {raw.get('messageId')!r}"
    try:
        body = SQSRecord(raw).json_body
    except (KeyError, TypeError, ValueError, RecursionError) as err:  # no body, not a string, not JSON
        return [Skip(None, f"{message}: body is not JSON ({_describe(err)})", unprocessable=True)]
    items = _normalise(body, via="sqs/") if isinstance(body, dict) else None
    if items is None:
        return [
            Skip(
                None, f"{message}: body is not an S3 notification or EventBridge S3 event", unprocessable=True
            )
        ]
    return items


def _s3_record(record: S3EventRecord, via: str) -> ObjectEvent | Skip:
    raw_key: str | None = None
    try:
        name = _text(record.event_name, "eventName")
        bucket = _text(record.s3.bucket.name, "s3.bucket.name")
        obj = record.s3.get_object
        raw_key = _text(obj.key, "s3.object.key")
        version_id, etag, sequencer = (
            _optional(obj.get(field), f"s3.object.{field}") for field in ("versionId", "eTag", "sequencer")
        )
        size = _size(obj.get("size"))
        event_time = _lenient(record.get("eventTime"))
    except (_Malformed, KeyError, TypeError, AttributeError) as err:
        return Skip(raw_key, f"malformed S3 record: {_describe(err)}", unprocessable=True)
    try:
        key = unquote_plus(raw_key, errors="strict")
    except UnicodeDecodeError:
        return Skip(
            raw_key,
            "key is not URL-encoded UTF-8, as S3 encodes keys in notifications",
            bucket,
            unprocessable=True,
        )
    short = name.removeprefix("s3:")
    action = _action(short, created="ObjectCreated", removed="ObjectRemoved")
    return ObjectEvent(f"{via}s3", short, action, bucket, key, version_id, etag, sequencer, size, event_time)


def _eventbridge(event: S3EventBridgeNotificationEvent, via: str) -> ObjectEvent | Skip:
    key: str | None = None
    try:
        name = _text(event.detail_type, "detail-type")
        bucket = _text(event.detail.bucket.name, "detail.bucket.name")
        obj = event.detail["object"]  # the raw mapping: this key is NOT URL-encoded (see module doc)
        key = _text(obj["key"], "detail.object.key")
        version_id = _optional(obj.get("version-id"), "detail.object.version-id")
        etag = _optional(obj.get("etag", obj.get("eTag")), "detail.object.etag")
        sequencer = _optional(obj.get("sequencer"), "detail.object.sequencer")
        size = _size(obj.get("size"))
        event_time = _lenient(event.get("time"))
        rerun = _optional(event.detail.get("rerun"), "detail.rerun")  # only `s3sm backfill --rerun` sets it
    except (_Malformed, KeyError, TypeError, AttributeError) as err:
        return Skip(key, f"malformed EventBridge S3 event: {_describe(err)}", unprocessable=True)
    action = _action(name, created="Object Created", removed="Object Deleted")
    return ObjectEvent(
        f"{via}eventbridge", name, action, bucket, key, version_id, etag, sequencer, size, event_time, rerun
    )


def _action(name: str, *, created: str, removed: str) -> Action:
    if name.startswith(created):
        return Action.CREATED
    if name.startswith(removed):
        return Action.REMOVED
    return Action.OTHER


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{field} must be a non-empty string")
    return _unicode(value, field)


def _optional(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Malformed(f"{field} must be a string")
    return _unicode(value, field)


def _lenient(value: object) -> str | None:
    """An informative field (the event time): a usable string, or None; never a reason to skip."""
    if not isinstance(value, str) or not value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _size(value: object) -> int | None:
    """The object's size in bytes, or None when the record gives none usable (it only picks the copy
    method: an unknown size is tried with CopyObject first, so a bad value never costs an upload)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        size = int(value)
    except ValueError:
        return None
    return size if size >= 0 else None


def _unicode(value: str, field: str) -> str:
    """``value``, if it is valid Unicode: JSON admits lone surrogates ("\\ud800"), which S3 never sends."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _Malformed(f"{field} is not valid Unicode (a lone surrogate)") from err
    return value


def _describe(err: Exception) -> str:
    if isinstance(err, KeyError):
        return f"missing field {err.args[0]!r}"
    return str(err) or type(err).__name__


__all__ = ["TEST_EVENT", "Action", "ObjectEvent", "Skip", "normalise"]
