"""The pipeline definition: rendered offline and deterministically, and exactly what the contract says."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from string import Template
from typing import Any

import pytest

from contract.artifact import PLACEHOLDERS, bundle
from pipeline.pipeline import SKLEARN_FRAMEWORK_VERSION, get_pipeline, image_uris_by_region, render_template

ROOT = Path(__file__).resolve().parents[2]
ETL_PACKAGE = ROOT / "etl"
IMAGE_TAG = f"sagemaker-scikit-learn:{SKLEARN_FRAMEWORK_VERSION}-cpu-py3"

# Runs the CLI with an audit hook that fails the process on any attempt to open a network connection.
_OFFLINE_RUNNER = """
import runpy, sys

def no_network(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
        # Reported on stderr too, in case the SDK swallows the error (as telemetry code does).
        sys.stderr.write(f"NETWORK ACCESS while rendering: {event} {args!r}\\n")
        raise RuntimeError(f"network access while rendering: {event} {args!r}")

sys.addaudithook(no_network)
sys.argv = ["pipeline", *sys.argv[1:]]
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def _offline_env(home: Path) -> dict[str, str]:
    """No credentials, no config, no region, and every AWS endpoint pointing at a closed port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    env.update(
        HOME=str(home),
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{_closed_port()}",
        AWS_CONFIG_FILE=str(home / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """Two independent runs of `python -m pipeline render` in offline processes: (definition, image URIs)."""
    base = tmp_path_factory.mktemp("render")
    runs = []
    for index in range(2):
        out = base / f"run{index}"
        out.mkdir()
        command = [
            sys.executable,
            "-c",
            _OFFLINE_RUNNER,
            "render",
            "--out",
            str(out / "pipeline.json"),
            "--image-uris",
            str(out / "image_uris.json"),
        ]
        runs.append((out, subprocess.Popen(command, cwd=ROOT, env=_offline_env(out), stderr=subprocess.PIPE)))
    results = []
    for out, process in runs:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr.decode()
        assert b"NETWORK ACCESS" not in stderr, stderr.decode()
        results.append(
            (
                (out / "pipeline.json").read_text(encoding="utf-8"),
                (out / "image_uris.json").read_text(encoding="utf-8"),
            )
        )
    return results


@pytest.fixture(scope="module")
def definition(renders: list[tuple[str, str]]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(renders[0][0])
    return parsed


@pytest.fixture(scope="module")
def step(definition: dict[str, Any]) -> dict[str, Any]:
    (only,) = definition["Steps"]
    result: dict[str, Any] = only
    return result


def test_rendering_is_offline_and_byte_identical(renders: list[tuple[str, str]]) -> None:
    # Given two renders in separate processes without credentials, region or network (fixture)
    (first_definition, first_images), (second_definition, second_images) = renders

    # Then both succeeded and produced the same bytes
    assert first_definition == second_definition
    assert first_images == second_images
    assert first_definition.endswith("}\n")


def test_the_definition_carries_exactly_the_contract_placeholders(renders: list[tuple[str, str]]) -> None:
    # Given the rendered definition
    template = Template(renders[0][0])

    # Then it is a valid string.Template using the six deploy-time placeholders, and no others
    assert template.is_valid()
    assert (
        set(template.get_identifiers())
        == set(PLACEHOLDERS)
        == {
            "DataBucket",
            "RoleArn",
            "ImageUri",
            "SnapshotPrefix",
            "CleanPrefix",
            "ProcessingInstanceType",
        }
    )


def test_the_five_parameters_have_valid_defaults_once_filled(renders: list[tuple[str, str]]) -> None:
    # Given the definition filled as the deploy function fills it
    filled = json.loads(
        Template(renders[0][0]).substitute(
            DataBucket="my-bucket",
            RoleArn="arn:aws:iam::123456789012:role/etl",
            ImageUri=f"683313688378.dkr.ecr.us-east-1.amazonaws.com/{IMAGE_TAG}",
            SnapshotPrefix="snapshot/",
            CleanPrefix="clean/",
            ProcessingInstanceType="ml.m5.xlarge",
        )
    )

    # Then it declares the five parameters of the contract, with usable defaults
    assert filled["Parameters"] == [
        {"Name": "InputDataUrl", "Type": "String", "DefaultValue": "s3://my-bucket/snapshot/"},
        {"Name": "OutputDataUrl", "Type": "String", "DefaultValue": "s3://my-bucket/clean/"},
        {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
        {"Name": "ProcessingInstanceCount", "Type": "Integer", "DefaultValue": 1},
        {"Name": "ProcessingVolumeSizeInGB", "Type": "Integer", "DefaultValue": 30},
        {"Name": "MaxRejectFraction", "Type": "Float", "DefaultValue": 0.01},
    ]


def test_one_processing_step_named_cleandata_runs_the_etl_bundle_with_python3(
    step: dict[str, Any], definition: dict[str, Any]
) -> None:
    # Then the pipeline is one ProcessingStep on the scikit-learn image, sized by the parameters
    arguments = step["Arguments"]
    assert (step["Name"], step["Type"]) == ("CleanData", "Processing")
    assert arguments["AppSpecification"]["ImageUri"] == "${ImageUri}"
    assert arguments["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "/opt/ml/processing/input/code/etl.pyz",
    ]
    assert arguments["RoleArn"] == "${RoleArn}"
    assert arguments["ProcessingResources"]["ClusterConfig"] == {
        "InstanceType": {"Get": "Parameters.ProcessingInstanceType"},
        "InstanceCount": {"Get": "Parameters.ProcessingInstanceCount"},
        "VolumeSizeInGB": {"Get": "Parameters.ProcessingVolumeSizeInGB"},
    }
    # And nothing depends on the region it was rendered in (no automatic experiment config)
    assert definition["PipelineExperimentConfig"] is None


def test_the_job_arguments_carry_the_reject_threshold_and_never_the_input_url(step: dict[str, Any]) -> None:
    # A container argument holds 256 characters, a processing input's S3Uri 1,024: a long key's snapshot
    # URL as an argument would fail the job, so the URL is not one (finding 13). A Float parameter is a
    # string argument only through Std:Join (CreatePipeline refuses it bare)
    fraction = {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.MaxRejectFraction"}]}}
    assert step["Arguments"]["AppSpecification"]["ContainerArguments"] == [
        "--input-dir",
        "/opt/ml/processing/input/data",
        "--output-dir",
        "/opt/ml/processing/output",
        "--max-reject-fraction",
        fraction,
    ]


def test_the_data_input_is_sharded_by_s3_key_from_input_data_url(step: dict[str, Any]) -> None:
    data = next(i for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == "data")
    assert data["S3Input"] == {
        "S3Uri": {"Get": "Parameters.InputDataUrl"},
        "LocalPath": "/opt/ml/processing/input/data",
        "S3DataType": "S3Prefix",
        "S3InputMode": "File",
        "S3DataDistributionType": "ShardedByS3Key",
        "S3CompressionType": "None",
    }


def test_the_one_output_goes_to_output_data_url_continuously(step: dict[str, Any]) -> None:
    # Continuous, so that a failed run's rejects.csv and report.json reach S3 (EndOfJob uploads only
    # "after the job completes"); one output, so no two outputs share an S3 URI
    assert step["Arguments"]["ProcessingOutputConfig"]["Outputs"] == [
        {
            "OutputName": "clean",
            "S3Output": {
                "S3Uri": {"Get": "Parameters.OutputDataUrl"},
                "LocalPath": "/opt/ml/processing/output",
                "S3UploadMode": "Continuous",
            },
        }
    ]


def test_the_code_is_addressed_by_the_sha256_of_the_etl_bundle(step: dict[str, Any]) -> None:
    # Given the ETL package in the tree, bundled as the deploy function bundles it
    digest = hashlib.sha256(bundle(ETL_PACKAGE)).hexdigest()

    # Then the step's code input is that bundle's content-addressed key in the data bucket
    code = next(i for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
    assert code["S3Input"]["S3Uri"] == f"s3://${{DataBucket}}/code/{digest}/etl.pyz"
    assert code["S3Input"]["LocalPath"] == "/opt/ml/processing/input/code"


@pytest.mark.parametrize(
    "module",
    sorted(
        p.relative_to(ETL_PACKAGE).as_posix()
        for p in [*ETL_PACKAGE.glob("*.py"), *ETL_PACKAGE.rglob("*.json")]
    ),
)
def test_a_change_to_any_etl_file_changes_only_the_code_key(
    tmp_path: Path, renders: list[tuple[str, str]], module: str
) -> None:
    # Given a copy of the ETL package with one more line in one of its modules
    changed = tmp_path / "etl"
    shutil.copytree(ETL_PACKAGE, changed, ignore=shutil.ignore_patterns("__pycache__"))
    (changed / module).write_bytes((changed / module).read_bytes() + b"\n# one more line\n")

    # When the definition is rendered for it
    text = render_template(changed)

    # Then the definition differs from the original exactly in the bundle's hash
    old = hashlib.sha256(bundle(ETL_PACKAGE)).hexdigest()
    new = hashlib.sha256(bundle(changed)).hexdigest()
    assert old != new
    assert text != renders[0][0]
    assert text == renders[0][0].replace(old, new)


def test_the_builder_takes_real_values_as_well(tmp_path: Path) -> None:
    # Given concrete values instead of placeholders
    pipeline = get_pipeline(
        name="etl",
        role_arn="arn:aws:iam::123456789012:role/etl",
        image_uri=f"141502667606.dkr.ecr.eu-west-1.amazonaws.com/{IMAGE_TAG}",
        code_uri="s3://bucket/code/abc/etl.pyz",
        input_data_url="s3://bucket/in/",
        output_data_url="s3://bucket/out/",
        instance_type="ml.c5.xlarge",
        instance_count=3,
        region="eu-west-1",
    )

    # When its definition is built
    definition = json.loads(pipeline.definition())

    # Then the values land where the placeholders were, and the count default is the one given
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults == {
        "InputDataUrl": "s3://bucket/in/",
        "OutputDataUrl": "s3://bucket/out/",
        "ProcessingInstanceType": "ml.c5.xlarge",
        "ProcessingInstanceCount": 3,
        "ProcessingVolumeSizeInGB": 30,
        "MaxRejectFraction": 0.01,
    }
    assert definition["Steps"][0]["Arguments"]["RoleArn"] == "arn:aws:iam::123456789012:role/etl"


def test_the_builder_refuses_a_local_code_path() -> None:
    # A local path would make the SDK upload it to a default bucket while rendering
    with pytest.raises(ValueError, match="must be an s3:// URI"):
        get_pipeline(
            name="etl",
            role_arn="arn:aws:iam::123456789012:role/etl",
            image_uri="image",
            code_uri="etl.pyz",
            input_data_url="s3://bucket/in/",
            output_data_url="s3://bucket/out/",
            instance_type="ml.m5.xlarge",
        )


def test_image_uris_cover_every_region_the_sdk_knows(renders: list[tuple[str, str]]) -> None:
    # Given the rendered image table
    images: dict[str, str] = json.loads(renders[0][1])

    # Then it lists the scikit-learn image for each region the SDK knows, in that region's registry
    assert images == image_uris_by_region()
    assert {"us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"} <= set(images)
    for region, uri in images.items():
        registry, _, repository = uri.partition("/")
        assert repository == IMAGE_TAG
        assert f".dkr.ecr.{region}." in registry
    assert images["cn-north-1"].split("/")[0].endswith(".amazonaws.com.cn")


def test_the_cli_renders_to_stdout_and_fails_clearly_without_the_package(tmp_path: Path) -> None:
    # Given a package folder that does not exist
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "render", "--etl-package", str(tmp_path / "missing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    # Then the CLI exits non-zero with one clear line and renders nothing
    assert result.returncode == 2
    assert "ETL package not found" in result.stderr
    assert result.stdout == ""


# -- retry policies and SageMaker's published definition schema ------------------------------------

# SageMaker's pipeline definition JSON schema, as published in
# github.com/aws-sagemaker-mlops/sagemaker-model-building-pipeline-definition-JSON-schema
# (schema/pipeline-definition.schema.json at commit b4012b0, copied verbatim: tests run offline).
SCHEMA = Path(__file__).with_name("pipeline-definition.schema.json")
INTERVAL_SECONDS_MAX = 43200  # SageMaker's limit for a retry policy's IntervalSeconds
EXPIRE_AFTER_MIN_MAX = 14400


def _amended_schema() -> dict[str, Any]:
    """The published schema with the three places where it lags the service, amended (and nothing else).

    1. ``RetryPolicy.ExceptionType``: the schema has one string; the service takes a list of them, as
       the SageMaker developer guide's retry policy schema (``"ExceptionType": [String]``) and the SDK's
       ``to_request`` write it.
    2. Top level ``PipelineExperimentConfig`` and ``MlflowConfig``: fields of the service's definition
       that the SDK v3 always writes (``null`` here) and the schema predates.
    3. A string argument (``ContainerArguments``) may be a ``Std:Join``: the SDK's ``to_string()`` of a
       Float or Integer parameter (``MaxRejectFraction``), its answer to the service refusing such a
       parameter referenced bare among string arguments (aws/sagemaker-python-sdk#2631, #2995).
    """
    schema: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    retry = schema["definitions"]["RetryPolicy"]["properties"]
    retry["ExceptionType"] = {"type": "array", "minItems": 1, "items": retry["ExceptionType"]}
    schema["properties"]["PipelineExperimentConfig"] = {"type": ["object", "null"]}
    schema["properties"]["MlflowConfig"] = {"type": ["object", "null"]}
    join = {"type": "object", "required": ["Std:Join"], "properties": {"Std:Join": {"type": "object"}}}
    join["additionalProperties"] = False
    schema["definitions"]["StringArgumentValue"]["oneOf"].append(join)
    return schema


def test_the_definition_is_valid_for_sagemakers_published_schema(definition: dict[str, Any]) -> None:
    import jsonschema

    published: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    # The published schema, as is, objects to exactly the three lagging places and nothing else
    objections = sorted(
        (e.json_path, e.validator) for e in jsonschema.Draft7Validator(published).iter_errors(definition)
    )
    retry_paths = [f"$.Steps[0].RetryPolicies[{i}].ExceptionType" for i in range(3)]
    assert ("$", "additionalProperties") in objections
    assert all(path == "$" or path.startswith("$.Steps[0]") for path, _ in objections), objections
    # (a oneOf over step types reports the ProcessingStep mismatch at the step itself)
    assert {path for path, _ in objections} <= {"$", "$.Steps[0]", *retry_paths}
    # With those amended, the whole definition is valid
    jsonschema.Draft7Validator(_amended_schema()).validate(definition)


def test_the_step_retries_what_sagemaker_refuses_for_capacity(step: dict[str, Any]) -> None:
    policies = {tuple(p["ExceptionType"]): p for p in step["RetryPolicies"]}

    # Every exception type a processing step can retry is covered, each by one policy
    covered = [t for types in policies for t in types]
    assert sorted(covered) == sorted(
        [
            "SageMaker.RESOURCE_LIMIT",
            "SageMaker.CAPACITY_ERROR",
            "SageMaker.JOB_INTERNAL_ERROR",
            "Step.THROTTLING",
            "Step.SERVICE_FAULT",
        ]
    )
    # each with exactly one of MaxAttempts and ExpireAfterMin, and a real backoff
    for policy in policies.values():
        assert ("MaxAttempts" in policy) != ("ExpireAfterMin" in policy), policy
        assert 1 <= policy["IntervalSeconds"] <= INTERVAL_SECONDS_MAX
        assert policy["BackoffRate"] >= 1.0
    # The quota refusal is retried for the longest time SageMaker allows
    [quota] = [p for types, p in policies.items() if "SageMaker.RESOURCE_LIMIT" in types]
    assert "SageMaker.CAPACITY_ERROR" in quota["ExceptionType"]
    assert quota["ExpireAfterMin"] == EXPIRE_AFTER_MIN_MAX
    # and its waits stay bounded over those 10 days: never longer than SageMaker's longest interval,
    # and still at most 20 minutes after a day of waiting (a freed instance is not left idle for long)
    waited, wait, attempt = 0.0, float(quota["IntervalSeconds"]), 0
    wait_after_a_day = None
    while waited + wait <= EXPIRE_AFTER_MIN_MAX * 60:
        waited += wait
        attempt += 1
        if wait_after_a_day is None and waited >= 86400:
            wait_after_a_day = wait
        wait = quota["IntervalSeconds"] * quota["BackoffRate"] ** attempt
    assert wait <= INTERVAL_SECONDS_MAX
    assert wait_after_a_day is not None
    assert wait_after_a_day <= 1200
