"""``s3sm status``: recent executions (upload, status, failed step and reason, output, rows, duration),
the queues (uploads waiting, the oldest one's age, dead letters) and the recent skips (:mod:`ops.skips`);
``--key``: every upload of one key.

The upload shown is the one the execution's ledger entry names (:mod:`contract.ledger`: the key that
was uploaded, not the snapshot the run read); an execution without one (started before the ledger, or
by hand) shows its ``InputDataUrl`` as before."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from contract.ledger import read
from ops.skips import Skips
from ops.target import Target, explain
from ops.text import COMMAND, duration, shorten, table, terminal_width, wrap
from ops.uploads import Run, newest, recency, routed_pipelines, runs

REPORT_NAMES = "report*.json"  # the ETL writes report.json, or report-<host>.json per instance
MISSING = {"NoSuchKey", "NoSuchBucket", "404"}
NEWEST_MARK = "*"
NEWEST_LEGEND = "newest upload of its key (event time, then S3 sequencer)"


@dataclass
class Execution:
    execution_id: str
    arn: str
    status: str
    upload: str | None  # the InputDataUrl the execution ran on
    output: str | None  # the OutputDataUrl it wrote to
    failed_step: str | None
    reason: str | None
    started: str | None
    seconds: float | None
    rows_written: int | None
    rows_rejected: int | None
    key: str | None = None  # the uploaded key, from the execution's ledger entry (None: no entry)
    bucket: str | None = None
    version_id: str | None = None
    landed: str | None = None  # when S3 finished the upload (the ledger's event time)
    sequencer: str | None = None
    newest: bool = False  # the newest upload of its key among those shown


@dataclass
class KeyUpload:
    """One upload of a key (``s3sm status --key``): when it landed, the run, and what it wrote."""

    key: str
    bucket: str
    version_id: str | None
    landed: str | None
    pipeline: str
    execution_id: str
    arn: str
    status: str
    started: str | None
    output: str | None
    rows_written: int | None
    rows_rejected: int | None
    rerun: str | None
    newest: bool


@dataclass
class Queues:
    waiting: int | None  # visible in the upload queue
    in_flight: int | None  # received and not deleted yet, or backing off before the next attempt
    oldest_seconds: float | None  # CloudWatch's ApproximateAgeOfOldestMessage, latest datapoint
    dead_letters: int | None


def execution_arn(target: Target, execution: str) -> str:
    """An execution ARN from an ARN or the bare execution ID."""
    return (
        execution if execution.startswith("arn:") else f"{target.output('PipelineArn')}/execution/{execution}"
    )


class Collector:
    """Reads what ``status`` shows through the SageMaker, S3, SQS and CloudWatch APIs."""

    def __init__(self, target: Target, *, now: datetime | None = None) -> None:
        self.target = target
        self.now = now or datetime.now(UTC)
        self.sagemaker = target.client("sagemaker")
        self.s3 = target.client("s3")
        self.sqs = target.client("sqs")
        self.cloudwatch = target.client("cloudwatch")

    def _call(self, doing: str, client: Any, operation: str, **params: Any) -> Any:
        try:
            return getattr(client, operation)(**params)
        except (ClientError, BotoCoreError) as exc:
            raise explain(exc, doing) from exc

    def recent(self, limit: int) -> list[Execution]:
        """The ``limit`` most recent executions of every routed pipeline (the stack's own first; one that
        does not exist, or that this caller may not list, has none here: ``status --key`` notes it)."""
        own = self.target.output("PipelineName")
        summaries: list[dict[str, Any]] = []
        for pipeline in routed_pipelines(self.target):
            try:
                summaries += self.sagemaker.list_pipeline_executions(
                    PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=limit
                )["PipelineExecutionSummaries"]
            except (ClientError, BotoCoreError) as exc:
                if pipeline == own:
                    raise explain(exc, f"listing the executions of pipeline {pipeline}") from exc
        summaries.sort(key=lambda s: s.get("StartTime") or datetime.min.replace(tzinfo=UTC), reverse=True)
        summaries = summaries[:limit]
        executions = [self.execution(s["PipelineExecutionArn"]) for s in summaries]
        for index in newest(
            executions,
            lambda e: (e.bucket, e.key) if e.key is not None else None,
            lambda e: recency(e.landed, e.sequencer, e.started),
        ):
            executions[index].newest = True
        return executions

    def uploads(self, key: str) -> list[KeyUpload]:
        """Every upload of ``key`` in the stack's bucket that a routed pipeline ran, newest first."""
        bucket = self.target.outputs.get("DataBucketName")
        found: list[Run] = [
            run
            for run in runs(self.target, routed_pipelines(self.target))
            if run.upload.key == key and bucket in (None, run.upload.bucket)
        ]
        found.sort(key=lambda r: recency(r.upload.event_time, r.upload.sequencer, r.started), reverse=True)
        shown = []
        for index, run in enumerate(found):
            ended = run.status in ("Succeeded", "Failed")
            written, rejected = self.rows(run.upload.output) if ended else (None, None)
            shown.append(
                KeyUpload(
                    key=run.upload.key,
                    bucket=run.upload.bucket,
                    version_id=run.upload.version_id,
                    landed=run.upload.event_time,
                    pipeline=run.pipeline,
                    execution_id=run.execution_id,
                    arn=run.arn,
                    status=run.status,
                    started=run.started.isoformat(timespec="seconds") if run.started else None,
                    output=run.upload.output,
                    rows_written=written,
                    rows_rejected=rejected,
                    rerun=run.upload.rerun,
                    newest=index == 0,
                )
            )
        return shown

    def execution(self, arn: str) -> Execution:
        doing = f"reading execution {arn}"
        described = self._call(doing, self.sagemaker, "describe_pipeline_execution", PipelineExecutionArn=arn)
        params = self._call(
            doing, self.sagemaker, "list_pipeline_parameters_for_execution", PipelineExecutionArn=arn
        )["PipelineParameters"]
        values = {p["Name"]: p["Value"] for p in params}
        steps = self._call(doing, self.sagemaker, "list_pipeline_execution_steps", PipelineExecutionArn=arn)[
            "PipelineExecutionSteps"
        ]
        failed = next((s for s in steps if s.get("StepStatus") == "Failed"), None)
        status = str(described["PipelineExecutionStatus"])
        created = described.get("CreationTime")
        ended = described.get("LastModifiedTime") if status != "Executing" else self.now
        seconds = (ended - created).total_seconds() if created and ended else None
        upload = read(described.get("PipelineExecutionDescription"))
        output = (upload.output if upload else None) or values.get("OutputDataUrl")
        written, rejected = self.rows(output) if status == "Succeeded" or failed else (None, None)
        return Execution(
            execution_id=arn.rsplit("/", 1)[-1],
            arn=arn,
            status=status,
            upload=values.get("InputDataUrl"),
            output=output,
            failed_step=str(failed["StepName"]) if failed else None,
            reason=described.get("FailureReason") or (failed or {}).get("FailureReason"),
            started=created.isoformat(timespec="seconds") if created else None,
            seconds=seconds,
            rows_written=written,
            rows_rejected=rejected,
            key=upload.key if upload else None,
            bucket=upload.bucket if upload else None,
            version_id=upload.version_id if upload else None,
            landed=upload.event_time if upload else None,
            sequencer=upload.sequencer if upload else None,
        )

    def rows(self, output: str | None) -> tuple[int | None, int | None]:
        """Rows written and rejected, summed over the report files under the execution's output."""
        if not output or not output.startswith("s3://"):
            return None, None
        url = urlparse(output)
        bucket, prefix = url.netloc, url.path.lstrip("/").rstrip("/") + "/"
        doing = f"reading the reports under {output}"
        try:
            listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents") or []
            keys = [o["Key"] for o in listed if fnmatch.fnmatch(o["Key"].rsplit("/", 1)[-1], REPORT_NAMES)]
            reports = [json.loads(self.s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in MISSING:
                return None, None
            raise explain(exc, doing) from exc
        except BotoCoreError as exc:
            raise explain(exc, doing) from exc
        except ValueError:  # a report that is not JSON: nothing to count
            return None, None
        totals: list[dict[str, Any]] = [
            r["totals"] for r in reports if isinstance(r, dict) and isinstance(r.get("totals"), dict)
        ]
        if not totals:
            return None, None
        written = sum(int(t.get("rows_written", 0)) for t in totals)
        return written, sum(int(t.get("rows_rejected", 0)) for t in totals)

    def queues(self) -> Queues:
        waiting = in_flight = oldest = dead = None
        upload = self.target.outputs.get("UploadQueueUrl")
        if upload:
            attributes = self._attributes(
                upload, ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )
            waiting = int(attributes["ApproximateNumberOfMessages"])
            in_flight = int(attributes["ApproximateNumberOfMessagesNotVisible"])
            oldest = self._oldest(upload)
        dlq = self.target.outputs.get("TriggerDeadLetterQueueUrl")
        if dlq:
            dead = int(self._attributes(dlq, ["ApproximateNumberOfMessages"])["ApproximateNumberOfMessages"])
        return Queues(waiting, in_flight, oldest, dead)

    def _attributes(self, queue_url: str, names: list[str]) -> dict[str, str]:
        result: dict[str, str] = self._call(
            f"reading queue {queue_url}",
            self.sqs,
            "get_queue_attributes",
            QueueUrl=queue_url,
            AttributeNames=names,
        )["Attributes"]
        return result

    def _oldest(self, queue_url: str) -> float | None:
        """SQS has no attribute for it; CloudWatch's metric (1-minute datapoints, a few minutes late) does."""
        name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        datapoints = self._call(
            f"reading the age of the oldest upload in {name}",
            self.cloudwatch,
            "get_metric_statistics",
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": name}],
            StartTime=self.now - timedelta(minutes=15),
            EndTime=self.now,
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        if not datapoints:
            return None
        return float(max(datapoints, key=lambda d: d["Timestamp"])["Maximum"])


def as_json(
    target: Target, executions: list[Execution], queues: Queues | None, skips: Skips | None = None
) -> str:
    shown = None
    if skips is not None:
        since = skips.since.isoformat(timespec="seconds")
        shown = {
            "since": since,
            "total": skips.total,
            "note": skips.note,
            "newest": [asdict(s) for s in skips.shown],
        }
    return json.dumps(
        {
            "stack": target.stack,
            "where": target.where,
            "outputs": dict(target.outputs),
            "queues": asdict(queues) if queues else None,
            "executions": [asdict(e) for e in executions],
            "skips": shown,
        },
        indent=2,
    )


def render_skips(skips: Skips, bucket: str | None, width: int) -> list[str]:
    """The recent skips: a heading, then when, which key and why (the reason wrapped whole)."""
    since = skips.since.isoformat(timespec="minutes").replace("+00:00", "Z")
    if skips.note:
        return wrap(f"skips since {since}: {skips.note}", width, indent="  ")
    if not skips.total:
        return [f"skips since {since}: none"]
    newest = (
        f"the newest {len(skips.shown)} of {skips.total}"
        if skips.total > len(skips.shown)
        else str(skips.total)
    )
    rows = [
        [
            s.time,
            (s.key if s.bucket in (None, bucket) else f"s3://{s.bucket}/{s.key}") if s.key else "-",
            s.reason,
        ]
        for s in skips.shown
    ]
    heading = f"skips since {since} (the trigger's `record skipped` log lines), {newest}, newest first:"
    return [
        *wrap(heading, width, indent="  "),
        *table(["LOGGED", "KEY", "REASON"], rows, width=width, shrink=[1], wrap_columns=[2]),
    ]


def _rows(e: Execution | KeyUpload) -> str:
    if e.rows_written is None:
        return "-"
    return f"{e.rows_written}/{e.rows_rejected}"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def render(
    target: Target,
    executions: list[Execution],
    queues: Queues,
    width: int | None = None,
    skips: Skips | None = None,
) -> str:
    """The human view: every line at most ``width`` wide (default: the terminal's), keys and URIs
    shortened in the middle, a failure reason wrapped whole."""
    width = width or terminal_width()
    pipeline = target.outputs.get("PipelineName", "?")
    bucket = target.outputs.get("DataBucketName")
    if not queues.waiting and not queues.in_flight:
        oldest = ""  # nothing waits: a 1-minute maximum from before would only mislead
    elif queues.oldest_seconds is None:
        oldest = " (oldest: unknown, no CloudWatch datapoint)"
    else:
        oldest = f" (oldest: {duration(queues.oldest_seconds)})"
    lines = [
        shorten(f"stack {target.stack} ({target.where})", width),
        shorten(f"pipeline {pipeline}, bucket {bucket or '?'}", width),
        *wrap(
            f"uploads waiting: {_count(queues.waiting)}{oldest}; in flight or backing off: "
            f"{_count(queues.in_flight)}; dead letters: {_count(queues.dead_letters)}"
            if queues.waiting is not None
            else "uploads waiting: - (the stack has no UploadQueueUrl output); "
            f"dead letters: {_count(queues.dead_letters)}",
            width,
            indent="  ",
        ),
    ]
    shown_skips = ["", *render_skips(skips, bucket, width)] if skips is not None else []
    if not executions:
        lines.append("no executions yet: upload a file under the raw prefix")
        return "\n".join([*lines, *shown_skips])

    def key(url: str | None) -> str:  # the bucket is the stack's, named above
        if not url:
            return "(default)"
        return url.removeprefix(f"s3://{bucket}/") if bucket else url

    def upload(e: Execution) -> str:  # the uploaded key (from the ledger), else the run's input
        if e.key is None:
            return key(e.upload)
        shown = e.key if e.bucket == bucket else f"s3://{e.bucket}/{e.key}"
        return f"{NEWEST_MARK} {shown}" if e.newest else shown

    # One row per execution, then a line with what to look at: its failure, or where its output is.
    headers = ["EXECUTION", "STATUS", "TOOK", "ROWS OK/REJ", "UPLOAD"]
    rows = [[e.execution_id, e.status, duration(e.seconds), _rows(e), upload(e)] for e in executions]
    body = table(headers, rows, width=width, shrink=[4, 0])
    lines.append("")
    lines.extend(body[:2])
    for execution, line in zip(executions, body[2:], strict=True):
        lines.append(line)
        if execution.failed_step or execution.reason:
            step = execution.failed_step or "failed"
            reason = " ".join((execution.reason or "no reason given").split())
            why = f"  -> {step}: {reason.removeprefix(f'Step {step} failed: ')}"
            lines.extend(wrap(why, width, indent="     "))
        elif execution.output and execution.status == "Succeeded":
            lines.append(shorten(f"  => {key(execution.output)}", width))
    lines.extend(shown_skips)
    lines.append("")
    if any(e.newest for e in executions):
        lines.append(f"{NEWEST_MARK} {NEWEST_LEGEND}; all its uploads: {COMMAND} status --key KEY")
    lines.append(f"in full: {COMMAND} status --json, or {COMMAND} status --execution ID")
    return "\n".join(lines)


def render_key(target: Target, key: str, uploads: list[KeyUpload], width: int | None = None) -> str:
    """``status --key``: each upload of the key, newest first, the newest marked."""
    width = width or terminal_width()
    bucket = target.outputs.get("DataBucketName", "?")
    pipelines = ", ".join(routed_pipelines(target))
    lines = [
        shorten(f"stack {target.stack} ({target.where})", width),
        shorten(f"key {key} in bucket {bucket}", width),
        shorten(f"routed pipelines: {pipelines}", width),
    ]
    if not uploads:
        lines.append("no run of this key in the ledger (an upload the trigger skipped is in its log only)")
        return "\n".join(lines)
    lines.append(f"{len(uploads)} upload{'s' if len(uploads) != 1 else ''}, newest first:")

    def folder(url: str | None) -> str:
        return (url or "-").removeprefix(f"s3://{bucket}/")

    # One row per upload, then its output folder under it (as status shows a succeeded run's).
    headers = ["", "LANDED", "EXECUTION", "PIPELINE", "STATUS", "ROWS OK/REJ"]
    rows = [
        [
            NEWEST_MARK if u.newest else "",
            u.landed or "-",
            u.execution_id,
            u.pipeline.rsplit("/", 1)[-1],
            u.status + (" (rerun)" if u.rerun else ""),
            _rows(u),
        ]
        for u in uploads
    ]
    body = table(headers, rows, width=width, shrink=[3, 2])
    lines.append("")
    lines.extend(body[:2])
    for u, line in zip(uploads, body[2:], strict=True):
        lines.append(line)
        lines.append(shorten(f"  => {folder(u.output)}", width))
    lines.append("")
    lines.append(shorten(f"{NEWEST_MARK} {NEWEST_LEGEND}: its output is the key's current one", width))
    lines.append(f"in full: {COMMAND} status --key KEY --json, or {COMMAND} status --execution ARN")
    return "\n".join(lines)


def key_json(target: Target, key: str, uploads: list[KeyUpload]) -> str:
    return json.dumps(
        {"stack": target.stack, "where": target.where, "key": key, "uploads": [asdict(u) for u in uploads]},
        indent=2,
        ensure_ascii=False,
    )


def render_one(execution: Execution) -> str:
    """Everything about one execution, unshortened (values worth copying)."""
    fields = asdict(execution)
    fields["seconds"] = duration(execution.seconds)
    return "\n".join(f"{name:<14} {'-' if value is None else value}" for name, value in fields.items())


__all__ = [
    "Collector",
    "Execution",
    "KeyUpload",
    "Queues",
    "as_json",
    "execution_arn",
    "key_json",
    "render",
    "render_key",
    "render_one",
]
