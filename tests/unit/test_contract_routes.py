"""routes.yaml: what a valid file means, and the one-line refusal an invalid one gets before any deploy."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract import ledger
from contract.routes import (
    DEFAULT_PARAMETERS,
    RoutesError,
    event_pattern,
    loads,
    parse,
    start_arns,
    value_problem,
)
from pipeline.__main__ import compile_routes
from pipeline.__main__ import main as build_main

ROOT = Path(__file__).resolve().parents[2]
CLAIMS = {
    "prefix": "raw/claims/",
    "pattern": r"date=(?P<date>\d{4}-\d{2}-\d{2})/[^/]+\.csv",
    "pipeline": "claims-training",
    "parameters": {"InputDataUrl": "{snapshot_url}", "RunDate": "{date}"},
}


def routes_of(*items: dict[str, object]) -> dict[str, object]:
    return {"routes": list(items)}


def test_the_shipped_routes_reproduce_one_prefix_to_the_stacks_own_pipeline() -> None:
    # Given the repository's routes.yaml, compiled as the build compiles it
    routes = loads(compile_routes(ROOT / "routes.yaml"))
    # Then every upload under raw/ (and nothing else) goes to the stack's own pipeline, as before routes
    assert [r.prefix for r in routes.routes] == ["raw/"]
    assert routes.first("raw/coil2000/Caravan.csv") is not None
    assert routes.first("clean/x.csv") is None
    route, _ = routes.first("raw/a.csv") or (None, None)
    assert route is not None
    assert route.pipeline == ""
    assert dict(route.parameters) == DEFAULT_PARAMETERS


def test_first_matching_route_wins_and_fills_parameters_from_the_key() -> None:
    # Given a dataset route with a pattern before the catch-all
    routes = parse(routes_of(CLAIMS, {"prefix": "raw/"}))
    # When a key matching the pattern arrives
    found = routes.first("raw/claims/date=2026-11-30/part-1.csv")
    # Then the claims route wins and its parameters come from the key and the upload
    assert found is not None
    route, groups = found
    assert route.pipeline == "claims-training"
    filled = route.fill({"snapshot_url": "s3://b/snapshot/x", **groups})
    assert filled == {"InputDataUrl": "s3://b/snapshot/x", "RunDate": "2026-11-30"}
    # And a key under the same prefix that does not match the pattern falls through to the next route
    other = routes.first("raw/claims/readme.txt")
    assert other is not None
    assert other[0].index == 2


def test_the_pattern_matches_the_whole_rest_of_the_key() -> None:
    route = parse(routes_of({"prefix": "in/", "pattern": r"[a-z]+\.csv"})).routes[0]
    assert route.match("in/abc.csv") == {}
    assert route.match("in/abc.csv.tmp") is None  # not a search: the whole rest must match
    assert route.match("in/sub/abc.csv") is None
    assert parse(routes_of({"prefix": "in/", "pattern": r"^[a-z]+\.csv$"})).routes[0].match("in/a.csv") == {}


def test_derived_permissions_and_event_pattern_name_exactly_the_routes() -> None:
    routes = parse(
        routes_of(CLAIMS, {"prefix": "raw/"}, {"prefix": "landing/", "pipeline": "claims-training"})
    )
    arns = start_arns(routes, "own-pipeline", "aws", "eu-west-1", "123456789012")
    assert arns == [
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/claims-training",
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/own-pipeline",
    ]
    pattern = event_pattern(routes, "my-bucket")
    assert pattern["detail"]["bucket"] == {"name": ["my-bucket"]}
    # raw/claims/ lies inside raw/: listening to raw/ covers it
    assert pattern["detail"]["object"]["key"] == [{"prefix": "landing/"}, {"prefix": "raw/"}]


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"routes": []}, "'routes' must be a non-empty list"),
        ({"rules": []}, "one top-level field, 'routes'"),
        (routes_of({"pattern": "x"}), "route 1: field 'prefix' is required"),
        (routes_of({"prefix": "raw/", "pipline": "x"}), "route 1 (prefix 'raw/'): unknown field 'pipline'"),
        (routes_of({"prefix": "raw"}), "route 1 (prefix 'raw'): field 'prefix' must end with '/'"),
        (routes_of({"prefix": "raw/", "pattern": "(?P<d>"}), "field 'pattern' does not compile"),
        (
            routes_of({"prefix": "raw/", "parameters": {"RunDate": "{date}"}}),
            "route 1 (prefix 'raw/'): field 'parameters.RunDate': placeholder {date} is not defined",
        ),
        (
            routes_of({"prefix": "raw/", "parameters": {"X": "{key.upper}"}}),
            "field 'parameters.X': {key.upper} is not a placeholder",
        ),
        (routes_of({"prefix": "raw/", "pattern": "(?P<key>.*)"}), "group 'key' hides the placeholder"),
        (routes_of({"prefix": "in*/"}), "route 1 (prefix 'in*/'): field 'prefix' must not contain '*'"),
        (routes_of({"prefix": "raw/", "mode": "folder"}), "field 'mode' must be one of object, marker"),
        (routes_of({"prefix": "raw/", "pipeline": "no_such name"}), "field 'pipeline' 'no_such name' is not"),
        (
            routes_of({"prefix": "raw/"}, {"prefix": "raw/claims/"}),
            "route 2 (prefix 'raw/claims/'): can never match: route 1 (prefix 'raw/') comes first",
        ),
        (
            routes_of({"prefix": "raw/", "pattern": "a.*"}, {"prefix": "raw/", "pattern": "a.*"}),
            "route 2 (prefix 'raw/'): can never match",
        ),
    ],
)
def test_an_invalid_routes_file_is_refused_naming_the_route_and_the_field(
    routes: dict[str, object], message: str
) -> None:
    with pytest.raises(RoutesError) as refused:
        parse(routes)
    assert message in str(refused.value)


def test_the_build_refuses_an_invalid_routes_yaml_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a routes.yaml with a misspelt field
    source = tmp_path / "routes.yaml"
    source.write_text("routes:\n  - prefix: raw/\n    patern: '.*'\n", encoding="utf-8")
    out = tmp_path / "routes.json"
    # When the build compiles it
    code = build_main(["routes", str(source), "--out", str(out)])
    # Then it stops with one line naming the file, the route and the field, and writes nothing
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{source}: route 1 (prefix 'raw/'): unknown field 'patern' (the fields: " + (
        "prefix, pattern, pipeline, parameters, mode)"
    )
    assert not out.exists()


def test_a_routes_yaml_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "routes.yaml"
    source.write_text("routes: [\n", encoding="utf-8")
    with pytest.raises(RoutesError, match="cannot read it"):
        compile_routes(source)


@pytest.mark.parametrize(
    ("kind", "value", "problem"),
    [
        ("Integer", "42", None),
        ("Integer", "4.2", "'4.2' is not an integer"),
        ("Float", "0.05", None),
        ("Float", "nan", "'nan' is not a finite number"),
        ("Float", "abc", "'abc' is not a number"),
        ("Boolean", "true", None),
        ("Boolean", "yes", "'yes' is not true or false"),
        ("String", "x" * 1025, "longer than the 1024 characters"),
    ],
)
def test_a_value_the_pipeline_would_refuse_is_named(kind: str, value: str, problem: str | None) -> None:
    found = value_problem(kind, value)
    assert found == problem if problem is None else (found is not None and problem in found)


def test_the_ledger_description_round_trips_and_fits_the_api_limit() -> None:
    # Given an upload with a key at S3's limit and an output folder as long
    upload = ledger.Upload(
        "b", "raw/" + "k" * 1020, "v1", "00AB", None, 12, "2026-12-03T10:02:00Z", "s3://b/" + "o" * 1500
    )
    # Then its description fits SageMaker's 3,072 characters and still names the upload
    text = ledger.describe(upload)
    assert len(text) <= ledger.MAX_DESCRIPTION
    back = ledger.read(text)
    assert back is not None
    assert (back.bucket, back.key, back.version_id) == ("b", upload.key, "v1")
    short = ledger.Upload("b", "raw/a.csv", output="s3://b/clean/a/")
    assert ledger.read(ledger.describe(short)) == short
    # And a description someone else wrote is not an upload
    assert ledger.read("started by hand") is None
    assert ledger.read(ledger.TAG + "{not json") is None
