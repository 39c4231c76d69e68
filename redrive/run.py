"""Read the dead-letter queue, replay each message's event, delete what succeeded, report everything.

A message is deleted only after its replay succeeded. An unreadable message, a failed replay and
(with ``dry_run``) every message is left in the queue and made visible again when the run ends, so
the next run, or a person, sees it at once. Every execution the replay returns is classified by its
``CreationTime`` against the message's ``SentTimestamp`` (both AWS clocks): created after the failure
was recorded means this redrive started it; before means it was already running (for example the good
records of a multi-record event whose other record failed), and the replay started nothing new. An
execution a run has already reported (two messages about one upload) counts as already running.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from redrive.messages import DeadLetter, Unreadable, read
from redrive.replay import Replay

# Long enough for a batch of ten replays (each at most a few bounded SageMaker retries): a message
# must not reappear for a second receive while this run still works on it.
VISIBILITY_TIMEOUT = 300
BATCH = 10  # SQS's maximum per ReceiveMessage


class RedriveError(Exception):
    """The redrive cannot run at all (queue missing or unreadable, AWS unreachable)."""


@dataclass(frozen=True, slots=True)
class Started:
    key: str
    execution_arn: str
    input_url: str
    new: bool | None  # True: started by this replay; False: already running; None: could not tell
    message_id: str


@dataclass(frozen=True, slots=True)
class Skipped:
    key: str | None
    reason: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Failed:
    message_id: str
    keys: tuple[str, ...]
    reason: str
    recorded_error: str | None = None  # the failure the message itself records (the original one)


@dataclass(frozen=True, slots=True)
class Pending:
    """A message a dry run would replay."""

    message_id: str
    keys: tuple[str, ...]
    origin: str
    recorded_error: str | None


@dataclass
class Report:
    queue_url: str
    target: str  # what the events were replayed through
    dry_run: bool = False
    read: int = 0
    replayed: int = 0
    deleted: int = 0
    started: list[Started] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def render(self) -> str:
        """The report as a person reads it: counts, then each execution, skip and failure."""
        new = [s for s in self.started if s.new is True]
        running = [s for s in self.started if s.new is False]
        unknown = [s for s in self.started if s.new is None]
        if self.dry_run:
            mode = "dry run: nothing replayed, nothing deleted"
        else:
            mode = f"replayed through {self.target}"
        lines = [f"Redrive of {self.queue_url} ({mode})", _row("read", _count(self.read, "message"))]
        if self.dry_run:
            lines.append(_row("would replay", _count(len(self.pending), "message")))
            for p in self.pending:
                lines.append(f"    {p.message_id}  {_keys(p.keys)}")
                error = f": {_clip(p.recorded_error)}" if p.recorded_error else ""
                lines.append(f"      {p.origin}{error}")
        else:
            lines.append(_row("replayed", _count(self.replayed, "message")))
            lines.append(_row("started", _count(len(new), "new execution")))
            lines.extend(f"    {s.key} -> {s.execution_arn}" for s in new)
            lines.append(_row("already started", f"{_count(len(running), 'execution')} (none started again)"))
            lines.extend(f"    {s.key} -> {s.execution_arn}" for s in running)
            if unknown:
                lines.append(_row("started (age?)", _count(len(unknown), "execution")))
                lines.extend(f"    {s.key} -> {s.execution_arn}" for s in unknown)
            lines.append(_row("skipped", _count(len(self.skipped), "record")))
            lines.extend(f"    {s.key or '-'}: {s.reason}" for s in self.skipped)
        lines.append(_row("failed", f"{_count(len(self.failed), 'message')} (left in the queue)"))
        lines.extend(f"    {f.message_id}  {_keys(f.keys)}: {_clip(f.reason)}" for f in self.failed)
        if not self.dry_run:
            lines.append(_row("deleted", _count(self.deleted, "message")))
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def redrive(
    queue_url: str,
    replay: Replay,
    *,
    sqs: Any,
    sagemaker: Any | None = None,
    max_messages: int | None = None,
    dry_run: bool = False,
    wait_seconds: int = 1,
    target: str = "the trigger",
) -> Report:
    """Replay up to ``max_messages`` messages of ``queue_url`` (all of them by default).

    ``sagemaker`` (optional) tells new executions from those already running; without it, or when
    DescribePipelineExecution is refused, each start is reported with an unknown age.
    """
    report = Report(queue_url, target, dry_run)
    try:
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
            raise RedriveError(f"queue {queue_url} does not exist") from err
        raise RedriveError(f"cannot read queue {queue_url}: {err}") from err
    except BotoCoreError as err:
        raise RedriveError(f"cannot reach queue {queue_url}: {err}") from err

    run = _Run(report, queue_url, replay, sqs, sagemaker, dry_run)
    try:
        while max_messages is None or report.read < max_messages:
            room = BATCH if max_messages is None else min(BATCH, max_messages - report.read)
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=room,
                    WaitTimeSeconds=wait_seconds,
                    VisibilityTimeout=VISIBILITY_TIMEOUT,
                    MessageSystemAttributeNames=["SentTimestamp"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except (ClientError, BotoCoreError) as err:
                raise RedriveError(f"receiving from {queue_url} failed: {err}") from err
            if not messages:
                break
            for message in messages:
                run.handle(message)
    finally:
        run.release()
    return report


@dataclass
class _Run:
    report: Report
    queue_url: str
    replay: Replay
    sqs: Any
    sagemaker: Any | None
    dry_run: bool
    held: list[str] = field(default_factory=list)  # receipt handles of messages left in the queue
    seen: dict[str, bool] = field(default_factory=dict)  # message ID -> deleted
    executions: set[str] = field(default_factory=set)  # execution ARNs already reported by this run

    def handle(self, message: dict[str, Any]) -> None:
        message_id = str(message["MessageId"])
        if message_id in self.seen:  # SQS delivers at least once: a second copy within this run
            if self.seen[message_id]:  # its first copy was replayed and deleted: delete this one too
                self._delete(message_id, str(message["ReceiptHandle"]), (), count=False)
            else:
                self.held.append(str(message["ReceiptHandle"]))
            return
        self.report.read += 1
        self.seen[message_id] = False
        item = read(message)
        if isinstance(item, Unreadable):
            self.report.failed.append(Failed(message_id, (), item.reason))
            self.held.append(item.receipt_handle)
            return
        if self.dry_run:
            self.report.pending.append(Pending(message_id, item.keys, item.origin, item.error))
            self.held.append(item.receipt_handle)
            return
        self._replay(item)

    def _replay(self, item: DeadLetter) -> None:
        outcome = self.replay(item.event)
        self.report.replayed += 1
        if outcome.error is not None:
            self.report.failed.append(Failed(item.message_id, item.keys, outcome.error, item.error))
            self.held.append(item.receipt_handle)
            return
        for entry in outcome.started:
            arn = str(entry.get("executionArn"))
            self.report.started.append(
                Started(
                    str(entry.get("key")),
                    arn,
                    str(entry.get("inputDataUrl")),
                    self._is_new(arn, item.sent_at),
                    item.message_id,
                )
            )
        self.report.skipped.extend(
            Skipped(s.get("key"), str(s.get("reason")), item.message_id) for s in outcome.skipped
        )
        if self._delete(item.message_id, item.receipt_handle, item.keys):
            self.seen[item.message_id] = True

    def _delete(self, message_id: str, receipt: str, keys: tuple[str, ...], *, count: bool = True) -> bool:
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except (ClientError, BotoCoreError) as err:
            reason = f"replayed, but deleting the message failed (a later run replays it, harmlessly): {err}"
            self.report.failed.append(Failed(message_id, keys, reason))
            return False
        self.report.deleted += count
        return True

    def _is_new(self, execution_arn: str, sent_at: datetime | None) -> bool | None:
        if execution_arn in self.executions:  # a second message about the same upload, in this run
            return False
        self.executions.add(execution_arn)
        if self.sagemaker is None or sent_at is None:
            return None
        try:
            created = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)[
                "CreationTime"
            ]
        except (ClientError, BotoCoreError, KeyError) as err:
            note = f"could not tell new executions from running ones (DescribePipelineExecution: {err})"
            if note not in self.report.notes:
                self.report.notes.append(note)
            return None
        return bool(created >= sent_at)

    def release(self) -> None:
        """Make every message left in the queue visible again now, instead of after the timeout."""
        for receipt in self.held:
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
                )
            except (ClientError, BotoCoreError) as err:
                self.report.notes.append(
                    f"a message stays invisible for up to {VISIBILITY_TIMEOUT} s (releasing it failed: {err})"
                )
        self.held.clear()


def _row(label: str, text: str) -> str:
    return f"  {label:<17}{text}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _keys(keys: tuple[str, ...]) -> str:
    if not keys:
        return "(no object key)"
    shown = ", ".join(keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _clip(text: str | None, limit: int = 500) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
