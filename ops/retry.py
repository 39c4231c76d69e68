"""``s3sm retry``: RetryPipelineExecution for failed executions, idempotently, and only when it can help.

The ClientRequestToken is derived from the execution ARN and the time it last changed (its failure):
the same failure retried twice (two operators, a re-run command) is retried once, and a retried
execution that fails again can be retried again.

Two failures a retry cannot fix are named and left alone:

- *data errors*: the ETL exits with status 1 for bad input (etl/cli.py), and SageMaker records a
  processing job whose container exited non-zero as ``AlgorithmError: <message>, exit code: <status>``
  (on AWS the message is empty; the local runner puts the script's last stderr line there), which the
  failed step's ``FailureReason`` carries. The same bytes fail the same way again: the fix is to upload
  corrected data. ``--include-data-errors`` retries them anyway;
- *expired input*: the execution's ``InputDataUrl`` (its snapshot) is gone, as the lifecycle rule
  deletes snapshots after ``SnapshotRetentionDays``: a retried job would find no input (SageMaker's
  "No S3 objects found under S3 URL") and fail again. Upload the data again to run it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.target import DENIED, OpsError, Target, explain

_RELATIVE = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
DATA_ERROR_EXIT_STATUS = 1  # the ETL's exit status for bad input (etl/cli.py)
_EXIT_STATUS = re.compile(r"AlgorithmError: .*, exit code: (\d+)", re.DOTALL)
INPUT_EXPIRED, DATA_ERROR = "input-expired", "data-error"  # why a failed execution was not retried


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``6h``, ``2d`` (ago), or an ISO 8601 date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OpsError(f"--failed-since {text!r}: expected 30m, 6h, 2d or an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def token(arn: str, changed: datetime | None) -> str:
    """64 hex characters (ClientRequestToken takes 32-128): one per failure of one execution."""
    stamp = changed.isoformat() if changed else ""
    return hashlib.sha256(f"{arn}|{stamp}".encode()).hexdigest()


def is_data_error(step_failure: str | None) -> bool:
    """Whether a step's FailureReason says its job exited with the ETL's status for bad input."""
    found = _EXIT_STATUS.search(step_failure or "")
    return found is not None and int(found.group(1)) == DATA_ERROR_EXIT_STATUS


@dataclass
class Outcome:
    arn: str
    status: str  # the status found before retrying
    retried: bool
    note: str
    skipped: str | None = None  # INPUT_EXPIRED or DATA_ERROR: a failure a retry cannot fix

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def line(self) -> str:
        return f"{self.execution_id}: {self.note}"


class Retrier:
    def __init__(self, target: Target, *, include_data_errors: bool = False) -> None:
        self.target = target
        self.include_data_errors = include_data_errors
        self.sagemaker = target.client("sagemaker")
        self.s3 = target.client("s3")

    def failed_since(self, since: datetime) -> list[str]:
        pipeline = self.target.output("PipelineName")
        arns: list[str] = []
        try:
            pages = self.sagemaker.get_paginator("list_pipeline_executions").paginate(
                PipelineName=pipeline, CreatedAfter=since, SortBy="CreationTime", SortOrder="Ascending"
            )
            for page in pages:
                for summary in page["PipelineExecutionSummaries"]:
                    if summary.get("PipelineExecutionStatus") == "Failed":
                        arns.append(str(summary["PipelineExecutionArn"]))
        except (ClientError, BotoCoreError) as exc:
            raise explain(exc, f"listing the executions of pipeline {pipeline}") from exc
        return arns

    def retry(self, arn: str) -> Outcome:
        """Retry one execution if it failed; anything else is left as it is and said so."""
        try:
            described = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in ("ResourceNotFound", "ValidationException"):
                return Outcome(
                    arn, "unknown", False, f"no such execution ({exc.response['Error'].get('Message')})"
                )
            raise explain(exc, f"reading execution {arn}") from exc
        except BotoCoreError as exc:
            raise explain(exc, f"reading execution {arn}") from exc
        status = str(described["PipelineExecutionStatus"])
        if status != "Failed":
            return Outcome(arn, status, False, f"is {status}, not Failed: not retried, nothing changed")
        cannot = self._cannot_help(arn)
        if cannot is not None:
            return cannot
        request: dict[str, Any] = {
            "PipelineExecutionArn": arn,
            "ClientRequestToken": token(arn, described.get("LastModifiedTime")),
        }
        try:
            self.sagemaker.retry_pipeline_execution(**request)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in DENIED:
                raise explain(exc, f"retrying execution {arn}") from exc
            return Outcome(arn, status, False, f"could not retry: {explain(exc, 'RetryPipelineExecution')}")
        except BotoCoreError as exc:
            raise explain(exc, f"retrying execution {arn}") from exc
        reason = " ".join(str(described.get("FailureReason") or "no reason given").split())
        return Outcome(arn, status, True, f"retried (it had failed: {reason})")  # the reason whole

    def _cannot_help(self, arn: str) -> Outcome | None:
        """An Outcome naming why retrying ``arn`` would fail the same way, or None when it may help."""
        doing = f"reading execution {arn}"
        try:
            steps = self.sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)
            params = self.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
        except (ClientError, BotoCoreError) as exc:
            raise explain(exc, doing) from exc
        failures = [
            str(s.get("FailureReason") or "")
            for s in steps["PipelineExecutionSteps"]
            if s.get("StepStatus") == "Failed"
        ]
        data = next((f for f in failures if is_data_error(f)), None)
        if data is not None and not self.include_data_errors:
            why = " ".join(data.split())
            return Outcome(
                arn,
                "Failed",
                False,
                f"failed on its data ({why}): not retried, it would fail the same way; upload corrected "
                "data to run it (--include-data-errors retries it anyway)",
                DATA_ERROR,
            )
        url = {p["Name"]: p["Value"] for p in params["PipelineParameters"]}.get("InputDataUrl")
        if url and not self._exists(url):
            return Outcome(
                arn,
                "Failed",
                False,
                f"its input {url} no longer exists (snapshots expire after the stack's "
                "SnapshotRetentionDays): not retried; upload the data again to run it",
                INPUT_EXPIRED,
            )
        return None

    def _exists(self, url: str) -> bool:
        """Whether an S3Prefix input ``url`` still finds an object, as the retried job would look."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        try:
            listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) == "NoSuchBucket":
                return False
            raise explain(exc, f"looking for the input {url}") from exc
        except BotoCoreError as exc:
            raise explain(exc, f"looking for the input {url}") from exc
        return int(listed.get("KeyCount", 0)) > 0


__all__ = [
    "DATA_ERROR",
    "DATA_ERROR_EXIT_STATUS",
    "INPUT_EXPIRED",
    "Outcome",
    "Retrier",
    "is_data_error",
    "parse_since",
    "token",
]
