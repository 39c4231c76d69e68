"""Which upload an execution runs, written into its ``PipelineExecutionDescription``: SageMaker is the ledger.

The trigger writes :func:`describe` at ``StartPipelineExecution``; ``s3sm status`` reads it back with
:func:`read` (``DescribePipelineExecution``/``ListPipelineExecutions`` return it), and the pipeline's
status-change events carry it, so a failure notification names its upload. No database of our own.

The text is a fixed tag and one JSON object, at most :data:`MAX_DESCRIPTION` characters (the API's
limit): ``s3-sagemaker-trigger upload {"bucket": ..., "key": ..., "versionId": ..., ...}``. A field
that would not fit (only ever the output URL, for keys near S3's 1,024-byte limit) is left out.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

TAG = "s3-sagemaker-trigger upload "
MAX_DESCRIPTION = 3072  # StartPipelineExecution's PipelineExecutionDescription
_JSON = {"version_id": "versionId", "etag": "eTag", "event_time": "eventTime"}


@dataclass(frozen=True, slots=True)
class Upload:
    """An upload as its run records it (in the JSON, S3's camelCase names: see :data:`_JSON`)."""

    bucket: str
    key: str
    version_id: str | None = None
    sequencer: str | None = None
    etag: str | None = None
    size: int | None = None
    event_time: str | None = None  # when S3 finished the upload (ISO 8601)
    output: str | None = None  # the run's output folder (s3://...)
    rerun: str | None = None  # set by `s3sm backfill --rerun`: a deliberate new run of one version

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def describe(self) -> str:
        return describe(self)


def describe(upload: Upload) -> str:
    """The execution description recording ``upload`` (optional fields left out when empty)."""
    record = {_JSON.get(k, k): v for k, v in asdict(upload).items() if v not in (None, "")}
    text = TAG + json.dumps(record, ensure_ascii=False, separators=(", ", ": "))
    if len(text) > MAX_DESCRIPTION and "output" in record:
        del record["output"]
        text = TAG + json.dumps(record, ensure_ascii=False, separators=(", ", ": "))
    return text


def read(description: object) -> Upload | None:
    """The upload a description records, or None for an execution this trigger did not start."""
    if not isinstance(description, str) or not description.startswith(TAG):
        return None
    try:
        record = json.loads(description[len(TAG) :])
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("bucket"), str):
        return None
    if not isinstance(record.get("key"), str):
        return None
    names = {_JSON.get(f.name, f.name): f.name for f in fields(Upload)}
    return Upload(**{names[k]: v for k, v in record.items() if k in names})


__all__ = ["MAX_DESCRIPTION", "TAG", "Upload", "describe", "read"]
