"""Which object notifications are datasets, which pipeline each starts with which parameters, and where
each dataset's data is read and written.

The routes (``routes.yaml``, :mod:`contract.routes`) decide the pipeline and its parameters: the first
route whose prefix and pattern match the key; a key no route matches is a skip. Paths are relative to
the outermost routed prefix the key lies under (``<raw>``). A parameter value the pipeline would refuse
(its type, as the deploy read it from the pipeline: ``Config.parameter_types``) is a skip saying why,
never a failed execution.

Every upload has an *upload id* (:func:`upload_id`): S3's ``sequencer``, which sorts in upload order
for one key. For an accepted key ``<raw><rel>`` (``<dir>/<name>``), object mode snapshots the object to
``<snapshot><digest>/<id>/<name>``, reads that (``InputDataUrl``) and writes ``<clean><rel>/<id>/``
(``OutputDataUrl``); marker mode (key ``<raw><folder>/<marker>``) snapshots each data object of
``<raw><folder>/`` to ``<snapshot><digest>/<id>/...``, reads that folder and writes
``<clean><folder>/<id>/``. ``<digest>`` (:func:`digest`) names the dataset's key (its folder, in
marker mode) in 32 hexadecimal digits, so a snapshot's key does not repeat the key's folders. So a run
reads its upload's own bytes and writes an output no other upload's run touches, whatever the order
the runs finish in.

Long keys: a processing job's input and output ``S3Uri`` and a pipeline parameter hold 1,024
characters, and the ETL gets its input only through the processing input (no container argument,
which would hold 256). Every snapshot and output folder key is kept within :data:`MAX_DATA_KEY_BYTES`,
so its ``s3://`` URL fits in any bucket, and a snapshot's file name within the 255 bytes a file name
holds where the job downloads it: a name or an output folder's path that would not fit is cut, and
:func:`fit` ends it with a digest of the whole (``<start>~<16 hex digits>``). Every key S3 accepts
(1,024 bytes) runs in object mode; a key keeps its whole name in its snapshot up to a 255-byte file
name, and its whole path in its output folder up to about 880 bytes.

Every other notification becomes a :class:`~trigger.events.Skip` with its reason: anything that is not
data (``contract.datafiles``: a path segment starting with ``.`` or ``_``, an empty object; in marker
mode the marker is the exception), and any key that could lead a URL out of the prefixes (``..`` or
``.`` or empty path segments, control characters, keys over S3's 1024-byte limit), so the URLs built
here always lie under the configured prefixes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING
from urllib.parse import unquote

from contract.datafiles import not_data
from contract.names import BUCKET_NAME
from trigger.config import Config, TriggerMode
from trigger.events import Action, ObjectEvent, Skip

if TYPE_CHECKING:  # contract.routes is imported on first use (cold start): the config loads it then
    from contract.routes import Route

MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
# A processing input's or output's S3Uri, and a pipeline parameter's value, hold 1,024 characters. A
# key of at most this many bytes has an s3:// URL within that in any bucket (names of up to 63).
MAX_DATA_KEY_BYTES = 1024 - len("s3://") - 63 - len("/")
# The ETL's outputs are named in the folder (full_data-algo-100.csv, ...): their keys stay within S3's
# limit as long as MAX_DATA_KEY_BYTES + OUTPUT_NAME_BYTES <= MAX_KEY_BYTES.
OUTPUT_NAME_BYTES = 64
# A processing job downloads each input object to a file named by the key's last segments, and a Linux
# file name holds 255 bytes (NAME_MAX): a longer one could not be downloaded.
MAX_FILE_NAME_BYTES = 255
DIGEST_CHARS = 32  # a dataset's snapshot folder: 128 bits of the SHA-256 of its key (or folder)
CUT_DIGEST_CHARS = 16  # what ends a name cut by fit(): 64 bits of the SHA-256 of the whole name
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
    rule: Route  # the route that matched
    values: dict[str, str]  # its placeholders' values, all but the volume (known once the copy is made)
    mode: TriggerMode
    source_folder: str | None = None  # marker mode: the raw folder whose objects are snapshotted

    @property
    def sizes_volume(self) -> bool:
        return self.rule.sizes_volume

    def parameters(self, input_bytes: int) -> dict[str, str]:
        """The StartPipelineExecution parameters, for a snapshot of ``input_bytes``."""
        return self.rule.fill(self.values, input_bytes)


def upload_id(item: ObjectEvent) -> str:
    """The folder name that tells this upload of the key from the others, in upload order.

    S3's ``sequencer`` (hexadecimal; a later upload of a key has a greater one). A record without one
    (some emulators, hand-made events) gets ``<eventTime digits>-<identity hash>`` instead: ordered by
    time to the millisecond, and still unique per upload.
    """
    if item.sequencer and _SEQUENCER.fullmatch(item.sequencer):
        return item.sequencer
    stamp = "".join(_DIGITS.findall(item.event_time or ""))[:17]
    hashed = sha256(str(item.identity).encode("utf-8")).hexdigest()[:16]
    return f"{stamp}-{hashed}" if stamp else hashed


def digest(path: str) -> str:
    """The snapshot folder's name for the dataset at ``path`` (its key, or its folder in marker mode)."""
    return sha256(path.encode("utf-8")).hexdigest()[:DIGEST_CHARS]


