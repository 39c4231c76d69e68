"""The SageMaker Pipeline definition, built with the SageMaker Python SDK v3 (build time only).

:func:`get_pipeline` is a pure builder: every value comes in as a keyword argument and nothing is
sent anywhere. :func:`render_template` builds it with ``string.Template`` placeholders instead of the
deploy-time values and returns the definition JSON that ``sam build`` puts into the deploy function's
artifact (as ``pipeline.json``). At deploy time the function fills the placeholders with
``string.Template.substitute`` (an unknown or missing placeholder is an error, never a silent blank):

==========================  ==========================================================
``${DataBucket}``           the stack's data bucket (code location and default URLs)
``${RoleArn}``              the SageMaker execution role the processing job runs as
``${ImageUri}``             the scikit-learn processing image of the stack's region
``${SnapshotPrefix}``       default ``InputDataUrl`` = ``s3://${DataBucket}/${SnapshotPrefix}``
``${CleanPrefix}``          default ``OutputDataUrl`` = ``s3://${DataBucket}/${CleanPrefix}``
``${ProcessingInstanceType}``  default of the ``ProcessingInstanceType`` parameter
==========================  ==========================================================

The ETL step's code is the whole ``etl`` package as one zip application, ``etl.pyz``, at a
content-addressed key, ``s3://${DataBucket}/code/<sha256 of etl.pyz>/etl.pyz``: a change to any ETL file
is a changed definition (and the deploy function uploads the bundle under that key). The placeholders
and the key are declared once, in :mod:`contract.artifact`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contract import volume
from contract.artifact import bundle, code_key
from etl import MAX_REJECT_FRACTION

# The SDK cannot even be imported without a region: it builds boto3 clients at import time. The
# definition does not depend on the region (the image URI is a deploy-time placeholder and the
# region-dependent experiment config is switched off below), so a fixed one is used for rendering.
RENDER_REGION = "us-east-1"

# The newest scikit-learn image the pinned SDK knows whose Python and libraries its public build files
# confirm (docs/etl.md, "The processing image"): Python 3.12, pandas 2.3.2, pyarrow 17.0.0, numpy 2.1.0.
SKLEARN_FRAMEWORK_VERSION = "1.4-2-py312"
STEP_NAME = "CleanData"
INPUT_NAME = "data"
OUTPUT_NAME = "clean"
INPUT_DIR = "/opt/ml/processing/input/data"
OUTPUT_DIR = "/opt/ml/processing/output"
DEFAULT_INSTANCE_COUNT = 1

# Opt out of the SDK's telemetry (it would call an AWS endpoint while rendering).
_SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


@contextmanager
def _sdk_environment(region: str) -> Iterator[None]:
    """A region for the parts of the SDK that read it from the environment, restored afterwards.

    Besides its import-time clients, ``ProcessingStep`` builds a ``LocalSession()`` from the default
    configuration chain: no argument reaches it. Rendering sends nothing anywhere, so botocore's
    credential chain is kept from probing the EC2 instance metadata address on a machine without
    credentials (``AWS_EC2_METADATA_DISABLED``). The SDK's compile-time ``SyntaxWarning`` noise and its
    "no job is started in a PipelineSession" ``UserWarning`` are silenced.
    """
    values = {"AWS_DEFAULT_REGION": region, "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"sagemaker\.")
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


with _sdk_environment(RENDER_REGION):
    import boto3
    from sagemaker.core import image_uris
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.retry import (
        MAX_EXPIRE_AFTER_MIN,
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )
    from sagemaker.mlops.workflow.steps import ProcessingStep

# The step's retry policies (SageMaker applies them; the local runner emulates them from the definition).
# A refusal for capacity (the account's processing-instance quota, EC2 capacity) passes when other jobs
# end: it is retried for the longest time SageMaker allows (ExpireAfterMin 14400 = 10 days), every
# minute at first, the wait growing by 1% per attempt. SageMaker has no cap on the wait, so a BackoffRate
# near 1 is the cap: about 15 minutes after a day of refusals, 2.5 hours after ten days, and a freed
# instance is taken within minutes instead of after an ever longer sleep. An internal job error and the
# pipeline's own throttling or service faults get a few attempts with ordinary doubling.
RETRY_POLICIES = (
    SageMakerJobStepRetryPolicy(
        exception_types=[
            SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
            SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
        ],
        interval_seconds=60,
        backoff_rate=1.01,
        expire_after_mins=MAX_EXPIRE_AFTER_MIN,
    ),
    SageMakerJobStepRetryPolicy(
        exception_types=[SageMakerJobExceptionTypeEnum.INTERNAL_ERROR],
        interval_seconds=60,
        backoff_rate=2.0,
        max_attempts=5,
    ),
    StepRetryPolicy(
        exception_types=[StepExceptionTypeEnum.THROTTLING, StepExceptionTypeEnum.SERVICE_FAULT],
        interval_seconds=5,
        backoff_rate=2.0,
        max_attempts=8,
    ),
)


class _OfflineSession(PipelineSession):  # type: ignore[misc]  # the SDK ships no type hints
    """A PipelineSession that takes the role as given.

    The stock one resolves a role *name* through IAM (a network call) and only skips that for
    strings containing ``/``; the role here is an ARN or the ``${RoleArn}`` placeholder.
    """

    def expand_role(self, role: str) -> str:
        return role


def get_pipeline(
    *,
    name: str,
    role_arn: str,
    image_uri: str,
    code_uri: str,
    input_data_url: str,
    output_data_url: str,
    instance_type: str,
    instance_count: int = DEFAULT_INSTANCE_COUNT,
    region: str = RENDER_REGION,
) -> Pipeline:
    """The ETL pipeline: five parameters and one processing step.

    ``input_data_url``, ``output_data_url``, ``instance_type`` and ``instance_count`` are the
    parameters' *defaults*; every execution may override them (the trigger passes both URLs and the
    volume)::

        Parameters                         Step "CleanData" (ProcessingStep)
        ----------                         ScriptProcessor: scikit-learn 1.4-2-py312 image, python3 etl.pyz
        InputDataUrl (String) -----------> input "data": S3Prefix, ShardedByS3Key, File
                                             s3://... -> /opt/ml/processing/input/data
        OutputDataUrl (String) <---------- output "clean": Continuous (a failed run's rejects and
                                             report too) /opt/ml/processing/output -> s3://...
        ProcessingInstanceType (String) -> ClusterConfig.InstanceType
        ProcessingInstanceCount (Integer)  ClusterConfig.InstanceCount (each instance gets its
                                  -------> share of the input files: ShardedByS3Key)
        ProcessingVolumeSizeInGB (Integer) ClusterConfig.VolumeSizeInGB (the input and the output
                                  -------> are both on it: the trigger sizes it, contract.volume)
        MaxRejectFraction (Float) -------> argument --max-reject-fraction (a run fails above it)
        code_uri (fixed) ----------------> input "code" -> /opt/ml/processing/input/code/etl.pyz
        RetryPolicies (RETRY_POLICIES) --> quota/capacity refusals retried up to 10 days; internal
                                           errors, throttling and service faults a few times

    The bundle runs as ``python3 etl.pyz --input-dir /opt/ml/processing/input/data
    --output-dir /opt/ml/processing/output --max-reject-fraction <MaxRejectFraction>`` with the schema it
    ships (etl/schema.json). The input URL reaches it only through the processing input (an ``S3Uri``
    holds 1,024 characters; a container argument would hold 256): the trigger's snapshot folders hold
    exactly the upload, so the ETL reads every data file it finds there.

    Building makes no AWS call: ``role_arn`` is taken as given and ``code_uri`` must already be an
    ``s3://`` URI (a local path would be uploaded while rendering).
    """
    if not code_uri.startswith("s3://"):
        raise ValueError(f"code_uri must be an s3:// URI (a local file would be uploaded): {code_uri!r}")
    with _sdk_environment(region):
        session = _OfflineSession(
            boto_session=boto3.Session(region_name=region),
            sagemaker_config=_SDK_CONFIG,
            default_bucket="unused-by-this-pipeline",  # never created: the code is already in S3
        )
        input_url = ParameterString(name="InputDataUrl", default_value=input_data_url)
        output_url = ParameterString(name="OutputDataUrl", default_value=output_data_url)
        processing_instance_type = ParameterString(name="ProcessingInstanceType", default_value=instance_type)
        processing_instance_count = ParameterInteger(
            name="ProcessingInstanceCount", default_value=instance_count
        )
        processing_volume = ParameterInteger(name=volume.PARAMETER, default_value=volume.DEFAULT_GB)
        max_reject_fraction = ParameterFloat(name="MaxRejectFraction", default_value=MAX_REJECT_FRACTION)

        processor = ScriptProcessor(
            role=role_arn,
            image_uri=image_uri,
            command=["python3"],
            instance_type=processing_instance_type,
            instance_count=processing_instance_count,
            volume_size_in_gb=processing_volume,
            sagemaker_session=session,
        )
        step_args = processor.run(
            code=code_uri,
            inputs=[
                ProcessingInput(
                    input_name=INPUT_NAME,
                    s3_input=ProcessingS3Input(
                        s3_uri=input_url,
                        local_path=INPUT_DIR,
                        s3_data_type="S3Prefix",
                        s3_input_mode="File",
                        s3_data_distribution_type="ShardedByS3Key",
                    ),
                )
            ],
            outputs=[
                ProcessingOutput(
                    output_name=OUTPUT_NAME,
                    # Continuous: uploaded while the job runs, so a failed run's rejects.csv and
                    # report.json reach S3 too (EndOfJob: "after the job completes"); the ETL moves only
                    # finished files into OUTPUT_DIR, and full_data.csv only when the run succeeds.
                    s3_output=ProcessingS3Output(
                        s3_uri=output_url, local_path=OUTPUT_DIR, s3_upload_mode="Continuous"
                    ),
                )
            ],
            # A Float parameter goes into ContainerArguments (strings) as a Std:Join: referenced as itself,
            # CreatePipeline refuses it (aws/sagemaker-python-sdk#2631).
            arguments=[
                *("--input-dir", INPUT_DIR, "--output-dir", OUTPUT_DIR),
                *("--max-reject-fraction", max_reject_fraction.to_string()),
            ],
        )
        return Pipeline(
            name=name,
            parameters=[
                *(input_url, output_url, processing_instance_type, processing_instance_count),
                processing_volume,
                max_reject_fraction,
            ],
            steps=[ProcessingStep(name=STEP_NAME, step_args=step_args, retry_policies=list(RETRY_POLICIES))],
            # No automatic SageMaker Experiments trial per execution: the SDK's default would make the
            # definition depend on the region it is rendered in.
            pipeline_experiment_config=None,
            sagemaker_session=session,
        )


def definition_json(pipeline: Pipeline, region: str = RENDER_REGION) -> str:
    """The pipeline's definition as stable, indented JSON text (ends with a newline)."""
    with _sdk_environment(region):
        definition: dict[str, Any] = json.loads(pipeline.definition())
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def render_template(etl_package: Path) -> str:
    """The definition with deploy-time placeholders (see the module docstring), as JSON text.

    Deterministic: the same ``etl_package`` sources give byte-identical output.
    """
    pipeline = get_pipeline(
        name="etl-pipeline",  # not part of the definition: the deploy function names the pipeline
        role_arn="${RoleArn}",
        image_uri="${ImageUri}",
        code_uri="s3://${DataBucket}/" + code_key(bundle(etl_package)),
        input_data_url="s3://${DataBucket}/${SnapshotPrefix}",  # the execution role reads only there
        output_data_url="s3://${DataBucket}/${CleanPrefix}",
        instance_type="${ProcessingInstanceType}",
    )
    return definition_json(pipeline)


def image_uris_by_region(framework_version: str = SKLEARN_FRAMEWORK_VERSION) -> dict[str, str]:
    """``{region: scikit-learn processing image URI}`` for every region the SDK knows that version in."""
    config = image_uris.config_for_framework("sklearn")
    regions: set[str] = set()
    for scope in config.values():
        regions.update(scope.get("versions", {}).get(framework_version, {}).get("registries", {}))
    if not regions:
        raise ValueError(f"the SageMaker SDK knows no scikit-learn {framework_version} image")
    return {
        region: image_uris.retrieve(framework="sklearn", version=framework_version, region=region)
        for region in sorted(regions)
    }


def render_image_uris() -> str:
    """:func:`image_uris_by_region` as stable, indented JSON text (ends with a newline)."""
    return json.dumps(image_uris_by_region(), indent=2, sort_keys=True) + "\n"
