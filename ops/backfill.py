"""``s3sm backfill``: run objects already in the bucket, through the same queue, routes and idempotency
token as a live upload.

Each object under PREFIX is listed (paginated: the latest versions from ``ListObjectVersions`` on a
versioned bucket, ``ListObjectsV2`` otherwise), kept if its last-modified time lies between ``since``
and ``until``, and judged:

- ``no route``: no route of ``routes.yaml`` matches its key (:meth:`contract.routes.Routes.first`);
- ``skip``: the trigger's own rules would skip it (:func:`trigger_skip`: a folder placeholder, and
  whatever else the trigger refuses to run);
- ``already ran``: the ledger (:mod:`ops.uploads`) names this bucket, key and version (its eTag on an
  unversioned bucket), in any routed pipeline;
- ``start``: sent to the stack's upload queue as the "Object Created" event S3 sends to EventBridge
  (:func:`message`), ``SendMessageBatch`` 10 at a time. The trigger takes it from there at the queue's
  pace. Sending the same backfill twice starts nothing twice: its messages carry the same version (or
  eTag), so the same token. A listing has no sequencer, though: on an unversioned bucket a backfilled
  object's token differs from its live upload's (eTag and sequencer), and on a versioned bucket its
  output folder does. So backfill what is not also waiting in the upload queue or the dead-letter
  queue: ``s3sm status`` shows both (docs/operations.md).

``rerun`` (a UTC timestamp) sends the objects that already ran too, each message with
``detail.rerun``: the trigger folds it into the upload's identity, so each gets a new token and a new
output folder. One timestamp per backfill, so repeating the same message starts nothing twice either.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trigger.config import Config
from trigger.events import Skip, normalise
from trigger.routing import route as trigger_route

from contract.routes import Routes
from ops.retry import parse_since
from ops.target import OpsError, Target, explain, trigger_settings
from ops.text import COMMAND
from ops.uploads import Run, identities, identity, routed_pipelines, runs

REASON = "s3sm backfill"  # detail.reason of the events it sends (S3's own say PutObject, CopyObject...)
BATCH = 10  # SendMessageBatch's most entries
ATTEMPTS = 3  # sends of an entry SQS failed on its own side (SenderFault false) before it is reported
START, RERUN, RAN, SKIP, NO_ROUTE = "start", "rerun", "already ran", "skip", "no route"


def parse_time(flag: str, text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``6h``, ``2d`` ago or an ISO 8601 time, as ``s3sm retry --failed-since`` reads them."""
    try:
        return parse_since(text, now)
    except OpsError:
        raise OpsError(f"{flag} {text!r}: expected 30m, 6h, 2d or an ISO 8601 time") from None


@dataclass
class Item:
    """One object and what the backfill does with it."""

    key: str
    version_id: str | None
    etag: str | None
    size: int
    last_modified: str
    verdict: str = ""
    route: int | None = None  # the route's number in routes.yaml (from 1)
    pipeline: str | None = None
    why: str | None = None  # skip: the trigger's reason; already ran / rerun: the execution before

    @property
    def sent(self) -> bool:
        return self.verdict in (START, RERUN)


@dataclass
class Outcome:
    """What one backfill found and sent."""

    bucket: str
    prefix: str
    versioned: bool
    dry_run: bool
    rerun: str | None
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((START, RERUN, RAN, SKIP, NO_ROUTE), 0)
    )
    batches: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # entries SQS did not take
    items: list[Item] = field(default_factory=list)

    @property
    def listed(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def message(
    item: Item, bucket: str, *, region: str, account: str, partition: str, rerun: str | None
) -> dict[str, Any]:
    """S3's EventBridge "Object Created" event for ``item``, as the upload queue receives live ones.

    ``time`` is the object's last-modified time (when S3 finished the upload); the eTag loses the
    quotes S3's listings put around it, as S3's events carry it. The event ID is derived from the
    object version (and the rerun), so one object version is one event however often it is sent."""
    obj: dict[str, Any] = {"key": item.key, "size": item.size}
    if item.etag:
        obj["etag"] = item.etag
    if item.version_id and item.version_id != "null":
        obj["version-id"] = item.version_id
    detail: dict[str, Any] = {"version": "0", "bucket": {"name": bucket}, "object": obj, "reason": REASON}
    if rerun:
        detail["rerun"] = rerun
    name = json.dumps([bucket, *identity(bucket, item.key, item.version_id, item.etag), rerun])
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": item.last_modified,
        "region": region,
        "resources": [f"arn:{partition}:s3:::{bucket}"],
        "detail": detail,
    }


