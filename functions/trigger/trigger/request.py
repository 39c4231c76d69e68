"""The StartPipelineExecution request for one dataset: its routed pipeline and parameters, and its
description recording the upload (:mod:`contract.ledger`: SageMaker itself is the ledger).

``ClientRequestToken`` is the SHA-256 (64 hex characters; the API takes 32-128) of the bucket, the key
and the upload's identity (version ID, else eTag and sequencer): S3 delivering the same notification
twice yields the same token, and SageMaker answers the second start with the first execution; a
re-upload of the key has a new identity, so it runs again.
"""

from __future__ import annotations

import json
import re
import unicodedata
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from trigger.routing import Dataset

if TYPE_CHECKING:
    from contract import ledger

# Versions the token recipe: changing the recipe must change this string, never silently.
TOKEN_SCHEME = "s3-sagemaker-trigger/1"  # noqa: S105 - an idempotency-token label, not a secret
MAX_DISPLAY_NAME = 82  # pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}
_SUFFIX_CHARS = 8
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")
# StartPipelineExecution's answers that no wait will change: a permission the role lacks, a request
# the pipeline does not accept. Everything else passes or may pass (see refusal()).
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "NotAuthorized", "UnauthorizedOperation"})
_INVALID = frozenset({"ValidationException", "ValidationError", "InvalidParameterValue"})


def idempotency_token(dataset: Dataset) -> str:
    src = dataset.source
    material = json.dumps([TOKEN_SCHEME, src.bucket, src.key, src.identity], ensure_ascii=False)
    return sha256(material.encode("utf-8")).hexdigest()


def display_name(dataset: Dataset) -> str:
    """A valid PipelineExecutionDisplayName: the dataset's path, sanitised and cut, plus a key hash.

    Accents are folded to ASCII (``données`` -> ``donnees``), other runs of non-alphanumerics become
    one ``-``. The 8-hex-digit suffix hashes bucket and key, so two keys that sanitise alike differ.
    """
    src = dataset.source
    ascii_text = unicodedata.normalize("NFKD", dataset.relative).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_ALNUM.sub("-", ascii_text).strip("-")
    suffix = sha256(json.dumps([src.bucket, src.key]).encode("utf-8")).hexdigest()[:_SUFFIX_CHARS]
    slug = slug[: MAX_DISPLAY_NAME - 1 - _SUFFIX_CHARS].rstrip("-")
    return f"{slug}-{suffix}" if slug else suffix


def upload(dataset: Dataset) -> ledger.Upload:
    """What the execution records of its upload (the marker, in marker mode)."""
    from contract import ledger  # imported on first use (cold start)

    src = dataset.source
    version = src.version_id if src.version_id != "null" else None
    return ledger.Upload(
        src.bucket,
        src.key,
        version,
        src.sequencer,
        src.etag,
        src.size,
        src.event_time,
        dataset.output_url,
        src.rerun,
    )


def build_request(dataset: Dataset, input_bytes: int) -> dict[str, Any]:
    """The keyword arguments of ``start_pipeline_execution`` for ``dataset``, whose snapshot holds
    ``input_bytes``: the routed pipeline and its parameters (the volume sized for those bytes)."""
    return {
        "PipelineName": dataset.pipeline,
        "PipelineExecutionDisplayName": display_name(dataset),
        "PipelineExecutionDescription": upload(dataset).describe(),
        "PipelineParameters": [
            {"Name": name, "Value": value} for name, value in dataset.parameters(input_bytes).items()
        ],
        "ClientRequestToken": idempotency_token(dataset),
    }


def refusal(err: ClientError | BotoCoreError, pipeline: str) -> str | None:
    """Why StartPipelineExecution's ``err`` will not pass by waiting, or None when it may.

    Judged like :func:`trigger.snapshot.classify`, for the start:

    - may pass, so retried with backoff for 24 h: ``ResourceLimitExceeded`` (the concurrent-execution
      quota), throttling, 5xx, timeouts and refused connections (not a ClientError), a missing pipeline
      (``ResourceNotFound``: not created yet, or being re-created by a deploy), and any code not known
      to be final (retrying an unknown error is the safe side: it still ends in the dead-letter queue);
    - will not pass: access denied (the trigger's role may not start this pipeline) and validation
      errors (the request does not fit the pipeline, e.g. a definition without ``InputDataUrl``).
      Those go to the dead-letter queue within minutes (:class:`~trigger.errors.Rejected`) rather than
      being retried for 24 h or skipped: the upload is kept, the redrive report shows it and SQS's
      redrive runs it once the role or the pipeline is fixed.
    """
    if not isinstance(err, ClientError):
        return None
    code = str(err.response.get("Error", {}).get("Code", ""))
    message = str(err.response.get("Error", {}).get("Message", ""))
    if code in _DENIED:
        return (
            f"StartPipelineExecution refused: {code} (the trigger's role needs "
            f"sagemaker:StartPipelineExecution on pipeline {pipeline!r}): {message}"
        )
    if code in _INVALID:
        return f"StartPipelineExecution refused the request: {code}: {message}"
    return None
