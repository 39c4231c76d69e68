"""Rendering the definition is offline: `sam build` on a machine with no AWS credentials sends nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_render_without_credentials_makes_no_network_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a machine with no AWS credentials and no endpoint (the unit guard refuses any connection,
    # including botocore's probe of the EC2 instance metadata address)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    from pipeline.pipeline import render_template

    # When the definition is rendered from the ETL package
    definition = json.loads(render_template(ROOT / "etl"))

    # Then it is the one-step pipeline, with its placeholders still in place
    (step,) = definition["Steps"]
    assert step["Type"] == "Processing"
    assert step["Arguments"]["AppSpecification"]["ImageUri"] == "${ImageUri}"
