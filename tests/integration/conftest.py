"""Fixtures of the integration tier: the real handlers against the emulator (moto server over HTTP)."""

from tests.support.deploy import built_artifact, cloudformation, data_bucket, deploy, s3, sagemaker
from tests.support.trigger import event, trigger

__all__ = ["built_artifact", "cloudformation", "data_bucket", "deploy", "event", "s3", "sagemaker", "trigger"]
