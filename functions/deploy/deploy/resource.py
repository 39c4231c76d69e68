"""Create, update and delete the SageMaker pipeline for one custom resource request.

The physical resource ID is the pipeline's name. A Create that fails returns :data:`NOT_CREATED`
(plus the request ID) instead, a value no pipeline can be named (``:`` is not allowed), so the
rollback's Delete knows there is nothing to delete and never touches a same-named pipeline it did not
create.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from deploy.artifact import Artifact
from deploy.errors import DeployError
from deploy.properties import PipelineProperties

NOT_CREATED = "not-created:"
SCRIPT_CONTENT_TYPE = "application/zip"  # the ETL bundle, a zip application

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    physical_resource_id: str
    data: dict[str, str]


@dataclass(frozen=True, slots=True)
class Request:
    """The parts of a CloudFormation request the operations need."""

    request_id: str
    stack_id: str
    physical_resource_id: str
    properties: dict[str, Any]


class PipelineResource:
    """The three operations, bound to the clients and the build artifact."""

    def __init__(self, s3: Any, sagemaker: Any, artifact: Artifact) -> None:
        self.s3 = s3
        self.sagemaker = sagemaker
        self.artifact = artifact

    # -- CloudFormation's request types ---------------------------------------------------------

    def create(self, request: Request) -> Outcome:
        props = PipelineProperties.parse(request.properties)
        definition = self._prepare(props)
        return self._create_pipeline(props, definition, request)

    def update(self, request: Request) -> Outcome:
        props = PipelineProperties.parse(request.properties)
        definition = self._prepare(props)
        if props.pipeline_name != request.physical_resource_id:
            # A new name is a new pipeline: CloudFormation then deletes the old one (a Delete request
            # with the old physical ID and the old properties, so the old retain flag applies).
            logger.info("pipeline renamed: creating a new one", extra={"old": request.physical_resource_id})
            return self._create_pipeline(props, definition, request)
        try:
            arn = self.sagemaker.update_pipeline(
                PipelineName=props.pipeline_name,
                PipelineDisplayName=props.pipeline_name,
                PipelineDefinition=definition,
                PipelineDescription=_description(props, request),
                RoleArn=props.role_arn,
            )["PipelineArn"]
        except ClientError as exc:
            if _code(exc) != "ResourceNotFound":
                raise DeployError(f"UpdatePipeline {props.pipeline_name} failed: {exc}") from exc
            logger.warning("pipeline missing (deleted outside CloudFormation?): creating it again")
            return self._create_pipeline(props, definition, request)
        except BotoCoreError as exc:
            raise DeployError(f"UpdatePipeline {props.pipeline_name} failed: {exc}") from exc
        self._reconcile_tags(arn, props)
        logger.info("pipeline updated", extra={"pipeline_arn": arn})
        return _outcome(props.pipeline_name, arn)

    def delete(self, request: Request) -> Outcome:
        name = request.physical_resource_id
        if not name or name.startswith(NOT_CREATED):
            logger.info("nothing to delete: the create had failed", extra={"physical_id": name})
            return Outcome(name, {})
        if PipelineProperties.retains(request.properties):
            logger.info("pipeline retained (RetainOnDelete is true)", extra={"pipeline_name": name})
            return Outcome(name, {})
        try:
            self.sagemaker.delete_pipeline(PipelineName=name, ClientRequestToken=request.request_id)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFound":
                raise DeployError(f"DeletePipeline {name} failed: {exc}") from exc
            logger.info("pipeline already gone", extra={"pipeline_name": name})
        except BotoCoreError as exc:
            raise DeployError(f"DeletePipeline {name} failed: {exc}") from exc
        else:
            logger.info("pipeline deleted", extra={"pipeline_name": name})
        return Outcome(name, {})

    # -- steps ----------------------------------------------------------------------------------

    def _prepare(self, props: PipelineProperties) -> str:
        """Upload the ETL bundle (if not there yet) and fill the definition's placeholders."""
        region = str(self.sagemaker.meta.region_name)
        definition = self.artifact.fill(
            {
                "DataBucket": props.data_bucket,
                "RoleArn": props.role_arn,
                "ImageUri": self.artifact.image_uri(region),
                "SnapshotPrefix": props.snapshot_prefix,
                "CleanPrefix": props.clean_prefix,
                "ProcessingInstanceType": props.processing_instance_type,
            }
        )
        self._upload_script(props.data_bucket)
        return definition

    def _upload_script(self, bucket: str) -> None:
        """Put the ETL bundle at its content-addressed key unless an object is already there.

        ``If-None-Match: *`` makes the check and the write one atomic call that needs no permission
        beyond s3:PutObject; the key is the content's hash, so an object there holds these bytes.
        """
        key = self.artifact.code_key
        where = f"s3://{bucket}/{key}"
        try:
            self.s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=self.artifact.script,
                ContentType=SCRIPT_CONTENT_TYPE,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            # 412: already there. 409: a concurrent conditional write of the same key (same bytes).
            if _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                logger.info("ETL bundle already uploaded", extra={"code_url": where})
                return
            raise DeployError(f"uploading the ETL bundle to {where} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise DeployError(f"uploading the ETL bundle to {where} failed: {exc}") from exc
        logger.info("ETL bundle uploaded", extra={"code_url": where})

    def _create_pipeline(self, props: PipelineProperties, definition: str, request: Request) -> Outcome:
        arn = self._call(
            "CreatePipeline",
            props.pipeline_name,
            self.sagemaker.create_pipeline,
            PipelineName=props.pipeline_name,
            PipelineDisplayName=props.pipeline_name,
            PipelineDefinition=definition,
            PipelineDescription=_description(props, request),
            RoleArn=props.role_arn,
            Tags=props.tag_list(),
            # Lambda may deliver the same request twice: the same token makes the second call a no-op.
            ClientRequestToken=request.request_id,
        )["PipelineArn"]
        logger.info("pipeline created", extra={"pipeline_arn": arn})
        return _outcome(props.pipeline_name, arn)

    def _reconcile_tags(self, arn: str, props: PipelineProperties) -> None:
        """Make the pipeline's tags exactly the template's (``aws:`` system tags left alone).

        Keys that go away or change value are deleted first, then the new values added: SageMaker's
        AddTags would overwrite, but this keeps one value per key everywhere (moto appends).
        """
        current: dict[str, str] = {}
        paginator = self.sagemaker.get_paginator("list_tags")
        try:
            for page in paginator.paginate(ResourceArn=arn):
                current.update({t["Key"]: t.get("Value", "") for t in page.get("Tags", [])})
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"ListTags {arn} failed: {exc}") from exc
        desired = dict(props.tags)
        stale = sorted(k for k, v in current.items() if not k.startswith("aws:") and desired.get(k) != v)
        missing = [{"Key": k, "Value": v} for k, v in props.tags if current.get(k) != v]
        if stale:
            self._call("DeleteTags", arn, self.sagemaker.delete_tags, ResourceArn=arn, TagKeys=stale)
        if missing:
            self._call("AddTags", arn, self.sagemaker.add_tags, ResourceArn=arn, Tags=missing)
        if stale or missing:
            logger.info(
                "pipeline tags reconciled", extra={"removed": stale, "set": [t["Key"] for t in missing]}
            )

    @staticmethod
    def _call(operation: str, target: str, method: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"{operation} {target} failed: {exc}") from exc
        return response


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _description(props: PipelineProperties, request: Request) -> str:
    text = (
        f"Cleans the uploads routed to it (routes.yaml) from s3://{props.data_bucket}/ into "
        f"s3://{props.data_bucket}/{props.clean_prefix}. Managed by CloudFormation stack {request.stack_id}."
    )
    return text[:3072]  # PipelineDescription's limit


def _outcome(name: str, arn: str) -> Outcome:
    return Outcome(name, {"PipelineArn": arn, "PipelineName": name})
