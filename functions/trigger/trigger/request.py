"""The StartPipelineExecution request for one dataset.

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
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contract import volume
from trigger.config import Config, TriggerMode
from trigger.routing import Dataset

# Versions the token recipe: changing the recipe must change this string, never silently.
TOKEN_SCHEME = "s3-sagemaker-trigger/1"  # noqa: S105 - an idempotency-token label, not a secret
MAX_DISPLAY_NAME = 82  # pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}
MAX_DESCRIPTION = 3072
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


def description(dataset: Dataset, mode: TriggerMode) -> str:
    src = dataset.source
    what = f"marker s3://{src.bucket}/{src.key}, " if mode is TriggerMode.MARKER else ""
    text = f"s3-sagemaker-trigger: input {dataset.input_url} ({what}{src.identity}, via {src.source})"
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 3] + "..."


def parameters(dataset: Dataset, input_bytes: int) -> list[dict[str, str]]:
    """Every pipeline parameter the execution is given: the data's locations, and a processing volume
    for ``input_bytes`` of input with room for the output (``contract.volume``)."""
    return [
        {"Name": "InputDataUrl", "Value": dataset.input_url},
        {"Name": "OutputDataUrl", "Value": dataset.output_url},
        {"Name": volume.PARAMETER, "Value": str(volume.size_gb(input_bytes))},
    ]


def build_request(dataset: Dataset, config: Config, input_bytes: int) -> dict[str, Any]:
    """The keyword arguments of ``start_pipeline_execution`` for ``dataset``, whose snapshot holds
    ``input_bytes``."""
    return {
        "PipelineName": config.pipeline_name,
        "PipelineExecutionDisplayName": display_name(dataset),
        "PipelineExecutionDescription": description(dataset, config.mode),
        "PipelineParameters": parameters(dataset, input_bytes),
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
