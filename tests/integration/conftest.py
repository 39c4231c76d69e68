"""Fixtures of the integration tier: the real handlers against the emulator (moto server over HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from deploy import handler as deploy_handler
from deploy import response as cfn_response

from local.emulator import Emulator
from tests.support.deploy import CloudFormation, Deploy, build_artifact, cloudformation_server
from tests.support.project import function_env
from tests.support.trigger import Trigger, trigger_harness


@pytest.fixture
def trigger(
    aws: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Trigger]:
    """Given the trigger configured from events/env.json and its pipeline created in the emulator."""
    with trigger_harness(monkeypatch, capsys) as harness:
        yield harness


@pytest.fixture
def event(load_event: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    return load_event


@pytest.fixture(scope="session")
def built_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `sam build` puts next to the deploy package: pipeline.json, image_uris.json, etl/, routes.json."""
    return build_artifact(tmp_path_factory.mktemp("deploy-artifact"))


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    with cloudformation_server() as cfn:
        yield cfn


@pytest.fixture
def deploy(
    aws: Emulator,
    built_artifact: Path,
    cloudformation: CloudFormation,
    load_event: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deploy]:
    """Given the real deploy function configured from events/env.json, its artifact and CloudFormation."""
    for name, value in function_env("DeployFunction").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cfn_response, "RETRY_DELAY_SECONDS", 0.0)
    fixture = Deploy(cloudformation, load_event, monkeypatch)
    fixture.use_artifact(built_artifact)
    yield fixture
    deploy_handler.pipeline_resource.cache_clear()  # its clients point at this emulator
    deploy_handler.route_provider.cache_clear()


@pytest.fixture
def data_bucket(s3: Any) -> str:
    """The versioned bucket the sample events name (events/cfn-*.json's DataBucket)."""
    bucket = "example-data-bucket"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


@pytest.fixture
def s3(aws: Emulator) -> Any:
    return boto3.client("s3")


@pytest.fixture
def sagemaker(aws: Emulator) -> Any:
    return boto3.client("sagemaker")
