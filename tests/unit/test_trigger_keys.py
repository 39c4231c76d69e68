"""Properties of key handling that hold for any key: decoding round-trips, and no URL escapes its prefix.

No emulator here: these drive the trigger's own normalisation, routing and request building with
generated keys (issue 5's fuzzing suite pushes the same promises through the handler at volume).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trigger.config import Config, TriggerMode
from trigger.events import Action, ObjectEvent, Skip, normalise
from trigger.request import build_request
from trigger.routing import Dataset, route, upload_id

from contract import artifact, datafiles
from contract.routes import parse as parse_routes
from etl import read
from etl.outputs import output_names

BUCKET = "example-data-bucket"
DISPLAY_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}")
TRICKY_SEGMENTS = [
    "",
    ".",
    "..",
    "%2e%2e",
    "%2E.",
    "\uff0e\uff0e",
    "raw",
    "clean",
    "a b",
    "x+y",
    "100%",
    "日本",
    "_SUCCESS",
    "\x00",
    "\n",
    "\x7f",
    "k" * 300,
]
plain = st.from_regex(r"[A-Za-z0-9 _+\-.%é日]{1,10}", fullmatch=True)
printable = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12)
segments = st.one_of(st.sampled_from(TRICKY_SEGMENTS), printable, plain, plain)
keys = st.one_of(
    st.lists(segments, min_size=1, max_size=6).map("/".join),
    st.lists(segments, min_size=1, max_size=6).map(lambda parts: "raw/" + "/".join(parts)),
    st.text(max_size=40),
)
ROUTE_SETS = [
    [{"prefix": "raw/"}],
    [{"prefix": "data/raw/"}],
    [{"prefix": "in coming/"}],
    # a dataset with a pattern and a pipeline of its own before the catch-all, and a second root
    [
        {
            "prefix": "raw/a/",
            "pattern": "(?P<part>[^/]+)/.*",
            "pipeline": "other",
            "parameters": {"P": "{part}"},
        },
        {"prefix": "raw/"},
        {"prefix": "landing/", "mode": "marker"},
    ],
]
configs = st.builds(
    Config,
    pipeline_name=st.just("p"),
    routes=st.sampled_from([parse_routes({"routes": routes}) for routes in ROUTE_SETS]),
    clean_prefix=st.sampled_from(["clean/", "data/clean/"]),
    mode=st.sampled_from(list(TriggerMode)),
)


def created(key: str) -> ObjectEvent:
    return ObjectEvent("s3", "ObjectCreated:Put", Action.CREATED, BUCKET, key, "v1", "e1", "01")


def keys_for(config: Config) -> st.SearchStrategy[str]:
    """Keys of every sort, most of them under a routed prefix (where the checks matter)."""
    prefix = st.sampled_from([route.prefix for route in config.routes.routes])
    parts = st.lists(segments, min_size=1, max_size=6)
    under_raw = st.tuples(prefix, parts).map(lambda p: p[0] + "/".join(p[1]))
    marker = st.tuples(prefix, st.lists(segments, min_size=0, max_size=3)).map(
        lambda p: p[0] + "/".join([*p[1], config.marker_name])
    )
    return st.one_of(keys, under_raw, under_raw, marker)


@settings(max_examples=600, deadline=None)
@given(config=configs, data=st.data())
def test_no_key_yields_a_data_url_outside_the_prefixes(config: Config, data: st.DataObject) -> None:
    check_key(data.draw(keys_for(config), label="key"), config)


@pytest.mark.parametrize(
    "key",
    ["raw/../clean/x", "raw/a/%2e%2e/x", "raw/\uff0e\uff0e/x", "raw//x", "raw/./x", "raw/a/..", "raw/x/."],
)
def test_crafted_escapes_are_skipped(key: str) -> None:
    outcome = route(created(key), Config("p"))
    assert not isinstance(outcome, Dataset)
    assert outcome.reason == "unsafe key: an empty, '.' or '..' path segment"


def check_key(key: str, config: Config) -> None:
    outcome = route(created(key), config)
    if not isinstance(outcome, Dataset):
        assert outcome.reason  # a skip always says why
        return
    snapshot_root = f"s3://{BUCKET}/{config.snapshot_prefix}"
    clean_root = f"s3://{BUCKET}/{config.clean_prefix}"
    # The run reads a snapshot (never raw/ itself, which may change) and writes its own output folder
    assert outcome.input_url == f"s3://{BUCKET}/{outcome.snapshot_key}"
    assert outcome.input_url.startswith(snapshot_root)
    assert outcome.output_url.startswith(clean_root)
    assert outcome.output_url.endswith(f"/{upload_id(outcome.source)}/")
    if outcome.source_folder is not None:  # marker mode copies that folder of a routed prefix
        assert config.routes.root(outcome.source_folder) is not None
        assert outcome.source_folder.endswith("/")
        assert outcome.snapshot_key.endswith("/")
    for url, root in ((outcome.input_url, snapshot_root), (outcome.output_url, clean_root)):
        parts = url.removeprefix(root).removesuffix("/").split("/")
        assert all(part not in {"", ".", ".."} for part in parts)
        assert len(url) <= 1024
    request = build_request(outcome, 1024)
    assert DISPLAY_NAME.fullmatch(request["PipelineExecutionDisplayName"])
    assert re.fullmatch(r"[0-9a-f]{64}", request["ClientRequestToken"])
    assert len(request["PipelineExecutionDescription"]) <= 3072


@settings(max_examples=300, deadline=None)
@given(key=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60))
def test_any_key_survives_each_encoding_exactly(key: str) -> None:
    for encoded in (quote_plus(key, safe="/"), quote_plus(key, safe=""), quote(key, safe="/")):
        record = {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": encoded, "eTag": "e", "sequencer": "01"}},
        }
        (item,) = normalise({"Records": [record]})
        assert isinstance(item, ObjectEvent)
        assert item.key == key


# -- long keys (finding 13) and what is not data (finding 11) -------------------------------------------

LONGEST_BUCKET = "b" * 63
ETL_OUTPUT_NAMES = output_names("algo-100", [f"algo-{n}" for n in range(1, 101)])  # the longest it writes


def within_limits(dataset: Dataset) -> None:
    """The run's URLs fit a processing input's and output's S3Uri (1,024 characters), every key S3's
    1,024 bytes, the ETL's output files included."""
    assert len(dataset.input_url) <= 1024
    assert len(dataset.output_url) <= 1024
    assert len(dataset.snapshot_key.encode()) <= 1024
    if dataset.source_folder is None:  # the one object is downloaded to a file named as its snapshot
        assert len(dataset.snapshot_key.rsplit("/", 1)[1].encode()) <= 255
    output_key = dataset.output_url.removeprefix(f"s3://{dataset.source.bucket}/")
    assert all(len(f"{output_key}{name}".encode()) <= 1024 for name in ETL_OUTPUT_NAMES.values())


