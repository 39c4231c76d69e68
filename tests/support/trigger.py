"""The trigger's harness: the real handler, configured from events/env.json, against the emulator."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from trigger import config as trigger_config
from trigger import handler

from tests.support.lambda_context import LambdaContext
from tests.support.project import trigger_env

ROLE_ARN = "arn:aws:iam::123456789012:role/pipeline-execution"
COPY_STAND_IN = "tests.support.trigger.copy-stand-in"


def snapshot_of(relative: str, upload: str, name: str = "") -> str:
    """The snapshot key of the dataset at ``relative`` under raw/ for its upload ``upload``: a folder named
    by 32 hex digits of the SHA-256 of its key (not by the key's folders), then the object's ``name``."""
    return f"snapshot/{hashlib.sha256(f'raw/{relative}'.encode()).hexdigest()[:32]}/{upload}/{name}"


def pipeline_definition() -> str:
    """A definition with the contract's parameters (the emulator does not run it)."""
    parameters = [
        {"Name": "InputDataUrl", "Type": "String", "DefaultValue": "s3://example-data-bucket/raw/"},
        {"Name": "OutputDataUrl", "Type": "String", "DefaultValue": "s3://example-data-bucket/clean/"},
        {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.large"},
        {"Name": "ProcessingInstanceCount", "Type": "Integer", "DefaultValue": 1},
        {"Name": "ProcessingVolumeSizeInGB", "Type": "Integer", "DefaultValue": 30},
    ]
    return json.dumps({"Version": "2020-12-01", "Parameters": parameters, "Steps": []})


@dataclass(frozen=True)
class Execution:
    arn: str
    display_name: str
    description: str
    parameters: dict[str, str]


@dataclass
class Trigger:
    """The real trigger handler, its SageMaker calls, its logs and metrics, and the emulator's view."""

    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    pipeline_name: str
    logs: io.StringIO
    calls: list[dict[str, Any]] = field(default_factory=list)
    copies: list[dict[str, Any]] = field(default_factory=list)

    def configure(self, **env: str | None) -> None:
        """Change the environment (None removes a variable); the next invocation reads it again."""
        for name, value in env.items():
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        trigger_config.settings.cache_clear()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return handler.lambda_handler(event, LambdaContext())

    @property
    def client(self) -> Any:
        return handler.sagemaker_client()

    def executions(self) -> list[Execution]:
        sm = boto3.client("sagemaker")
        pages = sm.get_paginator("list_pipeline_executions").paginate(PipelineName=self.pipeline_name)
        found = []
        for page in pages:
            for summary in page["PipelineExecutionSummaries"]:
                arn = summary["PipelineExecutionArn"]
                params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
                found.append(
                    Execution(
                        arn=arn,
                        display_name=summary["PipelineExecutionDisplayName"],
                        description=summary["PipelineExecutionDescription"],
                        parameters={p["Name"]: p["Value"] for p in params["PipelineParameters"]},
                    )
                )
        return found

    def summary(self, result: dict[str, Any]) -> dict[str, Any]:
        """What an invocation started and skipped: its return value, or (from the upload queue, which
        only hears of batch item failures) its log lines."""
        if "batchItemFailures" not in result:
            return result
        records = self.log_records()
        started = [
            {k: r[k] for k in ("key", "inputDataUrl", "outputDataUrl")} | {"executionArn": r["execution_arn"]}
            for r in records
            if r["message"] == "pipeline execution started"
        ]
        skipped = [
            {"key": r.get("key"), "reason": r["reason"]} for r in records if r["message"] == "record skipped"
        ]
        return {"started": started, "skipped": skipped, **result}

    def copy_for_real(self) -> Any:
        """The trigger's S3 client, its CopyObject no longer answered by the fixture (for a Stubber)."""
        client = handler.s3_client()
        client.meta.events.unregister("before-call.s3.CopyObject", unique_id=COPY_STAND_IN)
        return client

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().split("\n") if line.strip()]

    def metrics(self) -> dict[str, float]:
        """The metric values of the last EMF document the handler printed (one per invocation)."""
        documents = [
            json.loads(line) for line in self.capsys.readouterr().out.splitlines() if '"_aws"' in line
        ]
        assert documents, "the handler printed no metrics"
        last = documents[-1]
        names = [m["Name"] for m in last["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        return {name: sum(last[name]) if isinstance(last[name], list) else last[name] for name in names}


@contextmanager
def trigger_harness(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Trigger]:
    """The trigger configured from events/env.json and its pipeline created in the emulator the AWS_*
    variables point at, for as long as the block runs."""
    env = trigger_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    trigger_config.settings.cache_clear()
    handler.sagemaker_client.cache_clear()
    handler.s3_client.cache_clear()
    boto3.client("sagemaker").create_pipeline(
        PipelineName=env["PIPELINE_NAME"], PipelineDefinition=pipeline_definition(), RoleArn=ROLE_ARN
    )
    logs = io.StringIO()
    stream_handler = handler.logger.registered_handler
    previous = stream_handler.setStream(logs)  # type: ignore[attr-defined]
    harness = Trigger(monkeypatch, capsys, env["PIPELINE_NAME"], logs)

    def record(params: dict[str, Any], **_: Any) -> None:
        harness.calls.append(json.loads(json.dumps(params)))  # a deep copy of the request as sent

    harness.client.meta.events.register("provide-client-params.sagemaker.StartPipelineExecution", record)

    def copy_request(params: dict[str, Any], **_: Any) -> None:
        harness.copies.append(json.loads(json.dumps(params)))

    def copied(**_: Any) -> tuple[Any, dict[str, Any]]:
        # These tests are about events, keys and starts: the sample events name objects and versions
        # the emulator does not hold, so the snapshot copy is recorded and answered here
        # (tests/integration/test_trigger_snapshot.py copies real objects in the emulator).
        return SimpleNamespace(status_code=200, headers={}), {"CopyObjectResult": {"ETag": '"e"'}}

    s3_events = handler.s3_client().meta.events
    s3_events.register("provide-client-params.s3.CopyObject", copy_request)
    s3_events.register("before-call.s3.CopyObject", copied, unique_id=COPY_STAND_IN)
    yield harness
    stream_handler.setStream(previous)  # type: ignore[attr-defined]
    trigger_config.settings.cache_clear()
    handler.sagemaker_client.cache_clear()
    handler.s3_client.cache_clear()
