"""Which object notifications are datasets, which pipeline each starts with which parameters, and where
each dataset's data is read and written.

The routes (``routes.yaml``, :mod:`contract.routes`) decide the pipeline and its parameters: the first
route whose prefix and pattern match the key; a key no route matches is a skip. Paths are relative to
the outermost routed prefix the key lies under (``<raw>``). A parameter value the pipeline would refuse
(its type, as the deploy read it from the pipeline: ``Config.parameter_types``) is a skip saying why,
never a failed execution.

Every upload has an *upload id* (:func:`upload_id`): S3's ``sequencer``, which sorts in upload order
for one key. For an accepted key ``<raw><rel>`` (``<dir>/<name>``), object mode snapshots the object to
``<snapshot><dir>/<id>/<name>``, reads that (``InputDataUrl``) and writes ``<clean><rel>/<id>/``
(``OutputDataUrl``); marker mode (key ``<raw><folder>/<marker>``) snapshots each object of
``<raw><folder>/`` to ``<snapshot><folder>/<id>/...``, reads that folder and writes
``<clean><folder>/<id>/``. So a run reads its upload's own bytes and writes an output no other upload's
run touches, whatever the order the runs finish in. Every other
notification becomes a :class:`~trigger.events.Skip` with its reason, including any key that could
lead a URL out of the prefixes (``..`` or ``.`` or empty path segments, control characters, keys over
S3's 1024-byte limit), so the URLs built here always lie under the configured prefixes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from hashlib import sha256
from urllib.parse import unquote

from contract.names import BUCKET_NAME
from contract.routes import value_problem
from trigger.config import Config, TriggerMode
from trigger.events import Action, ObjectEvent, Skip

MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
# The input URL also reaches the ETL as a processing job container argument (--input-url), and
# CreateProcessingJob takes at most 256 characters per argument: a longer one fails the execution.
MAX_ARGUMENT_CHARS = 256
_SEQUENCER = re.compile(r"[0-9A-Fa-f]{1,64}")
_DIGITS = re.compile(r"[0-9]")


@dataclass(frozen=True, slots=True)
class Dataset:
    """An accepted notification: the pipeline's data locations and what names the dataset."""

    source: ObjectEvent
    input_url: str  # the snapshot: an object (object mode) or a folder (marker mode)
    output_url: str
    relative: str  # the dataset's path under the raw prefix: the object, or the marker's folder
    snapshot_key: str  # the snapshot object's key (object mode) or folder, ending in '/' (marker mode)
    pipeline: str  # the routed pipeline (name or ARN)
    parameters: dict[str, str]  # the StartPipelineExecution parameters, filled
    route: int  # the route's number in routes.yaml (from 1)
    mode: TriggerMode
    source_folder: str | None = None  # marker mode: the raw folder whose objects are snapshotted


def upload_id(item: ObjectEvent) -> str:
    """The folder name that tells this upload of the key from the others, in upload order.

    S3's ``sequencer`` (hexadecimal; a later upload of a key has a greater one). A record without one
    (some emulators, hand-made events) gets ``<eventTime digits>-<identity hash>`` instead: ordered by
    time to the millisecond, and still unique per upload.
    """
    if item.sequencer and _SEQUENCER.fullmatch(item.sequencer):
        return item.sequencer
    stamp = "".join(_DIGITS.findall(item.event_time or ""))[:17]
    digest = sha256(str(item.identity).encode("utf-8")).hexdigest()[:16]
    return f"{stamp}-{digest}" if stamp else digest


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
    if not BUCKET_NAME.fullmatch(bucket):
        return unprocessable(f"malformed record: {bucket!r} is not an S3 bucket name")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return unprocessable(f"key longer than S3's {MAX_KEY_BYTES}-byte limit")
    if any(_is_control(c) for c in key):
        return unprocessable("key contains control characters")
    if key.endswith("/"):
        return skip("folder placeholder (the key ends with '/')")
    found = config.routes.first(key)
    raw = config.routes.root(key)
    if found is None or raw is None:
        prefixes = ", ".join(repr(p) for p in config.routes.prefixes())
        reason = "no route matches the key" if raw else f"outside the routed prefixes ({prefixes})"
        return skip(f"{reason} (routes.yaml)")
    rule, groups = found
    mode = TriggerMode(rule.mode) if rule.mode else config.mode
    relative = key.removeprefix(raw)
    parts = relative.split("/")
    problem = key_problem(relative)
    if problem:
        return unprocessable(problem)
    if item.identity is None:
        return unprocessable(
            "malformed record: no versionId, eTag or sequencer to tell this upload from a re-upload"
        )

    uid = upload_id(item)
    is_marker = parts[-1] == config.marker_name
    source_folder: str | None = None
    if mode is TriggerMode.OBJECT:
        if is_marker:
            return skip(f"marker object {config.marker_name!r}: object mode starts on data objects only")
        folder = "".join(f"{part}/" for part in parts[:-1])
        snapshot_key = f"{config.snapshot_prefix}{folder}{uid}/{parts[-1]}"
    else:
        if not is_marker:
            return skip(f"not the marker object {config.marker_name!r}: marker mode starts on markers only")
        if len(parts) < 2:
            return skip(f"marker directly under the routed prefix {raw!r} names no folder")
        relative = "/".join(parts[:-1])
        source_folder = f"{raw}{relative}/"
        snapshot_key = f"{config.snapshot_prefix}{relative}/{uid}/"
    input_url = f"s3://{bucket}/{snapshot_key}"
    output_url = f"s3://{bucket}/{config.clean_prefix}{relative}/{uid}/"
    if len(snapshot_key.encode("utf-8")) > MAX_KEY_BYTES:
        return unprocessable(f"snapshot key longer than S3's {MAX_KEY_BYTES}-byte limit")
    if len(input_url) > MAX_ARGUMENT_CHARS:
        return unprocessable(
            f"input URL longer than the {MAX_ARGUMENT_CHARS} characters a processing job argument holds"
        )
    pipeline = rule.pipeline or config.pipeline_name
    values = {
        "snapshot_url": input_url,
        "output_url": output_url,
        "bucket": bucket,
        "key": key,
        "version_id": item.version_id if item.version_id not in (None, "null") else "",
        "size": "" if item.size is None else str(item.size),
        **groups,
    }
    parameters = rule.fill(values)
    types = config.parameter_types.get(pipeline, {})
    for name, value in parameters.items():
        problem = value_problem(types.get(name, "String"), value)
        if problem:
            kind = types.get(name, "String")
            return unprocessable(
                f"{rule.name}: parameter {name} ({kind} in pipeline {pipeline!r}): {problem}"
            )
    return Dataset(
        item,
        input_url,
        output_url,
        relative,
        snapshot_key,
        pipeline,
        parameters,
        rule.index,
        mode,
        source_folder,
    )


def key_problem(relative: str) -> str | None:
    """Why a key, relative to the folder it was found in, could lead a URL out of it (or None).

    The one rule for every key the trigger puts into a URL or a snapshot key: the notified key
    (:func:`route`) and each object of a marker's folder (``trigger.snapshot``).
    """
    if any(_is_control(c) for c in relative):
        return "key contains control characters"
    if any(_unsafe_segment(part) for part in relative.split("/")):
        return "unsafe key: an empty, '.' or '..' path segment"
    return None


def _unsafe_segment(part: str) -> bool:
    """Empty, '.', '..', or something a consumer could still turn into one (%-escaped, full-width dots)."""
    return any(form in {"", ".", ".."} for form in (part, unquote(part), unicodedata.normalize("NFKC", part)))


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"
