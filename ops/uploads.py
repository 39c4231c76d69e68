"""Where each upload went: the ledger SageMaker keeps for us, read across the routed pipelines.

The trigger writes the upload it runs (bucket, key, version, sequencer, eTag, event time, output folder)
into each execution's ``PipelineExecutionDescription`` (:mod:`contract.ledger`), and
``ListPipelineExecutions`` returns that description in every summary: one paginated listing per
routed pipeline tells which uploads ran, where, and how they ended, with no database of our own.
``s3sm status --key`` lists a key's uploads from it, and ``s3sm backfill`` asks it whether an object
version already ran.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contract.ledger import Upload, read
from contract.routes import Routes
from ops.target import Target, explain

PAGE = 100  # ListPipelineExecutions' largest page
MISSING_PIPELINE = {"ResourceNotFound", "ValidationException"}  # SageMaker: no such pipeline
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_SEQUENCER_DIGITS = 128


@dataclass(frozen=True)
class Run:
    """One execution the trigger started, with the upload its ledger entry names."""

    pipeline: str  # as routed: a name or an ARN
    arn: str
    status: str
    started: datetime | None
    upload: Upload

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


def routed_pipelines(target: Target, routes: Routes | None = None) -> list[str]:
    """The stack's own pipeline, those its output ``RoutedPipelines`` names (comma-separated), and
    those ``routes`` send uploads to; each once, in that order."""
    own = target.output("PipelineName")
    named = [own, *(p.strip() for p in target.outputs.get("RoutedPipelines", "").split(","))]
    if routes is not None:
        named += routes.pipelines(own)
    return list(dict.fromkeys(p for p in named if p))


def runs(
    target: Target,
    pipelines: Sequence[str],
    *,
    since: datetime | None = None,
    note: Callable[[str], None] = lambda line: None,
) -> Iterator[Run]:
    """Every execution of ``pipelines`` whose description is a ledger entry, newest first per pipeline
    (created after ``since`` when given). A routed pipeline that does not exist has none, and ``note``
    is told so."""
    sagemaker = target.client("sagemaker")
    for pipeline in pipelines:
        request: dict[str, Any] = {
            "PipelineName": pipeline,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        }
        if since is not None:
            request["CreatedAfter"] = since
        pages = sagemaker.get_paginator("list_pipeline_executions").paginate(
            **request, PaginationConfig={"PageSize": PAGE}
        )
        try:
            for page in pages:
                for summary in page.get("PipelineExecutionSummaries") or []:
                    upload = read(summary.get("PipelineExecutionDescription"))
                    if upload is not None:
                        yield Run(
                            pipeline,
                            str(summary["PipelineExecutionArn"]),
                            str(summary.get("PipelineExecutionStatus", "?")),
                            summary.get("StartTime"),
                            upload,
                        )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if code in MISSING_PIPELINE and "not exist" in message:
                note(f"note: routed pipeline {pipeline} does not exist: it has no executions")
                continue
            raise explain(exc, f"listing the executions of pipeline {pipeline}") from exc
        except BotoCoreError as exc:
            raise explain(exc, f"listing the executions of pipeline {pipeline}") from exc


def identity(bucket: str, key: str, version_id: str | None, etag: str | None) -> tuple[str, ...]:
    """What tells one object version from another, as the trigger's token does: the version ID, or on
    an unversioned bucket (S3 says ``"null"``) the eTag (without the quotes S3's listings put around it)."""
    if version_id and version_id != "null":
        return ("versionId", bucket, key, version_id)
    return ("eTag", bucket, key, (etag or "").strip('"'))


def identities(upload: Upload) -> list[tuple[str, ...]]:
    """Every identity a ledger entry answers to (its version, and its eTag)."""
    found = [identity(upload.bucket, upload.key, upload.version_id, upload.etag)]
    if upload.etag and found[0][0] == "versionId":
        found.append(identity(upload.bucket, upload.key, None, upload.etag))
    return found


def recency(event_time: str | None, sequencer: str | None, started: datetime | str | None) -> tuple[Any, ...]:
    """Sorts a key's uploads oldest to newest: the event time, then S3's sequencer, then the start.

    S3: sequencers of one key are compared after right-padding the shorter with zeros (S3 user guide,
    "Event message structure"). A rerun of one version (same event time and sequencer) is newer than
    the run before it."""
    return (
        _when(event_time),
        (sequencer or "").upper().ljust(_SEQUENCER_DIGITS, "0"),
        _when(started),
    )


def newest[T](
    items: Iterable[T], group: Callable[[T], Hashable | None], order: Callable[[T], Any]
) -> set[int]:
    """The positions of the newest item of each group (items whose group is None belong to none)."""
    best: dict[Hashable, tuple[Any, int]] = {}
    for index, item in enumerate(items):
        name = group(item)
        if name is None:
            continue
        rank = order(item)
        if name not in best or rank >= best[name][0]:
            best[name] = (rank, index)
    return {index for _, index in best.values()}


def _when(value: datetime | str | None) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not value:
        return _EARLIEST
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return _EARLIEST
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


__all__ = ["Run", "identities", "identity", "newest", "recency", "routed_pipelines", "runs"]
