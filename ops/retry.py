"""``s3sm retry``: RetryPipelineExecution for failed executions, idempotently.

The ClientRequestToken is derived from the execution ARN and the time it last changed (its failure):
the same failure retried twice (two operators, a re-run command) is retried once, and a retried
execution that fails again can be retried again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.target import DENIED, OpsError, Target, explain
from ops.text import shorten

_RELATIVE = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


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


@dataclass
class Outcome:
    arn: str
    status: str  # the status found before retrying
    retried: bool
    note: str

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def line(self) -> str:
        return f"{self.execution_id}: {self.note}"


class Retrier:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.sagemaker = target.client("sagemaker")

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
        return Outcome(arn, status, True, f"retried (it had failed: {shorten(reason, 60, keep_start=True)})")


__all__ = ["Outcome", "Retrier", "parse_since", "token"]
