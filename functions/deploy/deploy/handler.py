"""Lambda entry point of the stack's custom resources: ``Custom::SageMakerPipeline`` (deploy.resource),
``Custom::Routes`` and ``Custom::RoutesCheck`` (deploy.routing), ``Custom::BucketEventBridge``
(deploy.bucket_events), chosen by the request's ResourceType.

Every request is answered: SUCCESS, or FAILED with a Reason naming what went wrong (the AWS error, the
bad property, the stale artifact). An unexpected error is logged with its traceback and answered
FAILED too, and a watchdog answers FAILED shortly before the function would time out, so a stack
never hangs waiting for a response. Only a response that cannot be delivered at all is raised
(Lambda's retry then runs the idempotent request again).
"""

from __future__ import annotations

import os
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config as BotocoreConfig

from contract import routes as contract_routes
from contract.routes import Routes
from deploy import routing
from deploy.artifact import Artifact
from deploy.bucket_events import RESOURCE_TYPE as BUCKET_EVENTBRIDGE_TYPE
from deploy.bucket_events import BucketEventBridgeResource
from deploy.errors import DeployError, ResponseNotSent
from deploy.resource import NOT_CREATED, Outcome, PipelineResource, Request
from deploy.response import CfnResponse, Responder

# Where pipeline.json, etl/ and image_uris.json are: the function's code directory, as `sam build`
# lays it out (the folder holding the `deploy` package), unless this variable says otherwise.
ARTIFACT_DIR_VARIABLE = "DEPLOY_ARTIFACT_DIR"

# Throttling, 5xx and connection errors are retried with backoff (standard mode, bounded), and every
# call times out: a slow API delays the answer but cannot hold it back forever.
CLIENT_CONFIG = BotocoreConfig(
    retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=30
)

# The watchdog answers FAILED this long before Lambda's timeout (room for the answer's own retries).
TIMEOUT_MARGIN_SECONDS = 30.0
# Waiting work (a Delete waiting for executions to stop) gives up this long before the watchdog would
# answer, so the answer is its own, naming what still runs (room for the calls that follow the wait).
WORK_MARGIN_SECONDS = 30.0
# Lambda's longest timeout: the time left when the context does not say.
LAMBDA_MAX_SECONDS = 900.0

logger = Logger()


PIPELINE_TYPE = "Custom::SageMakerPipeline"


def _artifact_dir() -> Path:
    return Path(os.environ.get(ARTIFACT_DIR_VARIABLE) or Path(__file__).resolve().parent.parent)


@cache
def pipeline_resource() -> PipelineResource:
    """Clients and artifact, made on first use and kept for the execution environment's life.

    Not at import: a broken artifact must become a FAILED answer, not an import error that leaves
    CloudFormation waiting. Endpoints come from the standard AWS settings (``AWS_ENDPOINT_URL`` too).
    """
    session = boto3.session.Session()
    return PipelineResource(
        s3=session.client("s3", config=CLIENT_CONFIG),
        sagemaker=session.client("sagemaker", config=CLIENT_CONFIG),
        artifact=Artifact.load(_artifact_dir()),
    )


def provider(resource_type: str) -> Any:
    """The operations (create, update, delete) of ``resource_type``, made on first use and kept."""
    return pipeline_resource() if resource_type == PIPELINE_TYPE else route_provider(resource_type)


