"""Routes in the trigger: which pipeline an upload starts, with which parameters, and what it records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trigger.config import Config, TriggerMode, shipped_routes
from trigger.errors import ConfigError
from trigger.events import Action, ObjectEvent, Skip
from trigger.request import build_request, idempotency_token
from trigger.routing import Dataset, route

from contract import ledger
from contract.routes import parse
from pipeline.__main__ import compile_routes

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "example-data-bucket"
ROUTES = parse(
    {
        "routes": [
            {
                "prefix": "raw/claims/",
                "pattern": r"date=(?P<date>\d{4}-\d{2}-\d{2})/(?P<name>[^/]+)\.csv",
                "pipeline": "claims-training",
                "parameters": {"InputDataUrl": "{snapshot_url}", "RunDate": "{date}", "Epochs": "{name}"},
            },
            {"prefix": "raw/"},
            {"prefix": "landing/", "mode": "marker"},
        ]
    }
)
TYPES = {"claims-training": {"InputDataUrl": "String", "RunDate": "String", "Epochs": "Integer"}}


def upload(key: str, **fields: str | None) -> ObjectEvent:
    values: dict[str, str | None] = {"version_id": "v1", "etag": "e1", "sequencer": "0A1B"}
    values.update(fields)
    return ObjectEvent(
        "sqs/eventbridge", "Object Created", Action.CREATED, BUCKET, key, **values, size=12, event_time=None
    )


def routed(key: str, **fields: str | None) -> Dataset:
    outcome = route(
        upload(key, **fields), Config("s3-sagemaker-trigger", routes=ROUTES, parameter_types=TYPES)
    )
    assert isinstance(outcome, Dataset), outcome
    return outcome


def test_the_shipped_routes_yaml_is_what_a_config_made_in_code_routes() -> None:
    assert json.loads(compile_routes(ROOT / "routes.yaml")) == shipped_routes().to_json()


def test_a_routed_upload_starts_its_pipeline_with_parameters_from_its_key() -> None:
    # Given an upload under the claims route, its date and a number in its key
    dataset = routed("raw/claims/date=2026-11-30/42.csv")
    # When its request is built
    request = build_request(dataset, 12)
    # Then it starts the claims pipeline with exactly the route's parameters, filled from the key
    assert request["PipelineName"] == "claims-training"
    assert request["PipelineParameters"] == [
        {"Name": "InputDataUrl", "Value": dataset.input_url},
        {"Name": "RunDate", "Value": "2026-11-30"},
        {"Name": "Epochs", "Value": "42"},
    ]
    # And its paths are relative to the outermost routed prefix: adding the route moved no output
    assert dataset.output_url == f"s3://{BUCKET}/clean/claims/date=2026-11-30/42.csv/0A1B/"


def test_other_uploads_fall_through_to_the_stacks_own_pipeline_as_before() -> None:
    dataset = routed("raw/claims/readme.txt")
    request = build_request(dataset, 12)
    assert request["PipelineName"] == "s3-sagemaker-trigger"
    assert request["PipelineParameters"] == [
        {"Name": "InputDataUrl", "Value": dataset.input_url},
        {"Name": "OutputDataUrl", "Value": dataset.output_url},
        {"Name": "ProcessingVolumeSizeInGB", "Value": "30"},  # sized for its 12 bytes: the least, 30 GB
    ]
    assert dataset.rule.index == 2


def test_a_route_may_run_in_marker_mode_while_the_stack_runs_objects() -> None:
    data = route(upload("landing/day1/a.csv"), Config("p", routes=ROUTES))
    marker = route(upload("landing/day1/_SUCCESS"), Config("p", routes=ROUTES))
    assert isinstance(data, Skip)
    assert "marker mode starts on markers only" in data.reason
    assert isinstance(marker, Dataset)
    assert (marker.mode, marker.source_folder) == (TriggerMode.MARKER, "landing/day1/")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("clean/x.csv", "outside the routed prefixes ('landing/', 'raw/') (routes.yaml)"),
        (
            "raw/claims/date=2026-11-30/ten.csv",
            "parameter Epochs (Integer in pipeline 'claims-training'): 'ten'",
        ),
    ],
)
def test_an_upload_no_route_can_run_is_a_logged_skip_that_says_why(key: str, reason: str) -> None:
    # A value the pipeline would refuse is a skip before anything is copied or started, never a failed run
    outcome = route(upload(key), Config("s3-sagemaker-trigger", routes=ROUTES, parameter_types=TYPES))
    assert isinstance(outcome, Skip)
    assert reason in outcome.reason


def test_the_execution_description_records_which_upload_it_runs() -> None:
    dataset = routed("raw/claims/date=2026-11-30/42.csv")
    recorded = ledger.read(build_request(dataset, 12)["PipelineExecutionDescription"])
    assert recorded == ledger.Upload(
        BUCKET, "raw/claims/date=2026-11-30/42.csv", "v1", "0A1B", "e1", 12, None, dataset.output_url
    )


def test_a_backfill_rerun_is_a_new_run_and_a_plain_redelivery_is_not() -> None:
    first = routed("raw/a.csv", sequencer=None)
    again = routed("raw/a.csv", sequencer=None)
    rerun = routed("raw/a.csv", sequencer=None, rerun="2026-12-03T10:00:00Z")
    assert idempotency_token(first) == idempotency_token(again)
    assert idempotency_token(rerun) != idempotency_token(first)
    assert rerun.output_url != first.output_url
    assert (
        ledger.read(build_request(rerun, 12)["PipelineExecutionDescription"]).rerun == "2026-12-03T10:00:00Z"
    )  # type: ignore[union-attr]


def test_the_trigger_refuses_routes_it_cannot_read_or_that_overlap_its_folders(tmp_path: Path) -> None:
    environ = {"PIPELINE_NAME": "p", "ROUTES_FILE": str(tmp_path / "missing.json")}
    with pytest.raises(ConfigError, match="cannot read the routes"):
        Config.from_env(environ)
    bad = tmp_path / "routes.json"
    bad.write_text('{"routes": [{"prefix": "clean/"}]}', encoding="utf-8")
    with pytest.raises(ConfigError, match="the routed prefix 'clean/' and CLEAN_PREFIX 'clean/' overlap"):
        Config.from_env({**environ, "ROUTES_FILE": str(bad)})
    with pytest.raises(ConfigError, match="ROUTE_PARAMETER_TYPES must be a JSON object"):
        Config.from_env(
            {**environ, "ROUTES_FILE": str(bad), "ROUTE_PARAMETER_TYPES": "[1]"}, shipped_routes()
        )
