"""Which object notifications are datasets, and where each dataset's data is read and written.

For an accepted key ``<raw><rel>``: object mode reads ``s3://<bucket>/<raw><rel>`` and writes
``s3://<bucket>/<clean><rel>/``; marker mode (key ``<raw><folder>/<marker>``) reads the folder
``s3://<bucket>/<raw><folder>/`` and writes ``s3://<bucket>/<clean><folder>/``. Every other
notification becomes a :class:`~trigger.events.Skip` with its reason, including any key that could
lead a URL out of the prefixes (``..`` or ``.`` or empty path segments, control characters, keys over
S3's 1024-byte limit), so the URLs built here always lie under the configured prefixes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

from trigger.config import Config, TriggerMode
from trigger.events import Action, ObjectEvent, Skip

MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
MAX_PARAMETER_CHARS = 1024  # a pipeline parameter value's limit (StartPipelineExecution)
# The input URL also reaches the ETL as a processing job container argument (--input-url), and
# CreateProcessingJob takes at most 256 characters per argument: a longer one fails the execution.
MAX_ARGUMENT_CHARS = 256
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class Dataset:
    """An accepted notification: the pipeline's data locations and what names the dataset."""

    source: ObjectEvent
    input_url: str
    output_url: str
    relative: str  # the dataset's path under the raw prefix: the object, or the marker's folder


def route(item: ObjectEvent, config: Config) -> Dataset | Skip:
    """The dataset ``item`` announces under ``config``, or why it announces none."""
    key, bucket = item.key, item.bucket

    def skip(reason: str) -> Skip:
        return Skip(key, reason, bucket)

    def unprocessable(reason: str) -> Skip:
        return Skip(key, reason, bucket, unprocessable=True)

    if item.action is Action.REMOVED:
        return skip(f"object removed ({item.event_name}): nothing to process")
    if item.action is not Action.CREATED:
        return skip(f"not an object-created event ({item.event_name})")
    if not _BUCKET.fullmatch(bucket):
        return unprocessable(f"malformed record: {bucket!r} is not an S3 bucket name")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return unprocessable(f"key longer than S3's {MAX_KEY_BYTES}-byte limit")
    if any(_is_control(c) for c in key):
        return unprocessable("key contains control characters")
    if not key.startswith(config.raw_prefix):
        return skip(f"outside the raw prefix {config.raw_prefix!r}")
    if key.endswith("/"):
        return skip("folder placeholder (the key ends with '/')")
    relative = key.removeprefix(config.raw_prefix)
    parts = relative.split("/")
    if any(_unsafe_segment(part) for part in parts):
        return unprocessable("unsafe key: an empty, '.' or '..' path segment")
    if item.identity is None:
        return unprocessable(
            "malformed record: no versionId, eTag or sequencer to tell this upload from a re-upload"
        )

    raw_root = f"s3://{bucket}/{config.raw_prefix}"
    clean_root = f"s3://{bucket}/{config.clean_prefix}"
    is_marker = parts[-1] == config.marker_name
    if config.mode is TriggerMode.OBJECT:
        if is_marker:
            return skip(f"marker object {config.marker_name!r}: object mode starts on data objects only")
        input_url, output_url = raw_root + relative, f"{clean_root}{relative}/"
    else:
        if not is_marker:
            return skip(f"not the marker object {config.marker_name!r}: marker mode starts on markers only")
        if len(parts) < 2:
            return skip(f"marker directly under the raw prefix {config.raw_prefix!r} names no folder")
        relative = "/".join(parts[:-1])
        input_url, output_url = f"{raw_root}{relative}/", f"{clean_root}{relative}/"
    if len(input_url) > MAX_ARGUMENT_CHARS:
        return unprocessable(
            f"input URL longer than the {MAX_ARGUMENT_CHARS} characters a processing job argument holds"
        )
    if len(output_url) > MAX_PARAMETER_CHARS:
        return unprocessable(
            f"output URL longer than the {MAX_PARAMETER_CHARS} characters a pipeline parameter holds"
        )
    return Dataset(item, input_url, output_url, relative)


def _unsafe_segment(part: str) -> bool:
    """Empty, '.', '..', or something a consumer could still turn into one (%-escaped, full-width dots)."""
    return any(form in {"", ".", ".."} for form in (part, unquote(part), unicodedata.normalize("NFKC", part)))


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"