@cache
def route_provider(resource_type: str) -> Any:
    """The routes' resources and the bucket setting; the routes are read on first need (not on Delete)."""
    session = boto3.session.Session()
    if resource_type == BUCKET_EVENTBRIDGE_TYPE:
        return BucketEventBridgeResource(session.client("s3", config=CLIENT_CONFIG))
    directory, override = _artifact_dir(), os.environ.get(contract_routes.FILE_VARIABLE, "")

    @cache
    def routes() -> Routes:
        return routing.load(directory, override)

    if resource_type == routing.ROUTES_TYPE:
        return routing.RoutesResource(routes)
    if resource_type == routing.CHECK_TYPE:
        return routing.RoutesCheckResource(routes, session.client("sagemaker", config=CLIENT_CONFIG))
    raise DeployError(
        f"unknown ResourceType {resource_type!r} (this function serves {PIPELINE_TYPE}, "
        f"{routing.ROUTES_TYPE}, {routing.CHECK_TYPE} and {BUCKET_EVENTBRIDGE_TYPE})"
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    """Carry out a CloudFormation Create/Update/Delete request and answer it at its ResponseURL."""
    request = CloudFormationCustomResourceEvent(event)
    if not request.get("ResponseURL"):
        raise DeployError("not a CloudFormation custom resource request (no ResponseURL): nothing to answer")
    logger.append_keys(
        request_type=request.get("RequestType"),
        request_id=request.get("RequestId"),
        logical_resource_id=request.get("LogicalResourceId"),
        physical_resource_id=request.physical_resource_id or None,
    )
    responder = Responder(request.response_url)
    watchdog = _start_watchdog(request, context, responder)
    deadline = time.monotonic() + _seconds_left(context) - TIMEOUT_MARGIN_SECONDS - WORK_MARGIN_SECONDS
    try:
        outcome = _handle(request, deadline)
    except DeployError as exc:
        logger.exception("request failed")
        answer = _failed(request, str(exc), context)
    except Exception as exc:  # the stack must get an answer: logged with its traceback, sent as Reason
        logger.exception("unexpected error")
        answer = _failed(request, f"unexpected error: {type(exc).__name__}: {exc}", context)
    else:
        answer = _response(request, "SUCCESS", outcome.physical_resource_id, data=outcome.data)
    finally:
        if watchdog is not None:
            watchdog.cancel()
    if not responder.answer(answer):
        logger.error("finished after the timeout answer was sent", extra={"status": answer.status})


def _start_watchdog(
    request: CloudFormationCustomResourceEvent, context: LambdaContext, responder: Responder
) -> threading.Timer | None:
    """Answer FAILED shortly before Lambda's timeout would end the function without an answer.

    Calls are bounded (timeouts, retries), but a slow enough AWS API could still outlast the
    function; without this CloudFormation would wait an hour for the response.
    """
    if getattr(context, "get_remaining_time_in_millis", None) is None:
        return None
    delay = max(_seconds_left(context) - TIMEOUT_MARGIN_SECONDS, 0.0)

    def expire() -> None:
        reason = (
            f"the deploy function did not finish within {delay:.0f} s (its timeout less a "
            f"{TIMEOUT_MARGIN_SECONDS:.0f} s margin); its log shows how far it got"
        )
        logger.error("about to time out: answering FAILED")
        try:
            responder.answer(_failed(request, reason, context))
        except ResponseNotSent:
            logger.exception("the timeout answer could not be sent")

    timer = threading.Timer(delay, expire)
    timer.daemon = True
    timer.start()
    return timer


def _seconds_left(context: LambdaContext) -> float:
    """The invocation's time left (Lambda's longest timeout when the context does not say)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if remaining is not None else LAMBDA_MAX_SECONDS


def _handle(request: CloudFormationCustomResourceEvent, deadline: float) -> Outcome:
    kind = request.get("RequestType")
    operation = {"Create": "create", "Update": "update", "Delete": "delete"}.get(str(kind))
    if operation is None:
        raise DeployError(f"unknown RequestType {kind!r} (expected Create, Update or Delete)")
    resource = provider(str(request.get("ResourceType", "")))
    call = Request(
        request_id=request.request_id,
        stack_id=request.stack_id,
        physical_resource_id=request.physical_resource_id,
        properties=dict(request.resource_properties),
        deadline=deadline,
    )
    outcome: Outcome = getattr(resource, operation)(call)
    return outcome


def _failed(request: CloudFormationCustomResourceEvent, reason: str, context: LambdaContext) -> CfnResponse:
    """FAILED, keeping the physical ID CloudFormation knows (or the not-created marker on a Create)."""
    if request.get("RequestType") == "Create" or not request.physical_resource_id:
        physical_id = f"{NOT_CREATED}{request.get('RequestId', '')}"
    else:
        physical_id = request.physical_resource_id
    where = f" (log stream {context.log_stream_name})" if getattr(context, "log_stream_name", "") else ""
    return _response(request, "FAILED", physical_id, reason=f"{reason}{where}")


def _response(
    request: CloudFormationCustomResourceEvent,
    status: Literal["SUCCESS", "FAILED"],
    physical_id: str,
    *,
    reason: str = "",
    data: dict[str, str] | None = None,
) -> CfnResponse:
    return CfnResponse(
        status=status,
        physical_resource_id=physical_id,
        stack_id=str(request.get("StackId", "")),
        request_id=str(request.get("RequestId", "")),
        logical_resource_id=str(request.get("LogicalResourceId", "")),
        reason=reason,
        data=data or {},
    )
