"""Properties of key handling that hold for any key: decoding round-trips, and no URL escapes its prefix.

No emulator here: these drive the trigger's own normalisation, routing and request building with
generated keys (issue 5's fuzzing suite pushes the same promises through the handler at volume).
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trigger.config import Config, TriggerMode
from trigger.events import Action, ObjectEvent, normalise
from trigger.request import build_request
from trigger.routing import Dataset, route, upload_id

from contract.routes import parse as parse_routes

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
    request = build_request(outcome)
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