@settings(max_examples=300, deadline=None)
@given(
    folders=st.lists(st.from_regex(r"[a-z0-9=é日-]{1,40}", fullmatch=True), max_size=30),
    name=st.from_regex(r"[A-Za-z0-9é日 -]{1,400}\.csv", fullmatch=True),
    sequencer=st.from_regex(r"[0-9A-F]{16,64}", fullmatch=True),
    mode=st.sampled_from(list(TriggerMode)),
)
def test_every_key_s3_accepts_runs_within_the_processing_jobs_limits(
    folders: list[str], name: str, sequencer: str, mode: TriggerMode
) -> None:
    # Given any key S3 accepts under raw/ (at most 1,024 bytes), deep and Hive-style or with a long name,
    # in a bucket with the longest name S3 allows
    tail = "/_SUCCESS" if mode is TriggerMode.MARKER else ""
    body = "".join(f"{folder}/" for folder in folders) + name
    body = body.encode()[: 1024 - len("raw/") - len(tail)].decode(errors="ignore").rstrip("/")
    key = f"raw/{body}{tail}"
    event = ObjectEvent(
        "s3", "ObjectCreated:Put", Action.CREATED, LONGEST_BUCKET, key, "v1", "e", sequencer, 10
    )

    # When the trigger routes it
    outcome = route(event, Config("p", mode=mode))

    # Then it runs, every URL and key within the limits, no URL passed where only 256 characters fit
    assert isinstance(outcome, Dataset), outcome
    within_limits(outcome)


