"""``Custom::BucketEventBridge``: an existing bucket's "send to Amazon EventBridge" on, nothing else touched.

A bucket has one notification configuration, and ``PutBucketNotificationConfiguration`` replaces all of
it with what the request holds (S3 API reference). So Create reads the configuration
(``GetBucketNotificationConfiguration``), adds ``EventBridgeConfiguration`` if it is absent, and writes
back everything else exactly as read, with ``SkipDestinationValidation`` so that S3 neither re-tests the
user's own queues, topics and functions nor sends them test events. Delete removes the setting only if
this resource added it, the same way. Whether it did is the physical resource ID (``<bucket>|added`` or
``<bucket>|kept``): CloudFormation hands it back on Update and Delete.

Between the read and the write another writer's change would be lost: S3 offers no condition on this
call. docs/own-bucket.md says so.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from contract.names import BUCKET_NAME
from deploy.errors import DeployError
from deploy.resource import NOT_CREATED, Outcome, Request

RESOURCE_TYPE = "Custom::BucketEventBridge"
SETTING = "EventBridgeConfiguration"
ADDED, KEPT = "added", "kept"
_KNOWN = frozenset({"BucketName"})
_PASSIVE = frozenset({"ServiceToken", "ArtifactVersion"})

logger = Logger(child=True)


def _bucket(properties: dict[str, Any]) -> str:
    unknown = sorted(set(properties) - _KNOWN - _PASSIVE)
    bucket = str(properties.get("BucketName") or "").strip()
    if unknown:
        raise DeployError(f"invalid BucketEventBridge properties: unknown properties: {', '.join(unknown)}")
    if not BUCKET_NAME.fullmatch(bucket):
        raise DeployError(f"invalid BucketEventBridge properties: BucketName {bucket!r} is not a bucket name")
    return bucket


class BucketEventBridgeResource:
    """The bucket's EventBridge setting, on for the stack's life; nothing else of the bucket changes."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def create(self, request: Request) -> Outcome:
        bucket = _bucket(request.properties)
        config = self._read(bucket)
        if SETTING in config:
            logger.info("EventBridge already on: left as it is", extra={"bucket": bucket})
            return Outcome(f"{bucket}|{KEPT}", {"BucketName": bucket})
        self._write(bucket, {**config, SETTING: {}})
        logger.info("EventBridge turned on", extra={"bucket": bucket, "kept": sorted(config)})
        return Outcome(f"{bucket}|{ADDED}", {"BucketName": bucket})

    def update(self, request: Request) -> Outcome:
        bucket = _bucket(request.properties)
        old_bucket, _, how = request.physical_resource_id.rpartition("|")
        if old_bucket == bucket and how == ADDED:
            # Still ours to remove later: turned on again if someone turned it off meanwhile.
            config = self._read(bucket)
            if SETTING not in config:
                self._write(bucket, {**config, SETTING: {}})
            return Outcome(request.physical_resource_id, {"BucketName": bucket})
        # Another bucket, or one whose setting was not ours: a new resource (CloudFormation then sends
        # the old one a Delete, which undoes only what it added).
        return self.create(request)

    def delete(self, request: Request) -> Outcome:
        physical = request.physical_resource_id
        bucket, _, how = physical.rpartition("|")
        if physical.startswith(NOT_CREATED) or how != ADDED:
            logger.info("nothing to undo", extra={"physical_id": physical})
            return Outcome(physical, {})
        config = self._read(bucket, missing_ok=True)
        if SETTING in config:
            self._write(bucket, {k: v for k, v in config.items() if k != SETTING})
            logger.info("EventBridge turned off (this stack had turned it on)", extra={"bucket": bucket})
        return Outcome(physical, {})

    def _read(self, bucket: str, *, missing_ok: bool = False) -> dict[str, Any]:
        """The bucket's notification configuration as S3 holds it ({} for no such bucket, if missing_ok)."""
        try:
            answer = self.s3.get_bucket_notification_configuration(Bucket=bucket)
        except ClientError as exc:
            if missing_ok and str(exc.response.get("Error", {}).get("Code", "")) == "NoSuchBucket":
                logger.info("the bucket is gone, and its setting with it", extra={"bucket": bucket})
                return {}
            raise DeployError(f"GetBucketNotificationConfiguration {bucket} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise DeployError(f"GetBucketNotificationConfiguration {bucket} failed: {exc}") from exc
        return {k: v for k, v in answer.items() if k != "ResponseMetadata"}

    def _write(self, bucket: str, config: dict[str, Any]) -> None:
        try:
            self.s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=config, SkipDestinationValidation=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"PutBucketNotificationConfiguration {bucket} failed: {exc}") from exc


__all__ = ["RESOURCE_TYPE", "BucketEventBridgeResource"]