def trigger_skip(event: dict[str, Any], stack: Config) -> str | None:
    """Why the trigger would skip ``event`` (its own parser and rules, with the stack's settings and
    routes), or None when it would run it: the one place the backfill asks the trigger."""
    (item,) = normalise(event)
    if isinstance(item, Skip):
        return item.reason
    outcome = trigger_route(item, stack)
    return outcome.reason if isinstance(outcome, Skip) else None


class Backfill:
    """One backfill of a prefix of the stack's bucket (see the module's doc)."""

    def __init__(
        self,
        target: Target,
        routes: Routes,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        rerun: str | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.target, self.routes = target, routes
        self.since, self.until, self.rerun, self.say = since, until, rerun, say
        self.bucket = target.output("DataBucketName")
        self.s3 = target.client("s3")
        self.sqs = target.client("sqs")
        self.stack = trigger_settings(target, routes)
        self.pipelines = routed_pipelines(target, routes)

    def run(self, prefix: str, *, dry_run: bool) -> Outcome:
        self._check(prefix)
        queue = self.target.output("UploadQueueUrl")
        ledger = self._ledger()
        versioned = self._versioned()
        outcome = Outcome(self.bucket, prefix, versioned, dry_run, self.rerun)
        account = queue.rstrip("/").split("/")[-2]
        where = {"region": self.target.region, "account": account, "partition": self.sqs.meta.partition}
        waiting: list[tuple[Item, dict[str, Any]]] = []
        for page in self._pages(prefix, versioned):
            for item in page:
                event = message(item, self.bucket, **where, rerun=self.rerun)
                self._judge(item, event, ledger)
                outcome.counts[item.verdict] += 1
                outcome.items.append(item)
                if dry_run:
                    self.say(_line(item))
                elif item.sent:
                    waiting.append((item, event))
                    if len(waiting) == BATCH:
                        self._send(queue, waiting, outcome)
                        waiting = []
            if not dry_run:
                if waiting:
                    self._send(queue, waiting, outcome)
                    waiting = []
                self.say(_progress(outcome))
        return outcome

    def _check(self, prefix: str) -> None:
        routed = self.routes.prefixes()
        if not any(p.startswith(prefix) or prefix.startswith(p) for p in routed):
            raise OpsError(
                f"{prefix!r} lies under no route (routed prefixes: {', '.join(routed)}): nothing to backfill"
            )

    def _call(self, doing: str, call: Callable[..., Any], **params: Any) -> Any:
        try:
            return call(**params)
        except (ClientError, BotoCoreError) as exc:
            raise explain(exc, doing) from exc

    def _ledger(self) -> dict[tuple[str, ...], Run]:
        """Each object version a routed pipeline ran, with its newest run (executions created since
        ``since`` only: a run of an object starts after the object was last modified)."""
        found: dict[tuple[str, ...], Run] = {}
        for run in runs(self.target, self.pipelines, since=self.since, note=self.say):
            for name in identities(run.upload):
                found.setdefault(name, run)
        return found

    def _versioned(self) -> bool:
        """Whether the bucket keeps versions (``Enabled``, or ``Suspended`` with versions kept)."""
        answer = self._call(
            f"reading the versioning of bucket {self.bucket}",
            self.s3.get_bucket_versioning,
            Bucket=self.bucket,
        )
        return answer.get("Status") in ("Enabled", "Suspended")

    def _pages(self, prefix: str, versioned: bool) -> Iterator[list[Item]]:
        operation, field_name = (
            ("list_object_versions", "Versions") if versioned else ("list_objects_v2", "Contents")
        )
        doing = f"listing s3://{self.bucket}/{prefix} ({operation})"
        try:
            for page in self.s3.get_paginator(operation).paginate(Bucket=self.bucket, Prefix=prefix):
                yield [
                    item
                    for entry in page.get(field_name) or []
                    if (not versioned or entry.get("IsLatest")) and (item := self._item(entry)) is not None
                ]
        except (ClientError, BotoCoreError) as exc:
            raise explain(exc, doing) from exc

    def _item(self, entry: dict[str, Any]) -> Item | None:
        modified: datetime = entry["LastModified"].astimezone(UTC)
        if (self.since and modified < self.since) or (self.until and modified > self.until):
            return None
        return Item(
            key=str(entry["Key"]),
            version_id=entry.get("VersionId"),
            etag=str(entry["ETag"]).strip('"') if entry.get("ETag") else None,
            size=int(entry.get("Size", 0)),
            last_modified=modified.isoformat(timespec="seconds").replace("+00:00", "Z"),
        )

    def _judge(self, item: Item, event: dict[str, Any], ledger: dict[tuple[str, ...], Run]) -> None:
        found = self.routes.first(item.key)
        if found is None:
            item.verdict = NO_ROUTE
            return
        route = found[0]
        item.route, item.pipeline = route.index, route.pipeline or self.target.output("PipelineName")
        skip = trigger_skip(event, self.stack)
        if skip is not None:
            item.verdict, item.why = SKIP, skip
            return
        before = ledger.get(identity(self.bucket, item.key, item.version_id, item.etag))
        if before is not None:
            item.why = f"execution {before.execution_id} ({before.status}, pipeline {before.pipeline})"
            item.verdict = RERUN if self.rerun else RAN
            return
        item.verdict = START

    def _send(self, queue: str, batch: list[tuple[Item, dict[str, Any]]], outcome: Outcome) -> None:
        """SendMessageBatch; the entries SQS failed on its own side are sent again (botocore retries a
        failed call, not the failed entries of a call that succeeded), the others are reported."""
        entries = {str(i): (item, json.dumps(event)) for i, (item, event) in enumerate(batch)}
        for attempt in range(1, ATTEMPTS + 1):
            answer = self._call(
                f"sending to the upload queue {queue} (SendMessageBatch)",
                self.sqs.send_message_batch,
                QueueUrl=queue,
                Entries=[{"Id": i, "MessageBody": body} for i, (_, body) in entries.items()],
            )
            outcome.batches += 1
            failed = {str(f["Id"]): f for f in answer.get("Failed") or []}
            retry = {
                i: entries[i] for i, f in failed.items() if not f.get("SenderFault") and attempt < ATTEMPTS
            }
            for i, f in failed.items():
                if i not in retry:
                    code, text = f.get("Code", "?"), f.get("Message", "")
                    outcome.failed.append({"key": entries[i][0].key, "error": f"{code}: {text}".rstrip(": ")})
            if not retry:
                return
            entries = retry


def _line(item: Item) -> str:
    """A dry run's line for one object."""
    label = {START: "would start", RERUN: "would rerun"}.get(item.verdict, item.verdict)
    if item.verdict in (START, RERUN):
        detail = f"route {item.route} -> {item.pipeline}" + (f"; ran before: {item.why}" if item.why else "")
    else:
        detail = item.why or ""  # the skip's reason, the execution that ran it; nothing for no route
    return f"{label:<11}  {item.key}  {detail}".rstrip()


def _progress(outcome: Outcome) -> str:
    c = outcome.counts
    sent = c[START] + c[RERUN] - len(outcome.failed)
    return (
        f"listed {outcome.listed}: enqueued {sent} ({outcome.batches} SendMessageBatch), "
        f"already ran {c[RAN]}, skipped {c[SKIP]}, no route {c[NO_ROUTE]}"
        + (f", NOT enqueued {len(outcome.failed)}" if outcome.failed else "")
    )


def summary(outcome: Outcome, *, since: datetime | None, until: datetime | None) -> list[str]:
    """The closing lines: what was found, what was sent, and what to do next."""
    c = outcome.counts
    window = ""
    if since or until:
        start = since.isoformat(timespec="seconds") if since else "the start"
        end = until.isoformat(timespec="seconds") if until else "now"
        window = f", last modified from {start} to {end}"
    listing = "ListObjectVersions, latest versions" if outcome.versioned else "ListObjectsV2"
    lines = [
        f"s3://{outcome.bucket}/{outcome.prefix}{window}: {outcome.listed} "
        f"object{'' if outcome.listed == 1 else 's'} ({listing})",
    ]
    runs_word = "would start" if outcome.dry_run else "enqueued"
    parts = [f"{c[START]} {runs_word}"]
    if outcome.rerun:
        parts.append(f"{c[RERUN]} {'would run' if outcome.dry_run else 'enqueued'} again")
    parts += [
        f"{c[RAN]} already ran",
        f"{c[SKIP]} skipped (the trigger would skip them)",
        f"{c[NO_ROUTE]} match no route",
    ]
    lines.append("  " + ", ".join(parts))
    if outcome.rerun:
        lines.append(
            f"--rerun: objects that already ran {'would be' if outcome.dry_run else 'were'} sent again, "
            f"with detail.rerun = {outcome.rerun}:"
        )
        lines.append("  each gets a new token and a new output folder")
    if outcome.dry_run:
        lines.append("dry run: nothing was sent")
    else:
        for failed in outcome.failed:
            lines.append(f"not enqueued: {failed['key']}: {failed['error']}")
        if c[START] + c[RERUN]:
            lines.append(
                f"the trigger starts them at the queue's pace; follow with `{COMMAND} status` "
                f"(`{COMMAND} status --key KEY` for one key)"
            )
    if c[RAN] and not outcome.rerun:
        lines.append(
            "objects that already ran start nothing again "
            f"(--rerun runs them anew; {COMMAND} retry resumes a failed run)"
        )
    return lines


__all__ = [
    "BATCH",
    "REASON",
    "Backfill",
    "Item",
    "Outcome",
    "message",
    "parse_time",
    "summary",
    "trigger_skip",
]
