"""s3sm as a user runs it, and stubbed AWS clients for its unit tests (botocore Stubber: the exact calls,
no network)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ops import cli

REGION = "eu-west-1"
ACCOUNT = "111122223333"
PIPELINE = "s3-sagemaker-trigger"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}"
UPLOAD_QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/prod-UploadQueue-AbC123"
DEAD_LETTERS = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/prod-TriggerDeadLetterQueue-XyZ789"
OUTPUTS = {
    "PipelineName": PIPELINE,
    "PipelineArn": PIPELINE_ARN,
    "DataBucketName": "prod-databucket-1a2b3c",
    "UploadQueueUrl": UPLOAD_QUEUE,
    "TriggerDeadLetterQueueUrl": DEAD_LETTERS,
}


class Stubs:
    """One stubbed client per service, handed out by a session-like ``client()``."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.stubbers: dict[str, Stubber] = {}
        self.region_name = REGION

    def __getitem__(self, service: str) -> Stubber:
        if service not in self.stubbers:
            client = boto3.client(
                service,
                region_name=REGION,
                aws_access_key_id="unit",
                aws_secret_access_key="unit",  # noqa: S106
            )
            self.clients[service] = client
            self.stubbers[service] = Stubber(client)
            self.stubbers[service].activate()
        return self.stubbers[service]

    def client(self, service: str, **kwargs: Any) -> Any:
        self[service]
        return self.clients[service]

    def verify(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


def s3sm(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``s3sm ARGV`` as the shell runs it: its exit status, stdout and stderr."""
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