def test_a_700_character_hive_style_key_runs_and_its_output_is_found_under_its_own_path() -> None:
    # Given a deep, Hive-style partitioned key of 700 characters with Spark's long file name
    name = "part-00000-7b1c9d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e-c000.csv"
    folders = "raw/source=web/year=2026/month=12/day=03/" + "".join(f"h={n:06d}/" for n in range(80))
    key = folders[: 700 - len(name)] + name
    assert len(key) == 700
    assert "//" not in key

    # When it is routed
    outcome = route(created(key), Config("p"))

    # Then it runs on a snapshot named by a digest (not by the key's folders) that keeps its file name,
    # and writes under the key's own path, where a user looks for it
    assert isinstance(outcome, Dataset)
    within_limits(outcome)
    relative = key.removeprefix("raw/")
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # of the key
    assert outcome.snapshot_key == f"snapshot/{digest}/01/{relative.rsplit('/', 1)[1]}"
    assert outcome.output_url == f"s3://{BUCKET}/clean/{relative}/01/"


def test_a_key_too_long_to_repeat_gets_its_start_and_a_digest() -> None:
    # Given a key of S3's full 1,024 bytes, most of it the file name
    key = "raw/partner/" + "n" * (1024 - len("raw/partner/") - len(".csv")) + ".csv"

    # When it is routed
    outcome = route(created(key), Config("p"))

    # Then its snapshot's file name (255 bytes at most) and its output folder begin as the key does and
    # end in a digest of the whole
    assert isinstance(outcome, Dataset)
    within_limits(outcome)
    output_path = outcome.output_url.removeprefix(f"s3://{BUCKET}/clean/")
    assert re.fullmatch(r"partner/n+~[0-9a-f]{16}/01/", output_path)
    name = outcome.snapshot_key.rsplit("/", 1)[1]
    assert re.fullmatch(r"snapshot/[0-9a-f]{32}/01/n+~[0-9a-f]{16}", outcome.snapshot_key)
    assert len(name) == 255


@pytest.mark.parametrize(
    ("key", "size", "why"),
    [
        ("raw/batch/_temporary/0/part-00000.csv", 100, "path segment '_temporary' starts with '_'"),
        ("raw/batch/.spark-staging-1a2b/part-00000.csv", 100, "path segment '.spark-staging-1a2b'"),
        ("raw/.hidden.csv", 100, "hidden file (path segment '.hidden.csv' starts with '.')"),
        ("raw/batch/_part.csv", 100, "temporary or marker file"),
        ("raw/batch/empty.csv", 0, "zero-byte placeholder"),
    ],
)
def test_what_is_not_data_starts_no_run_and_says_why(key: str, size: int, why: str) -> None:
    # Given an upload that is not data: hidden, temporary (Spark, Hadoop) or empty
    event = ObjectEvent("s3", "ObjectCreated:Put", Action.CREATED, BUCKET, key, "v1", "e1", "01", size)

    # When it is routed in object mode
    outcome = route(event, Config("p"))

    # Then it is skipped with its reason (an INFO line: nothing was lost), never a billed run
    assert isinstance(outcome, Skip)
    assert outcome.reason.startswith("not data, nothing to run: ")
    assert why in outcome.reason
    assert not outcome.unprocessable


def test_the_etl_bundle_carries_the_same_rule_the_trigger_applies() -> None:
    # Given the rule declared once (contract.datafiles), which the ETL's own check imports
    assert read.not_data is datafiles.not_data

    # When the ETL is bundled as the pipeline ships it
    with zipfile.ZipFile(io.BytesIO(artifact.bundle(Path(read.__file__).parent))) as bundle:
        shipped = bundle.read("contract/datafiles.py")

    # Then the bundle holds that very module, so a run ignores exactly what the trigger skips
    assert shipped == Path(datafiles.__file__).read_bytes()
