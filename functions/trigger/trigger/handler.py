"""Lambda entry point: S3 upload notifications in, one SageMaker pipeline execution per dataset out.

Thin on purpose: environment settings (``trigger.config``), event shapes (``trigger.events``), dataset
rules (``trigger.routing``) and the request (``trigger.request``) are plain modules; this one wires them
to Powertools' Logger and Metrics and to the SageMaker client.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError, ClientError

from trigger.config import settings
from trigger.errors import StartFailed
from trigger.events import Skip, normalise
from trigger.request import build_request
from trigger.routing import route

logger = Logger()
metrics = Metrics()

# Throttling, 5xx and connection errors are retried by botocore's standard retry mode (exponential
# backoff with jitter, at most MAX_ATTEMPTS calls in all: botocore's "total_max_attempts"; its older
# "max_attempts" key counts retries only); what still fails is reported by StartFailed.
MAX_ATTEMPTS = 5
CLIENT_CONFIG = BotocoreConfig(
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}, connect_timeout=3, read_timeout=10
)  # StartPipelineExecution answers in well under a second; short timeouts leave room for the retries
_RECORD_KEYS = ("bucket", "key", "execution_arn")


@cache
def sagemaker_client() -> Any:
    """The SageMaker client, made on first use and then kept for the execution environment's life.

    Not at import: building a client costs about as much as importing boto3 itself, which alone would
    break the cold-start budget (importing this module <= 1.3x ``import boto3``; see
    ``bench/trigger_coldstart.py``). The first invocation pays it instead, once. The endpoint comes
    from the standard AWS settings (``AWS_ENDPOINT_URL`` included), never from code.
    """
    return boto3.session.Session().client("sagemaker", config=CLIENT_CONFIG)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, Any]]]:
    """Start the pipeline once per dataset announced in ``event``; skip (and log) everything else.

    Returns ``{"started": [{key, inputDataUrl, outputDataUrl, executionArn}], "skipped": [{key,
    reason}]}``. Raises ConfigError (bad environment), UnsupportedEvent (an event of another kind) or,
    after every record was handled, StartFailed naming each key whose start still failed.
    """
    config = settings()
    metrics.namespace = config.metrics_namespace
    started: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    failures: list[tuple[str, str]] = []
    last_error: Exception | None = None
    tokens: set[str] = set()

    for item in normalise(event):
        outcome = item if isinstance(item, Skip) else route(item, config)
        if isinstance(outcome, Skip):
            _skip(outcome, skipped)
            continue
        source = outcome.source
        request = build_request(outcome, config)
        if request["ClientRequestToken"] in tokens:
            _skip(Skip(source.key, "duplicate of an earlier record in this event", source.bucket), skipped)
            continue
        tokens.add(request["ClientRequestToken"])
        urls = {"inputDataUrl": outcome.input_url, "outputDataUrl": outcome.output_url}
        logger.append_keys(bucket=source.bucket, key=source.key)
        try:
            response = sagemaker_client().start_pipeline_execution(**request)
        except (ClientError, BotoCoreError) as err:
            last_error = err
            failures.append((source.key, str(err)))
            logger.error("pipeline start failed", extra={**urls, "error": str(err)})
        else:
            arn = str(response["PipelineExecutionArn"])
            logger.append_keys(execution_arn=arn)
            logger.info("pipeline execution started", extra={**urls, "token": request["ClientRequestToken"]})
            started.append({"key": source.key, **urls, "executionArn": arn})
        finally:
            logger.remove_keys(_RECORD_KEYS)

    metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=len(started))
    metrics.add_metric(name="RecordsSkipped", unit=MetricUnit.Count, value=len(skipped))
    metrics.add_metric(name="StartFailures", unit=MetricUnit.Count, value=len(failures))
    counts = {"started": len(started), "skipped": len(skipped), "failed": len(failures)}
    logger.info("event handled", extra=counts)
    if failures:
        raise StartFailed(failures) from last_error
    return {"started": started, "skipped": skipped}


def _skip(skip: Skip, skipped: list[dict[str, Any]]) -> None:
    names = {name: value for name, value in (("bucket", skip.bucket), ("key", skip.key)) if value is not None}
    log = logger.warning if skip.unprocessable else logger.info
    log("record skipped", extra={**names, "reason": skip.reason, "unprocessable": skip.unprocessable})
    skipped.append({"key": skip.key, "reason": skip.reason})