def fit(text: str, budget: int) -> str | None:
    """``text`` if its UTF-8 takes at most ``budget`` bytes; else its start, cut at a character, then
    ``~`` and a digest of the whole, in ``budget`` bytes. None when ``budget`` leaves no room for that."""
    data = text.encode("utf-8")
    if len(data) <= budget:
        return text
    keep = budget - 1 - CUT_DIGEST_CHARS
    if keep < 1 or not text:
        return None
    start = data[:keep].decode("utf-8", errors="ignore")  # a character cut in two is dropped
    return f"{start}~{sha256(data).hexdigest()[:CUT_DIGEST_CHARS]}"


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
        why = not_data(relative, item.size)
        if why:
            return skip(f"not data, nothing to run: {why}")
        head = f"{config.snapshot_prefix}{digest(raw + relative)}/{uid}/"
        snapshot_key = _within(head, parts[-1], "", most=MAX_FILE_NAME_BYTES)
    else:
        if not is_marker:
            return skip(f"not the marker object {config.marker_name!r}: marker mode starts on markers only")
        if len(parts) < 2:
            return skip(f"marker directly under the routed prefix {raw!r} names no folder")
        relative = "/".join(parts[:-1])
        why = not_data(relative)
        if why:
            return skip(f"the marker's folder {relative!r} is not data, nothing to run: {why}")
        source_folder = f"{raw}{relative}/"
        snapshot_key = _within(f"{config.snapshot_prefix}{digest(raw + relative)}/{uid}/", "", "")
    output_key = _within(config.clean_prefix, relative, f"/{uid}/")
    if snapshot_key is None or output_key is None:
        prefix = "SNAPSHOT_PREFIX" if snapshot_key is None else "CLEAN_PREFIX"
        return unprocessable(f"{prefix} is too long to leave room for this upload's folder")
    input_url, output_url = f"s3://{bucket}/{snapshot_key}", f"s3://{bucket}/{output_key}"
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
    dataset = Dataset(
        item, input_url, output_url, relative, snapshot_key, pipeline, rule, values, mode, source_folder
    )
    from contract.routes import value_problem  # imported on first use, like the routes (cold start)

    types = config.parameter_types.get(pipeline, {})
    for name, value in dataset.parameters(item.size or 0).items():
        problem = value_problem(types.get(name, "String"), value)
        if problem:
            kind = types.get(name, "String")
            return unprocessable(
                f"{rule.name}: parameter {name} ({kind} in pipeline {pipeline!r}): {problem}"
            )
    return dataset


def _within(head: str, path: str, tail: str, most: int = MAX_KEY_BYTES) -> str | None:
    """``head + path + tail``, ``path`` cut by :func:`fit` to at most ``most`` bytes and to keep the key
    within :data:`MAX_DATA_KEY_BYTES`; None when ``head`` and ``tail`` leave no room."""
    cut = fit(path, min(most, MAX_DATA_KEY_BYTES - len(f"{head}{tail}".encode())))
    return None if cut is None else f"{head}{cut}{tail}"


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
