"""Create, update and delete the SageMaker pipeline for one custom resource request.

The physical resource ID is the pipeline's name. A Create that fails returns :data:`NOT_CREATED`
(plus the request ID) instead, a value no pipeline can be named (``:`` is not allowed), so the
rollback's Delete knows there is nothing to delete and never touches a same-named pipeline it did not
create.

Every pipeline this function creates or updates carries :data:`~deploy.properties.OWNER_TAG`, the name
of its stack. A Create that finds the name taken (a pipeline kept by ``RetainOnDelete``, or a create
whose answer was lost although it succeeded) adopts that pipeline only when the tag names this stack.
A Delete first stops the pipeline's running executions and waits until they have stopped:
``DeletePipeline`` refuses a pipeline that has any.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from deploy.artifact import Artifact
from deploy.errors import DeployError
from deploy.properties import OWNER_TAG, PipelineProperties

NOT_CREATED = "not-created:"
SCRIPT_CONTENT_TYPE = "application/zip"  # the ETL bundle, a zip application
# Execution statuses DeletePipeline refuses (the others: Stopped, Failed, Succeeded).
RUNNING_STATUSES = frozenset({"Executing", "Stopping"})
# How often a Delete looks again whether the executions it stopped have stopped.
STOP_POLL_SECONDS = 10.0

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
    deadline: float  # time.monotonic() by which the work must be done (the answer still to be sent)

    @property
    def stack_name(self) -> str:
        """The stack's name, from its ID (``arn:...:cloudformation:<region>:<account>:stack/<name>/<id>``)."""
        parts = self.stack_id.split(":", 5)[-1].split("/")
        if len(parts) != 3 or parts[0] != "stack" or not parts[1]:
            raise DeployError(f"StackId {self.stack_id!r} is not a CloudFormation stack ARN")
        return parts[1]


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
        outcome = self._update_pipeline(props, definition, request)
        if outcome is None:
            logger.warning("pipeline missing (deleted outside CloudFormation?): creating it again")
            return self._create_pipeline(props, definition, request)
        return outcome

    def delete(self, request: Request) -> Outcome:
        name = request.physical_resource_id
        if not name or name.startswith(NOT_CREATED):
            logger.info("nothing to delete: the create had failed", extra={"physical_id": name})
            return Outcome(name, {})
        if PipelineProperties.retains(request.properties):
            logger.info("pipeline retained (RetainOnDelete is true)", extra={"pipeline_name": name})
            return Outcome(name, {})
        self._stop_executions(name, request)
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
        tags = _tags(props, request)
        try:
            arn = self.sagemaker.create_pipeline(
                **_pipeline(props, definition, request),
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                # Lambda may deliver the same request twice: the same token makes the second call a no-op.
                ClientRequestToken=request.request_id,
            )["PipelineArn"]
        except ClientError as exc:
            return self._adopt(props, definition, request, exc)
        except BotoCoreError as exc:
            raise DeployError(f"CreatePipeline {props.pipeline_name} failed: {exc}") from exc
        logger.info("pipeline created", extra={"pipeline_arn": arn})
        return _outcome(props.pipeline_name, arn)

    def _adopt(
        self, props: PipelineProperties, definition: str, request: Request, refusal: ClientError
    ) -> Outcome:
        """CreatePipeline refused: update a pipeline of that name if it is this stack's, else fail.

        SageMaker's answer for a taken name is a ValidationException whose wording has changed over time,
        so the pipeline itself is looked up rather than the message parsed.
        """
        name, stack = props.pipeline_name, request.stack_name
        try:
            arn = str(self.sagemaker.describe_pipeline(PipelineName=name)["PipelineArn"])
        except ClientError as exc:
            if _code(exc) == "ResourceNotFound":  # no such pipeline: the refusal was about something else
                raise DeployError(f"CreatePipeline {name} failed: {refusal}") from refusal
            raise DeployError(f"CreatePipeline {name} failed: {refusal}; DescribePipeline: {exc}") from exc
        except BotoCoreError as exc:
            raise DeployError(f"CreatePipeline {name} failed: {refusal}; DescribePipeline: {exc}") from exc
        owner = self._current_tags(arn).get(OWNER_TAG)
        if owner != stack:
            whose = f"its {OWNER_TAG} tag is {owner!r}" if owner is not None else f"it has no {OWNER_TAG} tag"
            raise DeployError(
                f"CreatePipeline {name} failed: a pipeline of that name already exists and does not belong "
                f"to stack {stack} ({whose}). Choose another PipelineName or delete that pipeline; if it is "
                f"this stack's, tag it {OWNER_TAG}={stack} and deploy again"
            ) from refusal
        logger.warning(
            "a pipeline of this stack already has the name: adopting it", extra={"pipeline_arn": arn}
        )
        outcome = self._update_pipeline(props, definition, request)
        if outcome is None:
            raise DeployError(f"CreatePipeline {name} failed: {refusal}; the pipeline was deleted meanwhile")
        return outcome

    def _update_pipeline(
        self, props: PipelineProperties, definition: str, request: Request
    ) -> Outcome | None:
        """UpdatePipeline, then the tags; None when there is no pipeline of that name."""
        try:
            arn = self.sagemaker.update_pipeline(**_pipeline(props, definition, request))["PipelineArn"]
        except ClientError as exc:
            if _code(exc) == "ResourceNotFound":
                return None
            raise DeployError(f"UpdatePipeline {props.pipeline_name} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise DeployError(f"UpdatePipeline {props.pipeline_name} failed: {exc}") from exc
        self._reconcile_tags(arn, _tags(props, request))
        logger.info("pipeline updated", extra={"pipeline_arn": arn})
        return _outcome(props.pipeline_name, arn)

    def _stop_executions(self, name: str, request: Request) -> None:
        """Stop the pipeline's running executions and wait until none runs, before ``request.deadline``.

        SageMaker has no waiter for pipeline executions, so this lists them again every
        :data:`STOP_POLL_SECONDS`; each round also stops any execution started meanwhile (the trigger
        may still be running while its stack is deleted). An execution still running at the deadline
        fails the Delete, naming it: deleting the stack again later finishes the job.
        """
        stopped: dict[str, str] = {}  # execution ARN -> "" once stopping, or why SageMaker refused
        while True:
            running = self._running_executions(name)
            for arn in sorted(
                a for a, status in running.items() if status == "Executing" and a not in stopped
            ):
                stopped[arn] = self._stop(arn, request)
            if not running:
                break
            if time.monotonic() + STOP_POLL_SECONDS > request.deadline:
                refused = [f"{arn}: {why}" for arn, why in stopped.items() if why and arn in running]
                raise DeployError(
                    f"DeletePipeline {name}: {len(running)} execution(s) still running after "
                    f"StopPipelineExecution ({', '.join(sorted(running))})"
                    + (f"; refused: {'; '.join(refused)}" if refused else "")
                    + ". Delete again once they have stopped (s3sm status shows them)"
                )
            logger.info("waiting for executions to stop", extra={"running": sorted(running)})
            time.sleep(STOP_POLL_SECONDS)
        if stopped:
            logger.info("executions stopped", extra={"stopped": sorted(stopped)})

    def _running_executions(self, name: str) -> dict[str, str]:
        """{execution ARN: status} of the pipeline's executions DeletePipeline would refuse for."""
        running: dict[str, str] = {}
        try:
            for page in self.sagemaker.get_paginator("list_pipeline_executions").paginate(PipelineName=name):
                for summary in page.get("PipelineExecutionSummaries", []):
                    if summary.get("PipelineExecutionStatus") in RUNNING_STATUSES:
                        running[summary["PipelineExecutionArn"]] = summary["PipelineExecutionStatus"]
        except ClientError as exc:
            if _code(exc) == "ResourceNotFound":  # the pipeline is gone: nothing runs
                return {}
            raise DeployError(f"ListPipelineExecutions {name} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise DeployError(f"ListPipelineExecutions {name} failed: {exc}") from exc
        return running

    def _stop(self, arn: str, request: Request) -> str:
        """StopPipelineExecution; "" when accepted, else SageMaker's refusal (the execution may just have
        ended: the next listing tells)."""
        token = hashlib.sha256(
            f"{request.request_id}/{arn}".encode()
        ).hexdigest()  # one per request and execution
        try:
            self.sagemaker.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=token)
        except ClientError as exc:
            logger.warning("StopPipelineExecution refused", extra={"execution_arn": arn, "error": str(exc)})
            return str(exc)
        except BotoCoreError as exc:
            raise DeployError(f"StopPipelineExecution {arn} failed: {exc}") from exc
        logger.info("execution stopping", extra={"execution_arn": arn})
        return ""

    def _current_tags(self, arn: str) -> dict[str, str]:
        current: dict[str, str] = {}
        try:
            for page in self.sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
                current.update({t["Key"]: t.get("Value", "") for t in page.get("Tags", [])})
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"ListTags {arn} failed: {exc}") from exc
        return current

    def _reconcile_tags(self, arn: str, desired: dict[str, str]) -> None:
        """Make the pipeline's tags exactly ``desired`` (``aws:`` system tags left alone).

        Keys that go away or change value are deleted first, then the new values added: SageMaker's
        AddTags would overwrite, but this keeps one value per key everywhere (moto appends).
        """
        current = self._current_tags(arn)
        stale = sorted(k for k, v in current.items() if not k.startswith("aws:") and desired.get(k) != v)
        missing = [{"Key": k, "Value": v} for k, v in desired.items() if current.get(k) != v]
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


def _pipeline(props: PipelineProperties, definition: str, request: Request) -> dict[str, str]:
    """What CreatePipeline and UpdatePipeline both set."""
    return {
        "PipelineName": props.pipeline_name,
        "PipelineDisplayName": props.pipeline_name,
        "PipelineDefinition": definition,
        "PipelineDescription": _description(props, request),
        "RoleArn": props.role_arn,
    }


def _tags(props: PipelineProperties, request: Request) -> dict[str, str]:
    """The template's tags and the owner tag naming this stack."""
    return {**dict(props.tags), OWNER_TAG: request.stack_name}


def _description(props: PipelineProperties, request: Request) -> str:
    text = (
        f"Cleans the uploads routed to it (routes.yaml) from s3://{props.data_bucket}/ into "
        f"s3://{props.data_bucket}/{props.clean_prefix}. Managed by CloudFormation stack {request.stack_id}."
    )
    return text[:3072]  # PipelineDescription's limit


def _outcome(name: str, arn: str) -> Outcome:
    return Outcome(name, {"PipelineArn": arn, "PipelineName": name})
