"""`python -m local`'s command line and the lines `make up` prints."""

from __future__ import annotations

import pytest

from local.cli import DEFAULT_PORT, describe, main


def test_a_quota_below_one_is_refused_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--max-processing-instances", "-1"]) == 2
    assert "max_processing_instances must be at least 1 (got -1)" in capsys.readouterr().err


def test_a_time_scale_that_is_not_a_positive_number_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["up", "--time-scale", "0"])
    assert "--time-scale: must be positive" in capsys.readouterr().err


def test_up_listens_on_a_fixed_port_unless_told_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["up", "--help"])
    assert f"(default {DEFAULT_PORT}; 0: a free one)" in " ".join(capsys.readouterr().out.split())


def test_a_skipped_upload_is_printed_with_its_reason() -> None:
    # Given the trigger's log line for a record it skipped, When `make up` tells it
    line = describe("skipped", {"key": "raw/batch/_SUCCESS", "reason": "a marker object: nothing to run"})
    # Then the key and the reason are on the line
    assert line == ("skipped", "raw/batch/_SUCCESS: a marker object: nothing to run")


def test_an_upload_outside_every_route_is_printed_with_the_routes() -> None:
    line = describe("unrouted", {"key": "raw2/x.csv", "prefixes": ["raw/", "landing/"]})
    assert line == ("skipped", "raw2/x.csv: outside every route (routes: raw/, landing/)")


def test_a_notification_names_the_command_as_it_runs_from_the_project() -> None:
    # Given the topic's sentence, which names `s3sm` as a deployed stack's operator runs it
    message = "Pipeline p: execution x is Failed.\nSee why: s3sm status --stack s --execution x"
    # When `make up` prints it, Then the command runs as printed, from the project's folder
    stage, text = describe("topic-notification", {"topic": "NotificationTopic", "message": message}) or (
        "",
        "",
    )
    assert stage == "notify"
    assert "See why: .venv/bin/s3sm status --stack s --execution x" in text


def test_a_batch_handled_without_a_failure_adds_no_line_of_its_own() -> None:
    assert describe("invoked", {"batch": 1, "failed": 0, "duration_ms": 1.0}) is None
